"""Forward+backward cost of the search-space machinery, measured side by side in one run.

(a) a hand-written CNN; (b) the same network written with LayerChoice/InputChoice, after
``apply_fixed_architecture`` (pruned: should cost the same as (a)); (c) the search model under a
``RandomMutator`` fixed to the same architecture (every forward asks the mutator). Rounds are
interleaved, in a shuffled order, so that machine noise hits all three alike; the median of the
rounds is reported.

    python benchmarks/mutable_overhead.py [--rounds 15 --steps 20 --batch 32]

Goals (issue "search-space API"): (b)/(a) <= 1.02, (c)/(a) <= 1.10.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascli.nas import InputChoice, LayerChoice, RandomMutator, apply_fixed_architecture

CHANNELS = 32
BLOCKS = 4
ARCH = {}
for _b in range(BLOCKS):
    ARCH[f"block{_b}_op"] = "conv5x5" if _b % 2 else "conv3x3"
    ARCH[f"block{_b}_skip"] = [0]


def _ops(c: int) -> OrderedDict[str, nn.Module]:
    return OrderedDict(
        conv3x3=nn.Conv2d(c, c, 3, padding=1),
        conv5x5=nn.Conv2d(c, c, 5, padding=2),
        dil3x3=nn.Conv2d(c, c, 3, padding=2, dilation=2),
    )


class SearchCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, CHANNELS, 3, padding=1)
        self.ops = nn.ModuleList(
            LayerChoice(_ops(CHANNELS), key=f"block{b}_op") for b in range(BLOCKS)
        )
        # The skip idiom of NNI's guide: one optional input, None when not chosen.
        self.skips = nn.ModuleList(
            InputChoice(n_candidates=1, key=f"block{b}_skip") for b in range(BLOCKS)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(CHANNELS) for _ in range(BLOCKS))
        self.fc = nn.Linear(CHANNELS, 10)

    def forward(self, x):
        x = self.stem(x)
        for op, skip, bn in zip(self.ops, self.skips, self.bns, strict=True):
            y = F.relu(bn(op(x)))
            shortcut = skip([x])
            x = y if shortcut is None else y + shortcut
        return self.fc(x.mean((2, 3)))


class HandCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, CHANNELS, 3, padding=1)
        self.ops = nn.ModuleList(_ops(CHANNELS)[ARCH[f"block{b}_op"]] for b in range(BLOCKS))
        self.bns = nn.ModuleList(nn.BatchNorm2d(CHANNELS) for _ in range(BLOCKS))
        self.fc = nn.Linear(CHANNELS, 10)

    def forward(self, x):
        x = self.stem(x)
        for op, bn in zip(self.ops, self.bns, strict=True):
            x = F.relu(bn(op(x))) + x
        return self.fc(x.mean((2, 3)))


def _time_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)

    hand = HandCNN()
    fixed = SearchCNN()
    apply_fixed_architecture(fixed, ARCH)
    search = SearchCNN()
    RandomMutator(search).apply_architecture(ARCH)
    models = {
        "(a) hand-written": hand,
        "(b) fixed architecture": fixed,
        "(c) search model + mutator": search,
    }
    assert sum(p.numel() for p in fixed.parameters()) == sum(p.numel() for p in hand.parameters())

    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    for model in models.values():  # warm-up
        _time_steps(model, x, y, 3)
    times: dict[str, list[float]] = {name: [] for name in models}
    order = list(models)
    shuffler = random.Random(0)
    for _ in range(args.rounds):
        shuffler.shuffle(order)  # no model always runs first or last in a round
        for name in order:
            times[name].append(_time_steps(models[name], x, y, args.steps))

    base = statistics.median(times["(a) hand-written"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"{args.rounds} rounds x {args.steps} steps (median of rounds)"
    )
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:30s} {median * 1e3:8.2f} ms/step   ratio to (a): {median / base:.3f}")
    ratio_b = statistics.median(times["(b) fixed architecture"]) / base
    ratio_c = statistics.median(times["(c) search model + mutator"]) / base
    print(f"(b)/(a) = {ratio_b:.3f} (goal <= 1.02)   (c)/(a) = {ratio_c:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
