"""The search space and the flow every one-shot example shares (scikit-learn's bundled digits,
offline): build the supernet, let a trainer search it, export the architecture, retrain it from
scratch as a plain model with ``apply_fixed_architecture`` and compare its test accuracy with a
randomly chosen architecture trained the same way.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nascli.nas import InputChoice, LayerChoice, apply_fixed_architecture, model_search_space
from nascli.nas.oneshot import BaseOneShotTrainer

OPS = ("conv3x3", "conv5x5", "dilconv3x3", "maxpool", "avgpool")


def conv_bn(channels: int, kernel: int, dilation: int = 1) -> nn.Module:
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    )


def candidates(channels: int) -> OrderedDict[str, nn.Module]:
    return OrderedDict(
        conv3x3=conv_bn(channels, 3),
        conv5x5=conv_bn(channels, 5),
        dilconv3x3=conv_bn(channels, 3, dilation=2),
        maxpool=nn.MaxPool2d(3, 1, 1),
        avgpool=nn.AvgPool2d(3, 1, 1),
    )


class DigitsNet(nn.Module):
    """stem -> block1 -> block2 (+ a skip chosen from [stem, block1]) -> block3 -> classifier;
    5 x 5 x 2 x 5 = 250 architectures."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.block1 = LayerChoice(candidates(channels), key="block1")
        self.block2 = LayerChoice(candidates(channels), key="block2")
        self.skip = InputChoice(n_candidates=2, n_chosen=1, key="skip")  # [stem, block1]
        self.block3 = LayerChoice(candidates(channels), key="block3")
        self.classifier = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.block1(s)
        b = self.block2(a) + self.skip([s, a])
        c = self.block3(b)
        return self.classifier(c.mean((2, 3)))


def accuracy(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"accuracy": float((output.argmax(1) == target).float().mean())}


def digits(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """(search/train set 80 %, test set 20 %) of the 1,797 digits, images scaled to [0, 1]."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(y))
    train, test = order[:cut], order[cut:]
    return TensorDataset(x[train], y[train]), TensorDataset(x[test], y[test])


def retrain(arch: dict[str, Any], train: TensorDataset, test: TensorDataset, epochs: int,
            seed: int = 0) -> float:  # fmt: skip
    """Build a fresh model, apply ``arch`` (a plain model now), train it, return test accuracy."""
    torch.manual_seed(seed)
    model = DigitsNet()
    apply_fixed_architecture(model, arch)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        x, y = test.tensors
        return accuracy(model(x), y)["accuracy"]


def random_architecture(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    space = model_search_space(DigitsNet())
    return {key: rng.randrange(spec.n_candidates) if key != "skip" else [rng.randrange(2)]
            for key, spec in space.items()}  # fmt: skip


def run_example(
    name: str,
    make_trainer: Callable[[nn.Module, TensorDataset, argparse.Namespace], BaseOneShotTrainer],
    search_epochs: int,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Parse ``--epochs --retrain-epochs --seed --out`` (and the example's own flags), search,
    export (to ``--out`` when given), retrain, and print the comparison."""
    parser = argparse.ArgumentParser(description=f"{name} on the digits set")
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--epochs", type=int, default=search_epochs, help="search epochs")
    parser.add_argument("--retrain-epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-archs", type=int, default=3,
                        help="random architectures retrained for the comparison")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="where to write arch.json")
    args = parser.parse_args()
    train, test = digits(args.seed)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    trainer = make_trainer(DigitsNet(), train, args)
    trainer.fit()
    searched = time.perf_counter() - start
    arch = trainer.export(file=args.out)
    print(f"{name}: searched {args.epochs} epochs in {searched:.1f} s; exported {json.dumps(arch)}")
    found = retrain(arch, train, test, args.retrain_epochs, args.seed)
    randoms = [random_architecture(args.seed + 100 + i) for i in range(args.random_archs)]
    scores = [retrain(a, train, test, args.retrain_epochs, args.seed) for a in randoms]
    print(f"retrained {args.retrain_epochs} epochs, test accuracy: searched architecture "
          f"{found:.4f}; {len(randoms)} random architectures mean {sum(scores) / len(scores):.4f} "
          f"(min {min(scores):.4f}, max {max(scores):.4f})")  # fmt: skip
    print(f"total {time.perf_counter() - start:.1f} s")
