"""PyTorch peer of bench/infer.bench.ts: inference of EfficientNet (width/depth multipliers) + Dense(512) in eval
mode under torch.inference_mode(), NCHW float32, on the CPU. Prints one line `RESULT {json}`. The blocks are
bench/torch_train.py's (TF-style static SAME padding, SE on the block input width, swish)."""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import STAGES, Conv, MBConv, swish  # noqa: E402


def round_filters(filters, width, divisor=8):
    if not width or width == 1:
        return filters
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return rounded


def round_repeats(repeats, depth):
    return repeats if not depth or depth == 1 else int(math.ceil(depth * repeats))


class EmbeddingNet(nn.Module):
    def __init__(self, size, width, depth, dim):
        super().__init__()
        stem = round_filters(32, width)
        self.stem = Conv(3, stem, 3, 2, size)
        self.bn0 = nn.BatchNorm2d(stem, eps=1e-3)
        size = math.ceil(size / 2)
        specs = []
        for r, k, s, e, cin, cout in STAGES:
            cin, cout = round_filters(cin, width), round_filters(cout, width)
            for i in range(round_repeats(r, depth)):
                specs.append((cin if i == 0 else cout, cout, e, k, s if i == 0 else 1))
        blocks = []
        for cin, cout, e, k, s in specs:
            blocks.append(MBConv(cin, cout, e, k, s, size, 0))
            size = math.ceil(size / s)
        self.blocks = nn.Sequential(*blocks)
        last, head = specs[-1][1], round_filters(1280, width)
        self.head = nn.Conv2d(last, head, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(head, eps=1e-3)
        self.fc = nn.Linear(head, dim)

    def forward(self, x):
        h = swish(self.bn0(self.stem(x)))
        h = self.blocks(h)
        h = swish(self.bn1(self.head(h)))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--batches', type=int, default=8)
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--width', type=float, default=1.0)
    p.add_argument('--depth', type=float, default=1.0)
    p.add_argument('--dim', type=int, default=512)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = EmbeddingNet(a.size, a.width, a.depth, a.dim).eval()
    x = torch.rand(a.batch, 3, a.size, a.size)
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(a.batches):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    print('RESULT ' + json.dumps({
        'runtime': f'pytorch {a.threads}T', 'detail': f'torch {torch.__version__} eager, inference_mode, {a.threads} thread' + ('s' if a.threads > 1 else ''),
        'batch': a.batch, 'batches': a.batches, 'imgPerSec': a.batch / (med / 1000), 'bestImgPerSec': a.batch / (min(times) / 1000),
        'batchMs': [round(t, 1) for t in times], 'params': sum(t.numel() for t in model.parameters()),
        'peakRssMb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == '__main__':
    main()
