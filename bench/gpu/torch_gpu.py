"""bench/gpu/torch_gpu.py - the PyTorch side of bench/gpu/gpu.lua: the same work on the same GPU (CUDA or ROCm; the
CPU when torch has no GPU, for trying the package out), one job at a time, so that the benchmark interleaves its own
runs with ours.

    python3 bench/gpu/torch_gpu.py --repeat 5 [--device cuda] JOBS

JOBS is a file (or FIFO) of jobs, one JSON object a line:
  {"name", "kind": "forward", "arch": "vgg16" | "resnet50", "batch", "size"}     torchvision model, eval, no grad
  {"name", "kind": "bapps", "arch", "layer": "E" | "S" | "M" | "L", "batch"}      triplets of 64 x 64 patches
  {"name", "kind": "train", "task": "superres" | "delineation" | "autoencoder", "arch", "layer", "batch"}
The training tasks follow docs/benchmarks (the reference code's networks, losses and optimiser); bench/gpu/tasks.lua is
the dpl side of the same definitions.

Prints a first line {"torch", "device", "cuda", "driver"} and then, per job, {"name", "best_ms", "times_ms"} or
{"name", "error"}. Times: wall clock around each run, the GPU synchronised at its end, after two warm-up runs.
"""
import argparse
import json
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

LAYERS = {"alexnet": ("features", [1, 4, 7, 11]), "vgg16": ("features", [3, 8, 15, 29])}


def loss_network(arch, layer, device, train_mode=False, normalize=False):
    """The truncated feature extractor of the paper (frozen), as the reference code builds it."""
    attr, idx = LAYERS[arch]
    model = getattr(torchvision.models, arch)(weights=None)
    net = nn.Sequential(*list(getattr(model, attr).children())[: idx["ESML".index(layer)] + 1]).to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    net.train(train_mode)
    if not normalize:
        return net
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    return lambda x: net((x - mean) / std)


# ---- benchmark 2: super-resolution network (docs/benchmarks/superres.md) -------------------------------------------
class ConvLayer(nn.Module):
    def __init__(self, cin, cout, k, act="relu"):
        super().__init__()
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k)
        self.norm = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        h = self.norm(self.conv(self.pad(x)))
        return torch.relu(h) if self.act == "relu" else torch.tanh(h) if self.act == "tanh" else h


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = ConvLayer(c, c, 3), ConvLayer(c, c, 3, "linear")

    def forward(self, x):
        return self.b(self.a(x)) + x


class Deconv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = ConvLayer(c, c, 3)

    def forward(self, x):
        return self.layer(F.interpolate(x, scale_factor=2, mode="nearest"))


class SuperRes(nn.Module):
    def __init__(self, ups=2):
        super().__init__()
        self.layers = nn.Sequential(ConvLayer(3, 64, 9), *[Residual(64) for _ in range(4)],
                                    *[Deconv(64) for _ in range(ups)], ConvLayer(64, 3, 9, "tanh"))

    def forward(self, x):
        return (self.layers(x) + 1) * 0.5


# ---- benchmark 3: U-Net for road delineation (docs/benchmarks/delineation.md) ---------------------------------------------------------
class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        down = lambda cin, cout: nn.Conv2d(cin, cout, 4, 2, 1, bias=False)
        up = lambda cin, cout: nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.d1, self.d2, self.d3, self.d4 = down(4, 8), down(8, 16), down(16, 32), down(32, 32)
        self.u4, self.u3, self.u2, self.u1 = up(32, 32), up(64, 16), up(32, 8), up(16, 1)
        self.bn = nn.ModuleList(nn.BatchNorm2d(c) for c in (8, 16, 32, 32, 32, 16, 8, 1))

    def forward(self, x):
        d1 = self.bn[0](self.d1(x))
        d2 = self.bn[1](self.d2(torch.relu(d1)))
        d3 = self.bn[2](self.d3(torch.relu(d2)))
        d4 = self.bn[3](self.d4(torch.relu(d3)))
        u4 = self.bn[4](self.u4(torch.relu(d4)))
        u3 = self.bn[5](self.u3(torch.relu(torch.cat([u4, d3], 1))))
        u2 = self.bn[6](self.u2(torch.relu(torch.cat([u3, d2], 1))))
        u1 = self.bn[7](self.u1(torch.relu(torch.cat([u2, d1], 1))))
        return torch.sigmoid(u1)


