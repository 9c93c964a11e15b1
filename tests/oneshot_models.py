"""Tiny search spaces and data for one-shot trainer tests (random tensors, seconds on a CPU)."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nascli.nas import InputChoice, LayerChoice


class TinyNet(nn.Module):
    """stem -> op1 (3 candidates) -> op2 (2) -> cell_in picks n_chosen of [stem, op1, op2]
    -> BN -> head."""

    def __init__(self, channels: int = 8, classes: int = 4, n_chosen: int = 2):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.op1 = LayerChoice(
            OrderedDict(
                conv3=nn.Conv2d(channels, channels, 3, padding=1),
                conv5=nn.Conv2d(channels, channels, 5, padding=2),
                pool=nn.MaxPool2d(3, 1, 1),
            ),
            key="op1",
        )
        self.op2 = LayerChoice([nn.Conv2d(channels, channels, 3, padding=1), nn.Identity()],
                               key="op2")  # fmt: skip
        self.cell_in = InputChoice(n_candidates=3, n_chosen=n_chosen, key="cell_in")
        self.bn = nn.BatchNorm2d(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.stem(x))
        a = self.op1(s)
        b = self.op2(a)
        c = self.bn(self.cell_in([s, a, b]))
        return self.head(c.mean((2, 3)))


def tiny_data(n: int = 64, seed: int = 0) -> TensorDataset:
    """Images whose class is the quartile of their mean brightness (learnable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    means = x.mean((1, 2, 3))
    y = torch.bucketize(means, means.quantile(torch.tensor([0.25, 0.5, 0.75])))
    return TensorDataset(x, y)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"accuracy": float((output.argmax(1) == target).float().mean())}


def reward(output: torch.Tensor, target: torch.Tensor) -> float:
    return accuracy(output, target)["accuracy"]


def build_trainer(cls, make_model, epochs: int = 1, **kwargs):
    """``cls`` on a fresh ``make_model()`` (torch seed 0) with SGD, cross-entropy, ``accuracy``
    (and ``reward`` for ENAS), ``tiny_data()``, batch 16, on the CPU; ``kwargs`` go to ``cls``."""
    from nascli.nas.oneshot import EnasTrainer

    torch.manual_seed(0)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    head = (model, nn.CrossEntropyLoss(), accuracy)
    if cls is EnasTrainer:
        head = (*head, reward)
    return cls(*head, optimizer, epochs, tiny_data(), batch_size=16, device="cpu", **kwargs)
