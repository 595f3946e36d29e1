"""Shared helpers of the reference scripts in tests/ref (imported by them; the scripts run as
/usr/bin/python3 tests/ref/<name>.py, so this folder is on sys.path)."""
import os

import numpy as np

# The 14 loss networks: arch -> (the attribute holding the child list, None for the model's own children; the E, S,
# M, L child indices), as lua/dpl/models/lossnet.lua's ARCHS (docs/benchmarks/lossnets.md).
LOSSNETS = {
    "alexnet": ("features", [1, 4, 7, 11]),
    "vgg11": ("features", [1, 4, 9, 19]),
    "vgg16": ("features", [3, 8, 15, 29]),
    "vgg16_bn": ("features", [5, 12, 22, 42]),
    "vgg19": ("features", [3, 8, 17, 35]),
    "resnet18": (None, [2, 4, 5, 7]),
    "resnet50": (None, [2, 4, 5, 7]),
    "resnext50_32x4d": (None, [2, 4, 5, 7]),
    "googlenet": (None, [0, 5, 8, 15]),
    "inception_v3": (None, [2, 7, 9, 14]),
    "efficientnet_b0": ("features", [0, 1, 4, 7]),
    "efficientnet_b7": ("features", [0, 1, 4, 7]),
    "densenet121": ("features", [2, 4, 6, 10]),
    "squeezenet1_1": ("features", [1, 3, 7, 12]),
}


# A torchvision architecture's `features` with torchvision's initialisation under torch.manual_seed(seed) and every
# bias drawn from N(0, 0.05^2) with a generator seeded bias_seed (zero biases would hide a bias bug); its state_dict
# ("features.*" keys) saved with torch.save at `path` when given. Returns the module in eval mode.
def seeded_features(arch, seed, bias_seed, path=None):
    import torch
    import torchvision
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    gen = torch.Generator().manual_seed(bias_seed)
    with torch.no_grad():
        for name, p in model.features.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    if path:
        torch.save({"features." + k: v.clone() for k, v in model.features.state_dict().items()}, path)
    return model.features.eval()


# The outputs of a Sequential's children at the given 0-based indices, in that order (a loss network's extraction).
def children_outputs(seq, x, layers):
    outs, h = {}, x
    for j, child in enumerate(list(seq.children())[: max(layers) + 1]):
        h = child(h)
        if j in layers:
            outs[j] = h
    return [outs[j] for j in layers]


# The reference truncation of a torchvision architecture (random initialisation from torch's global generator): the
# children of its list attribute (LOSSNETS) up to child `upto`, as an nn.Sequential.
def truncated_lossnet(arch, upto):
    import torch
    import torchvision
    model = getattr(torchvision.models, arch)(weights=None)
    attr = LOSSNETS[arch][0]
    children = list(getattr(model, attr).children()) if attr else list(model.children())
    net = torch.nn.Sequential(*children[: upto + 1])
    net.tv_prefix = (attr + ".") if attr else ""
    net.tv_names = [n for n, _ in (getattr(model, attr) if attr else model).named_children()]
    return net


# The state_dict of a truncated_lossnet under the names a torchvision checkpoint has (features.N.*, or the model's own
# children's names), as dpl's loss networks read them.
def torchvision_state_dict(net):
    sd = {}
    for k, v in net.state_dict().items():
        i, rest = k.split(".", 1)
        sd[net.tv_prefix + net.tv_names[int(i)] + "." + rest] = v.clone()
    return sd


# Every BatchNorm2d of net gets random parameters and statistics from generator gen: weight and running_var
# U(0.5, 1.5), bias and running_mean N(0, spread^2), num_batches_tracked = tracked (so that tests see non-default
# values everywhere).
def randomise_bn(net, gen, spread, tracked):
    import torch
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * spread)
                m.running_mean.copy_(torch.randn(n, generator=gen) * spread)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(tracked)


# OUTDIR/<name>.npy as contiguous float32.
def save_npy(out, name, a):
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


# OUTDIR/cases.lua: `return {case, ...}`, the list the Lua test and the script share.
def write_cases(out, cases):
    with open(os.path.join(out, "cases.lua"), "w") as f:
        f.write("return {\n")
        for c in cases:
            f.write("  " + lua(c) + ",\n")
        f.write("}\n")


# One convolution case (conv_transpose_ref.py): y = op(x, w, b), a random grad_output g from rng, the
# gradients of sum(y * g); saves <cid>_x, _w, _y, _gx, _gw, _g (and _b, _gb with a bias) and appends the case
# (shapes and options in dpl's terms) to cases.
def conv_case(out, cases, rng, cid, op, x, w, b, opts):
    import torch
    y = op(x, w, b)
    g = rng.randn(*y.shape).astype(np.float32)
    y.backward(torch.from_numpy(g))
    for name, t in (("x", x), ("w", w), ("y", y), ("gx", x.grad), ("gw", w.grad)):
        save_npy(out, cid + "_" + name, t.detach().numpy())
    save_npy(out, cid + "_g", g)
    if b is not None:
        save_npy(out, cid + "_b", b.detach().numpy())
        save_npy(out, cid + "_gb", b.grad.numpy())
    cases.append(dict(id=cid, x=list(x.shape), w=list(w.shape), y=list(y.shape), bias=b is not None,
                      opts={k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()}))


# A Python value as a Lua table constructor, for the cases.lua files the Lua tests load.
def lua(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (k, lua(x)) for k, x in sorted(v.items())) + "}"
    raise TypeError(v)

