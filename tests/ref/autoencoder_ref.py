#!/usr/bin/env python3
"""PyTorch side of tests/lua/test_autoencoder.lua: Benchmark 4's autoencoder (the non-variational "FourLayerCVAE" of
the perceptual-autoencoders code, module names as there) and its MLP probes, checkpoints and training parity.

Usage: autoencoder_ref.py OUTDIR   writes, as float32 .npy / torch.save files:
  ae64.pth, ae96.pth, keys64.txt     a PyTorch-initialised autoencoder per side (batch norms randomised), its keys
  x64, x96                           inputs 2 x 3 x side x side in [0, 1]
  rec64_eval, mu64_eval, rec64_train, mu64_train (and 96)   outputs of ae<side>.pth in eval and train mode
  ae_<case>_*                        training parity: 3 Adam(1e-3) steps of the 64-side autoencoder from init.pth on 3
                                     batches (x_k: 4 x 3 x 64 x 64) with case = resnet18_E (loss network in train mode:
                                     target features first, then the reconstruction's, as the reference),
                                     vgg16_E (eval) or pixel; loss network weights loss.pth; the losses of a float64
                                     run (losses) and of PyTorch's float32 run (losses32), final state_dicts of both
                                     (final_*, final32_*), and the loss network's running statistics (lossnet_*)
  mlp_*                              one MLP ([64, 32]) trained 3 epochs on fixed embeddings (train 200, val 50),
                                     batch 64, Adam(1e-3), MSE against one-hot, shuffled per epoch with numpy's
                                     RandomState(7 + epoch).permutation(200): init.pth, the data, per-epoch mean
                                     train loss and val loss (float64 run: mlp_train_loss, mlp_val_loss; float32:
                                     mlp_val_loss32) and the best-val-loss state (mlp_best_*)
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import randomise_bn, save_npy, torchvision_state_dict, truncated_lossnet  # noqa: E402

torch.set_num_threads(1)


def coder(channels, kernels, conv, last_norm, last_act):
    seq = nn.Sequential()
    for i in range(4):
        seq.add_module("conv%d" % i, conv(channels[i], channels[i + 1], kernels[i], stride=2))
        if i < 3 or last_norm:
            seq.add_module("norm%d" % i, nn.BatchNorm2d(channels[i + 1]))
        seq.add_module("acti%d" % i, last_act() if i == 3 else nn.ReLU())
    return seq


class Autoencoder(nn.Module):
    """encoder -> mu (the code; logvar unused) -> dense -> ReLU -> 1024 x g x g -> decoder"""

    def __init__(self, side=64, z=64):
        super().__init__()
        self.side, self.g = side, (side - 64) // 16 + 1
        self.encoder = coder([3, 32, 64, 128, 256], [4, 4, 4, 4], nn.Conv2d, True, nn.ReLU)
        s = side
        for _ in range(4):
            s = (s - 4) // 2 + 1
        self.mu = nn.Linear(256 * s * s, z)
        self.logvar = nn.Linear(256 * s * s, z)
        self.dense = nn.Linear(z, 1024 * self.g * self.g)
        self.decoder = coder([1024, 128, 64, 32, 3], [5, 5, 6, 6], nn.ConvTranspose2d, False, nn.Sigmoid)

    def encode(self, x):
        return self.mu(self.encoder(x).flatten(1))

    def forward(self, x):
        y = F.relu(self.dense(self.encode(x)))
        return self.decoder(y.view(y.size(0), 1024, self.g, self.g))


def mlp(hidden):
    sizes = [64] + hidden
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 10))


def attribute_dict_class():
    """Lightning's AttributeDict (a dict subclass), or a stand-in pickled under the same module and name when
    Lightning is not installed: what matters is the pickle it makes (NEWOBJ of that global, then SETITEMS)."""
    try:
        from lightning_fabric.utilities.data import AttributeDict
        return AttributeDict
    except ImportError:
        import types
        names = ("lightning_fabric", "lightning_fabric.utilities", "lightning_fabric.utilities.data")
        for name in names:
            sys.modules.setdefault(name, types.ModuleType(name))
        cls = type("AttributeDict", (dict,), {"__module__": names[-1]})
        sys.modules[names[-1]].AttributeDict = cls
        return cls


def lightning_checkpoint(net, path):
    """A checkpoint as PyTorch Lightning's ModelCheckpoint writes it for a LightningModule holding the autoencoder as
    `autoencoder` and the loss network as `perceptual_net` (the keys and value kinds of Lightning 1.9 and 2.x,
    hyper-parameters as an AttributeDict)."""
    sd = {"autoencoder." + k: v for k, v in net.state_dict().items()}
    sd["perceptual_net.0.weight"] = torch.randn(8, 3, 3, 3)
    sd["perceptual_net.1.running_mean"] = torch.zeros(8)
    first = next(net.parameters())
    torch.save({
        "epoch": 4, "global_step": 120, "pytorch-lightning_version": "1.9.5",
        "state_dict": sd,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 5, "completed": 4}}}},
        "callbacks": {"EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}":
                      {"wait_count": 1, "stopped_epoch": 0, "best_score": torch.tensor(0.25), "patience": 10}},
        "optimizer_states": [{"state": {0: {"step": torch.tensor(120.0), "exp_avg": torch.zeros_like(first),
                                            "exp_avg_sq": torch.zeros_like(first)}},
                              "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]}],
        "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": attribute_dict_class()(lr=1e-3, arch="vgg16"),
    }, path)


def make(out):
    gen = torch.Generator().manual_seed(1)
    rng = np.random.RandomState(1)
    for side in (64, 96):
        torch.manual_seed(0)
        net = Autoencoder(side)
        randomise_bn(net, gen, 0.1, 3)
        torch.save(net.state_dict(), os.path.join(out, "ae%d.pth" % side))
        if side == 64:
            lightning_checkpoint(net, os.path.join(out, "ae64_lightning.ckpt"))
        with open(os.path.join(out, "keys%d.txt" % side), "w") as f:
            f.write("\n".join(net.state_dict().keys()) + "\n")
        x = torch.from_numpy(rng.rand(2, 3, side, side).astype(np.float32))
        save_npy(out, "x%d" % side, x.numpy())
        for mode in ("eval", "train"):
            net.train(mode == "train")
            with torch.no_grad():
                save_npy(out, "mu%d_%s" % (side, mode), net.encode(x).numpy())
                save_npy(out, "rec%d_%s" % (side, mode), net(x).numpy())

    # training parity of the autoencoder
    batches = [rng.rand(4, 3, 64, 64).astype(np.float32) for _ in range(3)]
    for k, b in enumerate(batches):
        save_npy(out, "ae_x_%d" % k, b)
    torch.manual_seed(3)
    init = Autoencoder(64).state_dict()
    torch.save(init, os.path.join(out, "ae_init.pth"))
    for case, arch, upto, mode in (("resnet18_E", "resnet18", 2, "train"), ("vgg16_E", "vgg16", 3, "eval"),
                                   ("pixel", None, None, None)):
        p = "ae_%s_" % case
        lnet = None
        if arch:
            torch.manual_seed(2)
            lnet = truncated_lossnet(arch, upto)
            randomise_bn(lnet, gen, 0.1, 3)
            lsd = torchvision_state_dict(lnet)
            torch.save(lsd, os.path.join(out, p + "loss.pth"))
            for q in lnet.parameters():
                q.requires_grad_(False)
        for dtype, tag in ((torch.float64, "final_"), (torch.float32, "final32_")):
            net = Autoencoder(64)
            net.load_state_dict(init)
            net = net.to(dtype).train()
            ln = None
            if lnet is not None:
                ln = truncated_lossnet(arch, upto)
                ln.load_state_dict(lnet.state_dict())
                ln = ln.to(dtype).train(mode == "train")
                for q in ln.parameters():
                    q.requires_grad_(False)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            losses = []
            for b in batches:
                x = torch.from_numpy(b).to(dtype)
                opt.zero_grad()
                rec = net(x)
                if ln is None:
                    loss = F.mse_loss(rec, x)
                else:
                    ft = ln(x)            # the reference's order: the input's features first
                    loss = F.mse_loss(ln(rec), ft)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            save_npy(out, p + ("losses" if dtype == torch.float64 else "losses32"), losses)
            for k, v in net.state_dict().items():
                save_npy(out, p + tag + k, v.numpy())
            if ln is not None and dtype == torch.float64:
                for k, v in torchvision_state_dict(ln).items():
                    if "running" in k:
                        save_npy(out, p + "lossnet_" + k, v.numpy())

    # one MLP on fixed embeddings
    xs = rng.randn(200, 64).astype(np.float32)
    ys = rng.randint(0, 10, 200)
    vx = rng.randn(50, 64).astype(np.float32)
    vy = rng.randint(0, 10, 50)
    save_npy(out, "mlp_x", xs)
    save_npy(out, "mlp_y", ys)
    save_npy(out, "mlp_vx", vx)
    save_npy(out, "mlp_vy", vy)
    torch.manual_seed(4)
    init = mlp([64, 32]).state_dict()
    torch.save(init, os.path.join(out, "mlp_init.pth"))
    eye = np.eye(10)
    for dtype, tag in ((torch.float64, ""), (torch.float32, "32")):
        net = mlp([64, 32])
        net.load_state_dict(init)
        net = net.to(dtype)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        tx, ty = torch.from_numpy(xs).to(dtype), torch.from_numpy(eye[ys]).to(dtype)
        tvx, tvy = torch.from_numpy(vx).to(dtype), torch.from_numpy(eye[vy]).to(dtype)
        train_loss, val_loss, best, best_state = [], [], None, None
        for epoch in range(1, 4):
            order = np.random.RandomState(7 + epoch).permutation(200)
            s, n = 0.0, 0
            for i in range(0, 200, 64):
                idx = torch.from_numpy(order[i:i + 64])
                opt.zero_grad()
                loss = F.mse_loss(net(tx[idx]), ty[idx])
                loss.backward()
                opt.step()
                s, n = s + loss.item(), n + 1
            train_loss.append(s / n)
            with torch.no_grad():
                v = F.mse_loss(net(tvx), tvy).item()
            val_loss.append(v)
            if best is None or v < best:
                best, best_state = v, {k: t.clone() for k, t in net.state_dict().items()}
        save_npy(out, "mlp_train_loss" + tag, train_loss)
        save_npy(out, "mlp_val_loss" + tag, val_loss)
        if tag == "":
            for k, v in best_state.items():
                save_npy(out, "mlp_best_" + k, v.numpy())
    with open(os.path.join(out, "ok"), "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    make(sys.argv[1])
