"""Search spaces shaped like the toy models NNI v1.9's NAS unit tests use (written from their
description, not copied): auto-keyed choices with ``return_mask`` and an optional input that may
come back None, ENAS-micro-like nested scopes whose keys repeat across layers (their masks used
as NNI's models use them, unlike tests/models.py), and a choice
nested inside a choice. Inputs are 3-channel images; 8x8 keeps the tests fast."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nascli.nas import InputChoice, LayerChoice, MutableScope


class NaiveSpace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = LayerChoice([nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(3, 6, 5, padding=2)])
        self.conv2 = LayerChoice(
            [nn.Conv2d(6, 16, 3, padding=1), nn.Conv2d(6, 16, 5, padding=2)], return_mask=True
        )
        self.conv3 = nn.Conv2d(16, 16, 1)
        self.skip_mask = InputChoice(n_candidates=2, return_mask=True)
        self.skip = InputChoice(n_candidates=1)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x, mask = self.conv2(x)
        assert mask.numel() == 2
        y = F.relu(self.conv3(x))
        _, skip_mask = self.skip_mask([x, y])
        assert skip_mask.numel() == 2
        extra = self.skip([x])
        if extra is not None:
            y = y + extra
        return self.fc(self.bn(y).mean((2, 3)))


class Cell(MutableScope):
    def __init__(self, key: str, labels: list[str], channels: int) -> None:
        super().__init__(key)
        self.input = InputChoice(choose_from=labels, n_chosen=1, return_mask=True,
                                 key=f"{key}_input")  # fmt: skip
        self.op = LayerChoice(
            [nn.Conv2d(channels, channels, 3, padding=1),
             nn.Conv2d(channels, channels, 5, padding=2),
             nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1), nn.Identity()],
            key=f"{key}_op",
        )  # fmt: skip

    def forward(self, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        chosen, mask = self.input(inputs)
        return self.op(chosen), mask


class Node(MutableScope):
    def __init__(self, key: str, labels: list[str], channels: int) -> None:
        super().__init__(key)
        self.x = Cell(f"{key}_x", labels, channels)
        self.y = Cell(f"{key}_y", labels, channels)

    def forward(self, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ox, mx = self.x(inputs)
        oy, my = self.y(inputs)
        return ox + oy, mx | my


class Layer(nn.Module):
    def __init__(self, num_nodes: int, channels: int) -> None:
        super().__init__()
        labels = ["", ""]
        self.nodes = nn.ModuleList()
        for i in range(num_nodes):
            self.nodes.append(Node(f"node_{i}", list(labels), channels))
            labels.append(f"node_{i}")
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, pprev: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [pprev, prev]
        used = torch.zeros(len(self.nodes) + 2, dtype=torch.bool)
        for node in self.nodes:
            out, mask = node(outs)
            used[: mask.numel()] |= mask.cpu().bool()
            outs.append(out)
        unused = [o for o, u in zip(outs, used, strict=True) if not u] or [outs[-1]]
        return prev, self.bn(sum(unused))


class ScopedSpace(nn.Module):
    """Every layer builds the same node / cell keys: the layers share every decision."""

    def __init__(self, num_layers: int = 2, num_nodes: int = 2, channels: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.layers = nn.ModuleList(Layer(num_nodes, channels) for _ in range(num_layers))
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = cur = self.stem(x)
        for layer in self.layers:
            prev, cur = layer(prev, cur)
        return self.fc(cur.mean((2, 3)))


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        class WithInput(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 3, 1)
                self.pick = InputChoice(n_candidates=2)

        self.choice = LayerChoice([WithInput(), WithInput()])
