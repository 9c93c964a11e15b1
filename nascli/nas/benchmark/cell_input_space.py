"""``CellInputNet``: the cell benchmark's space written with ``InputChoice`` picks, judged by the
same table.

Every edge ``i_j`` chooses an operation among ``skip_connect``, ``conv_1x1``, ``conv_3x3``
(``LayerChoice`` key ``op_i_j``) and every node ``j`` chooses which of its incoming edges it
sums (``InputChoice`` key ``node_j``, ``n_chosen: null``: any subset of the ``j`` edges from
the earlier nodes, NAS-Bench-201's cell as a DARTS / ENAS-style "pick earlier layers" space).
An edge a node does not pick is the cell benchmark's ``none``; a node that picks nothing is the
all-zero node. So every architecture of this space is one of the 4,096 cells, computes exactly
what that cell computes (``none`` returns zeros and BatchNorm has no affine parameters), and
``to_cell_architecture`` gives the cell, whose table entry is the ground truth. The space has
3^6 x 2^6 = 46,656 architectures (many per cell: an edge's operation does not matter when the
edge is not picked).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from nascli.nas import InputChoice, LayerChoice, model_search_space
from nascli.nas.benchmark.cell_graph import EDGES
from nascli.nas.benchmark.cell_space import CellNet, operation

__all__ = ["CellInputNet", "InputCell", "EDGE_OPS", "to_cell_architecture"]

#: the operations an edge chooses among (``none`` is "not picked by its node")
EDGE_OPS = ("skip_connect", "conv_1x1", "conv_3x3")


class InputCell(nn.Module):
    """Node j = the sum of the picked edges ``op_i_j(node i)``, i < j (zeros when none is
    picked); returns node 3."""

    def __init__(self, channels: int):
        super().__init__()
        self.ops = nn.ModuleDict({
            edge: LayerChoice(OrderedDict((op, operation(op, channels)) for op in EDGE_OPS),
                              key=f"op_{edge}")
            for edge in EDGES
        })  # fmt: skip
        self.picks = nn.ModuleDict({
            f"node_{j}": InputChoice(n_candidates=j, n_chosen=None, key=f"node_{j}")
            for j in (1, 2, 3)
        })  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            incoming = [self.ops[f"{i}_{j}"](nodes[i]) for i in range(j)]
            picked = self.picks[f"node_{j}"](incoming)
            nodes.append(x.mul(0.0) if picked is None else picked)
        return nodes[3]


class CellInputNet(CellNet):
    """``CellNet`` with ``InputCell``s (see the module docstring); input ``(N, 1, 8, 8)``."""

    def __init__(self, channels: int = 8, cells_per_stage: int = 1, n_classes: int = 10):
        super().__init__(channels, cells_per_stage, n_classes)
        layers: list[nn.Module] = [InputCell(channels) for _ in range(cells_per_stage)]
        layers.append(self.cells[cells_per_stage])  # the reduction block
        layers += [InputCell(2 * channels) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*layers)


_SPACE: spaces.SearchSpace | None = None


def _space() -> spaces.SearchSpace:
    global _SPACE
    if _SPACE is None:
        _SPACE = model_search_space(CellInputNet())
    return _SPACE


def to_cell_architecture(architecture: Mapping[str, Any]) -> dict[str, str]:
    """The cell (``{edge: operation}``, the table's keys) an architecture of ``CellInputNet``
    computes. Raises ``ArchitectureError`` for an architecture that does not fit the space."""
    space = _space()
    decisions = spaces.normalize_architecture(space, architecture)  # multi-hot per key
    cell: dict[str, str] = {}
    for edge in EDGES:
        i, j = (int(n) for n in edge.split("_"))
        if decisions[f"node_{j}"][i]:
            cell[edge] = EDGE_OPS[[bool(v) for v in decisions[f"op_{edge}"]].index(True)]
        else:
            cell[edge] = "none"
    return cell