# ---- benchmark 4: the autoencoder (docs/benchmarks/autoencoder.md), SVHN 64 x 64 ----------------------------------------------------------
class CVAE(nn.Module):
    def __init__(self):
        super().__init__()
        enc = []
        for cin, cout in ((3, 32), (32, 64), (64, 128), (128, 256)):
            enc += [nn.Conv2d(cin, cout, 4, 2), nn.BatchNorm2d(cout), nn.ReLU()]
        self.enc = nn.Sequential(*enc)
        self.mu = nn.Linear(1024, 64)
        self.fc = nn.Linear(64, 1024)
        dec = []
        for cin, cout, k in ((1024, 128, 5), (128, 64, 5), (64, 32, 6)):
            dec += [nn.ConvTranspose2d(cin, cout, k, 2), nn.BatchNorm2d(cout), nn.ReLU()]
        dec += [nn.ConvTranspose2d(32, 3, 6, 2), nn.Sigmoid()]
        self.dec = nn.Sequential(*dec)

    def forward(self, x):
        z = self.mu(self.enc(x).flatten(1))
        return self.dec(torch.relu(self.fc(z)).view(-1, 1024, 1, 1))


def train_step_fn(job, device):
    arch, layer, batch = job.get("arch", "vgg16"), job["layer"], job["batch"]
    g = torch.Generator(device="cpu").manual_seed(0)
    rand = lambda *s: torch.rand(*s, generator=g).to(device)
    task = job["task"]
    if task == "superres":
        net = SuperRes().to(device).train()
        loss_net = loss_network(arch, layer, device)
        lr_img, hr = rand(batch, 3, 72, 72), rand(batch, 3, 288, 288)

        def loss_fn():
            with torch.no_grad():
                target = loss_net(hr)
            return F.mse_loss(loss_net(net(lr_img)), target)
    elif task == "delineation":
        net = UNet().to(device).train()
        loss_net = loss_network(arch, layer, device, train_mode=True, normalize=True)
        img, y = rand(batch, 3, 224, 224), (rand(batch, 1, 224, 224) > 0.5).float()

        def loss_fn():
            with torch.no_grad():
                target = loss_net(y.repeat(1, 3, 1, 1))
            pred = torch.zeros_like(y)
            total = 0
            for i in (1, 2, 3):   # K = 3 iterations, weights i / 6
                pred = net(torch.cat([img, pred], 1))
                f = loss_net(pred.repeat(1, 3, 1, 1))
                total = total + i * (F.binary_cross_entropy(pred, y) + 0.01 * F.mse_loss(f, target)) / 6
            return total
    elif task == "autoencoder":
        net = CVAE().to(device).train()
        loss_net = loss_network(arch, layer, device, train_mode=True)
        x = rand(batch, 3, 64, 64)

        def loss_fn():
            with torch.no_grad():
                target = loss_net(x)
            return F.mse_loss(loss_net(net(x)), target)
    else:
        raise ValueError("unknown task " + task)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss
    return step


def forward_fn(job, device):
    model = getattr(torchvision.models, job["arch"])(weights=None).to(device).eval()
    x = torch.rand(job["batch"], 3, job["size"], job["size"], device=device)

    def run():
        with torch.no_grad():
            return model(x)
    return run


def bapps_fn(job, device):
    attr, idx = LAYERS[job["arch"]]
    m = getattr(torchvision.models, job["arch"])(weights=None)
    net = nn.Sequential(*list(getattr(m, attr).children())[: idx["ESML".index(job["layer"])] + 1]).to(device).eval()
    batch = job["batch"]
    x = torch.rand(3 * batch, 3, 64, 64, device=device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def run():
        with torch.no_grad():
            f = F.normalize(net((x - mean) / std), p=2, dim=1)
            ref, p0, p1 = f[:batch], f[batch:2 * batch], f[2 * batch:]
            d0 = ((ref - p0) ** 2).sum(1).mean((1, 2))
            d1 = ((ref - p1) ** 2).sum(1).mean((1, 2))
            return (d0 < d1).float().sum().item()
    return run


def run_job(job, repeat, device):
    fn = {"forward": forward_fn, "bapps": bapps_fn, "train": train_step_fn}[job["kind"]](job, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"name": job["name"], "best_ms": min(times), "times_ms": times}


def driver_version():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or None
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("jobs")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True   # PyTorch at its fastest: cuDNN picks its algorithms per shape
    info = {"torch": torch.__version__, "device": a.device, "cuda": torch.version.cuda,
            "hip": getattr(torch.version, "hip", None), "driver": driver_version(), "threads": torch.get_num_threads()}
    if a.device.startswith("cuda"):
        info["name"] = torch.cuda.get_device_name()
    print(json.dumps(info), flush=True)
    with open(a.jobs) as f:
        for line in f:
            if line.strip():
                job = json.loads(line)
                try:
                    res = run_job(job, a.repeat, a.device)
                except Exception as e:  # report and go on: the benchmark is still writing jobs to us
                    res = {"name": job.get("name"), "error": "%s: %s" % (type(e).__name__, e)}
                print(json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
