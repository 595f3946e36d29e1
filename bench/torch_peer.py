"""bench/torch_peer.py - the PyTorch side of bench/conv.lua and bench/lossnets.lua.

    /usr/bin/python3 bench/torch_peer.py --threads 2 --repeat 3 JOBS

JOBS is a file (or FIFO) of jobs written by the Lua benchmark, one JSON object a line, read and run one at a time so
that the benchmark can interleave its own runs with ours (a shared machine's load then touches both alike):
{"name", "arch", "upto", "shape": [N, C, H, W], "kind"},
kind being "fwd" (no autograd), "fwd_gin" (forward + gradient to the input through a frozen network: a loss network)
or "fwd_all" (forward + gradients to the input and every parameter). The network is the reference implementation's
truncation (docs/benchmarks/lossnets.md): the children of torchvision's list attribute ("features", or the model
itself) run in order up to child `upto`. Weights are torchvision's random initialisation: speed does not depend on
values.

Prints one JSON object per job on stdout: {"name": ..., "best_ms": ..., "times_ms": [...]} (after one warm-up run),
and a first line {"torch": version, "threads": n}.
"""
import argparse
import json
import sys
import time

import torch
import torchvision

LIST_ATTR = {"alexnet": "features", "vgg11": "features", "vgg16": "features", "vgg16_bn": "features",
             "vgg19": "features", "squeezenet1_1": "features", "densenet121": "features",
             "efficientnet_b0": "features", "efficientnet_b7": "features", "resnet18": None, "resnet50": None,
             "resnext50_32x4d": None, "googlenet": None, "inception_v3": None}
SKIP_CHILDREN = {"aux1", "aux2", "AuxLogits"}  # never run by the reference truncation


def truncated(arch, upto):
    kw = {"weights": None}
    if arch in ("googlenet", "inception_v3"):
        kw["init_weights"] = False
        kw["aux_logits"] = False
    model = getattr(torchvision.models, arch)(**kw)
    attr = LIST_ATTR[arch]
    if attr is None:
        children = [m for name, m in model.named_children() if name not in SKIP_CHILDREN]
    else:
        children = list(getattr(model, attr).children())
    return torch.nn.Sequential(*children[: upto + 1]).eval()


def run_job(job, repeat):
    net = truncated(job["arch"], job["upto"])
    kind = job["kind"]
    for p in net.parameters():
        p.requires_grad_(kind == "fwd_all")
    x = torch.rand(*job["shape"])

    def once():
        if kind == "fwd":
            with torch.no_grad():
                net(x)
            return
        xi = x.clone().requires_grad_()
        net(xi).sum().backward()
        for p in net.parameters():
            p.grad = None

    once()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        once()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"name": job["name"], "best_ms": min(times), "times_ms": times}


def serve(run_job, description=__doc__):
    """The peer's loop, shared with bench/train_torch.py: reads the jobs file line by line, runs each with
    run_job(job, repeat) and prints its result as one JSON line (an error is reported and the loop goes on)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("jobs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    with open(a.jobs) as f:
        for line in f:
            if line.strip():
                job = json.loads(line)
                try:
                    res = run_job(job, a.repeat)
                except Exception as e:  # report and go on: the benchmark is still writing jobs to us
                    res = {"name": job.get("name"), "error": "%s: %s" % (type(e).__name__, e)}
                print(json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(serve(run_job))
