"""PyTorch peer of bench/train.bench.ts: the same training step (EfficientNet-B0 + Dense(512), 64 px,
label-smoothed CE + batch-hard soft-margin triplet + center loss, backward, Adam) on the CPU with 2 threads
(or, with --device cuda, on the GPU: bench:gpu's peer, fp32 eager, PyTorch's default settings).
Prints one line `RESULT {json}`. Self-contained (no torchvision): the block table of EfficientNet-B0 as in
lukemelas EfficientNet-PyTorch 0.5.1, TF-style static SAME padding, SE on the block input width, swish."""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


def same_pad(k, s, size):
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Module):
    def __init__(self, cin, cout, k, s, size, groups=1, bias=False):
        super().__init__()
        a, b = same_pad(k, s, size)
        self.pad = nn.ZeroPad2d((a, b, a, b)) if a or b else nn.Identity()
        self.conv = nn.Conv2d(cin, cout, k, s, groups=groups, bias=bias)

    def forward(self, x):
        return self.conv(self.pad(x))


def swish(x):
    return x * torch.sigmoid(x)


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, k, s, size, drop):
        super().__init__()
        mid = cin * expand
        self.expand = (Conv(cin, mid, 1, 1, size), nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)) if expand != 1 else None
        if self.expand:
            self.exp_conv, self.exp_bn = self.expand
        self.dw = Conv(mid, mid, k, s, size, groups=mid)
        self.bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        sq = max(1, int(cin * 0.25))
        self.se_reduce = nn.Conv2d(mid, sq, 1)
        self.se_expand = nn.Conv2d(sq, mid, 1)
        self.project = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.skip = s == 1 and cin == cout
        self.drop = drop

    def forward(self, x):
        h = x
        if self.expand:
            h = swish(self.exp_bn(self.exp_conv(h)))
        h = swish(self.bn1(self.dw(h)))
        s = F.adaptive_avg_pool2d(h, 1)
        h = torch.sigmoid(self.se_expand(swish(self.se_reduce(s)))) * h
        h = self.bn2(self.project(h))
        if self.skip:
            if self.training and self.drop > 0:
                keep = 1 - self.drop
                mask = torch.floor(keep + torch.rand(h.shape[0], 1, 1, 1))
                h = h / keep * mask
            h = h + x
        return h


class Triarchy(nn.Module):
    def __init__(self, size, classes):
        super().__init__()
        self.stem = Conv(3, 32, 3, 2, size)
        self.bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        size = math.ceil(size / 2)
        specs = []
        for r, k, s, e, cin, cout in STAGES:
            for i in range(r):
                specs.append((cin if i == 0 else cout, cout, e, k, s if i == 0 else 1))
        blocks = []
        for idx, (cin, cout, e, k, s) in enumerate(specs):
            blocks.append(MBConv(cin, cout, e, k, s, size, 0.2 * idx / len(specs)))
            size = math.ceil(size / s)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(320, 1280, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(1280, eps=1e-3, momentum=0.01)
        self.fc1 = nn.Linear(1280, 512)
        self.fc2 = nn.Linear(512, classes)
        self.bn2 = nn.BatchNorm1d(classes)
        self.centers = nn.Parameter(torch.empty(classes, 512).uniform_(-1 / math.sqrt(512), 1 / math.sqrt(512)))

    def forward(self, x):
        h = swish(self.bn0(self.stem(x)))
        h = self.blocks(h)
        h = swish(self.bn1(self.head(h)))
        f = self.fc1(F.adaptive_avg_pool2d(h, 1).flatten(1))
        return f, self.bn2(self.fc2(f))


def loss_fn(model, f, logits, y):
    c = logits.shape[1]
    t = F.one_hot(y, c).float() * 0.9 + 0.1 / c
    ce = (-t * F.log_softmax(logits, 1)).sum(1).mean()
    d = torch.cdist(f, f).clamp_min(1e-6)
    same = y[:, None] == y[None, :]
    d_ap = torch.where(same, d, torch.full_like(d, -1e30)).max(1).values
    d_an = torch.where(same, torch.full_like(d, 1e30), d).min(1).values
    tri = F.softplus(d_ap - d_an).mean()
    ctr = ((f - model.centers[y]) ** 2).sum(1).mean()
    return ce + tri + ctr


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    per_id = max(2, a.batch // 8)
    classes = math.ceil(a.batch / per_id)
    model = Triarchy(a.size, classes).train().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(a.batch, 3, a.size, a.size).to(dev)
    y = (torch.arange(a.batch) // per_id).to(dev)

    def step():
        opt.zero_grad()
        f, logits = model(x)
        loss = loss_fn(model, f, logits, y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(max(1, a.warmup)):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    print('RESULT ' + json.dumps({
        'backend': 'pytorch', 'batch': a.batch,
        'detail': f'torch {torch.__version__}, ' + (torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'{a.threads} thread' + ('s' if a.threads > 1 else '')),
        'steps': a.steps, 'warmup': max(1, a.warmup), 'imgPerSec': a.batch / (med / 1000), 'bestImgPerSec': a.batch / (min(times) / 1000), 'stepMs': [round(t) for t in times],
        'peakRssMb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == '__main__':
    main()
