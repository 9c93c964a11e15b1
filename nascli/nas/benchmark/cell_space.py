"""``CellNet``: the cell benchmark's search space as nascli model code (torch).

A NAS-Bench-201-style network sized for scikit-learn's 8x8 digits: stem (3x3 conv, BN) ->
``cells_per_stage`` cells at 8x8 with ``channels`` channels -> a residual reduction block
(stride 2, twice the channels) -> ``cells_per_stage`` cells at 4x4 -> BN, ReLU, global average
pool, linear. Every cell has the same six ``LayerChoice``s, keyed by edge (``"0_1"`` ...
``"2_3"``, NNI's NAS-Bench-201 keys), so one architecture picks one operation per edge for all
cells (``cell_graph`` describes the graph and its isomorphism classes).

The convolutions are ReLU-conv-BN with BatchNorm *without* affine parameters, in the trained
table and in supernets alike: an operation applied to an all-zero node then returns exactly zero,
so a cell computes exactly what its ``cell_graph.canonical_key`` says.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nascli.nas import LayerChoice
from nascli.nas.benchmark.cell_graph import EDGES, OPS

__all__ = ["CellNet", "Cell", "operation"]


class Zero(nn.Module):
    """The ``none`` operation: the edge contributes nothing (zeros of the input's shape)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ReLUConvBN(nn.Sequential):
    def __init__(self, channels: int, kernel: int):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(channels, affine=False),
        )


def operation(name: str, channels: int) -> nn.Module:
    """A fresh module for one of ``cell_graph.OPS``."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "conv_1x1":
        return ReLUConvBN(channels, 1)
    if name == "conv_3x3":
        return ReLUConvBN(channels, 3)
    raise ValueError(f"unknown operation {name!r} (allowed: {list(OPS)})")


class Cell(nn.Module):
    """Node j = sum over i < j of edge ``i_j``'s operation on node i; returns node 3."""

    def __init__(self, channels: int):
        super().__init__()
        self.edges = nn.ModuleDict(
            {
                edge: LayerChoice(
                    OrderedDict((op, operation(op, channels)) for op in OPS), key=edge
                )
                for edge in EDGES
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[f"{i}_{j}"](nodes[i]) for i in range(j)))
        return nodes[3]


class Reduction(nn.Module):
    """Halves the resolution and doubles the channels: 2x2 average pool, 1x1 conv, BN. Kept this
    light (NAS-Bench-201's residual block holds two 3x3 convolutions) so that the cells, not the
    fixed layers, decide how good a network is."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.pool(x)))


class CellNet(nn.Module):
    """The benchmark network (see the module docstring); input ``(N, 1, 8, 8)``, 10 classes."""

    def __init__(self, channels: int = 8, cells_per_stage: int = 1, n_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = [Cell(channels) for _ in range(cells_per_stage)]
        layers.append(Reduction(channels, 2 * channels))
        layers += [Cell(2 * channels) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(2 * channels), nn.ReLU())
        self.classifier = nn.Linear(2 * channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.cells(self.stem(x)))
        return self.classifier(x.mean((2, 3)))
