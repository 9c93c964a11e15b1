"""Training and measuring one ``CellNet`` architecture: what each trial of the benchmark's
generation runs, and what the table's rows hold (torch).

``digits_splits`` is the benchmark's fixed dataset, built offline from scikit-learn's digits: the
1,797 images are split 1,000 / 400 / 397 (training / validation / test) by original image, then
each original becomes distorted copies (2 per training image, 3 per validation and test image):
a random rotation within +-15 degrees, scale within +-10 %, shift within +-1 pixel and Gaussian
noise (sd 0.1), from a fixed seed. Plain digits is too easy for a benchmark: most cells reach
97-99 % and differ by less than the seed-to-seed spread (Spearman rho 0.62-0.83 between seeds);
distorted, the cells spread over 50-90 % and rank alike across seeds (rho about 0.9 on a sample
of 40 classes). ``train_and_measure`` trains the architecture once per seed, all seeds in
lockstep, with the same recipe for every architecture, and returns per-seed validation
curves, final validation and test accuracies, and the model's parameters, FLOPs (multiply-adds
of one image) and CPU latency (median forward time of one image, one thread).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nascli.nas import apply_fixed_architecture
from nascli.nas.benchmark.cell_space import CellNet

__all__ = ["Splits", "digits_splits", "train_and_measure", "count_flops", "cpu_latency_ms"]

Splits = tuple[tuple[torch.Tensor, torch.Tensor], ...]
SPLIT_SEED = 0
N_TRAIN, N_VALID = 1000, 400
COPIES = (2, 3, 3)  # distorted copies per training / validation / test image
DISTORTION = {"rotate_degrees": 15.0, "scale": 0.1, "shift_pixels": 1.0, "noise_sd": 0.1,
              "seed": 7}  # fmt: skip
RECIPE = {"optimizer": "Adam", "lr": 0.01, "schedule": "cosine", "batch_size": 50,
          "epochs": 6, "channels": 8, "cells_per_stage": 1}  # fmt: skip
DATASET = ("scikit-learn digits distorted: 1,000 / 400 / 397 originals (train / validation / "
           "test), 2 / 3 / 3 distorted copies each: 2,000 / 1,200 / 1,191 images")  # fmt: skip


def digits_splits(cache: str | Path | None = None) -> Splits:
    """``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))``, images in [0, 1] of shape
    (N, 1, 8, 8), the same tensors on every call (see the module docstring). With ``cache``,
    read from / written to that ``torch.save`` file (trials then need no scikit-learn import)."""
    if cache is not None and Path(cache).is_file():
        return tuple(tuple(pair) for pair in torch.load(cache))  # type: ignore[return-value]
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    parts = order[:N_TRAIN], order[N_TRAIN : N_TRAIN + N_VALID], order[N_TRAIN + N_VALID :]
    noise = torch.Generator().manual_seed(DISTORTION["seed"])
    splits = []
    for copies, part in zip(COPIES, parts, strict=True):
        images = [_distorted(x[part], noise) for _ in range(copies)]
        splits.append((torch.cat(images), y[part].repeat(copies)))
    if cache is not None:
        torch.save(splits, cache)
    return tuple(splits)  # type: ignore[return-value]


def _distorted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random rotation, scale and shift of each image, plus Gaussian noise, clamped to [0, 1]."""
    n, size = len(x), x.shape[-1]

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    angle = uniform(n) * math.radians(DISTORTION["rotate_degrees"])
    scale = 1 + uniform(n) * DISTORTION["scale"]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / scale
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale
    theta[:, 1, 1] = torch.cos(angle) / scale
    theta[:, :, 2] = uniform(n, 2) * DISTORTION["shift_pixels"] * 2 / size
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    noisy = moved + DISTORTION["noise_sd"] * torch.randn(moved.shape, generator=generator)
    return noisy.clamp(0.0, 1.0)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def build(architecture: Mapping[str, Any], seed: int) -> nn.Module:
    """A fresh plain ``CellNet`` with ``architecture`` applied, weights drawn from ``seed``."""
    torch.manual_seed(seed)
    model = CellNet(RECIPE["channels"], RECIPE["cells_per_stage"])
    apply_fixed_architecture(model, dict(architecture))
    return model


def train_and_measure(
    architecture: Mapping[str, Any],
    splits: Splits,
    seeds: Sequence[int] = (0, 1),
    epochs: int = RECIPE["epochs"],
    on_epoch: Callable[[int, list[float]], None] | None = None,
) -> dict[str, Any]:
    """Train ``architecture`` once per seed; ``on_epoch(epoch, val_accuracies)`` after each epoch.

    Returns ``{"seeds", "curves" (per seed, per epoch validation accuracy), "val", "test" (per
    seed, final), "params", "flops", "latency_ms", "train_seconds"}``.
    """
    (xt, yt), (xv, yv), (xs, ys) = splits
    models = [build(architecture, s) for s in seeds]
    trainable = [any(p.requires_grad for p in m.parameters()) for m in models]
    optims = [
        torch.optim.Adam(m.parameters(), lr=RECIPE["lr"]) if ok else None
        for m, ok in zip(models, trainable, strict=True)
    ]
    steps = epochs * -(-len(xt) // RECIPE["batch_size"])
    scheds = [
        torch.optim.lr_scheduler.CosineAnnealingLR(o, steps) if o is not None else None
        for o in optims
    ]
    orders = [torch.Generator().manual_seed(1000 + s) for s in seeds]
    curves: list[list[float]] = [[] for _ in seeds]
    start = time.perf_counter()
    bs = RECIPE["batch_size"]
    for epoch in range(epochs):
        for k, model in enumerate(models):
            model.train()
            order = torch.randperm(len(xt), generator=orders[k])
            for i in range(0, len(order), bs):
                batch = order[i : i + bs]
                loss = F.cross_entropy(model(xt[batch]), yt[batch])
                if optims[k] is not None:
                    optims[k].zero_grad()
                    loss.backward()
                    optims[k].step()
                    scheds[k].step()
            curves[k].append(round(_accuracy(model, xv, yv), 5))
        if on_epoch is not None:
            on_epoch(epoch, [c[-1] for c in curves])
    seconds = time.perf_counter() - start
    image = xs[:1]
    return {
        "seeds": list(seeds),
        "curves": curves,
        "val": [c[-1] for c in curves],
        "test": [round(_accuracy(m, xs, ys), 5) for m in models],
        "params": sum(p.numel() for p in models[0].parameters()),
        "flops": count_flops(models[0], image),
        "latency_ms": round(cpu_latency_ms(models[0], image), 4),
        "train_seconds": round(seconds, 3),
    }


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of convolutions and linear layers for one forward pass of ``x``."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += out.numel() * k

    def linear_hook(module: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return int(total)


def cpu_latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 30) -> float:
    """Median wall time of ``model(x)`` in eval mode, milliseconds (after 5 warm-up runs)."""
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 5):
            start = time.perf_counter()
            model(x)
            if i >= 5:
                times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0
