"""Small search-space models used across the tests (input: N x 3 x 16 x 16)."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascli.nas import InputChoice, LayerChoice, MutableScope


class NaiveSpace(nn.Module):
    """Both choice types, return_mask, an optional input that may be None, auto keys."""

    def __init__(self, return_mask: bool = True):
        super().__init__()
        self.conv1 = LayerChoice([nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(3, 6, 5, padding=2)])
        self.conv2 = LayerChoice(
            OrderedDict(
                conv3x3=nn.Conv2d(6, 8, 3, padding=1), conv5x5=nn.Conv2d(6, 8, 5, padding=2)
            ),
            return_mask=return_mask,
        )
        self.conv3 = nn.Conv2d(8, 8, 1)
        self.skipconnect = InputChoice(n_candidates=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)
        self.last_mask = None

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = self.conv2(x)
        if isinstance(x, tuple):
            x, self.last_mask = x
        out = F.relu(self.conv3(x))
        skip = self.skipconnect([x])
        if skip is not None:
            out = out + skip
        return self.fc(self.bn(out).mean((2, 3)))


class HandWrittenNaive(nn.Module):
    """NaiveSpace's architecture {conv1: 1, conv2: conv3x3, skip: [0]} written by hand."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = self.conv2(x)
        out = F.relu(self.conv3(x)) + x
        return self.fc(self.bn(out).mean((2, 3)))


class Cell(MutableScope):
    def __init__(self, key, prev_labels, channels):
        super().__init__(key)
        self.input_choice = InputChoice(choose_from=prev_labels, n_chosen=1, key=f"{key}_input")
        self.op = LayerChoice(
            [nn.Conv2d(channels, channels, 3, padding=1), nn.MaxPool2d(3, 1, 1), nn.Identity()],
            key=f"{key}_op",
        )

    def forward(self, prev):
        return self.op(self.input_choice(prev))


class Node(MutableScope):
    def __init__(self, key, prev_labels, channels):
        super().__init__(key)
        self.x = Cell(f"{key}_x", prev_labels, channels)
        self.y = Cell(f"{key}_y", prev_labels, channels)

    def forward(self, prev):
        return self.x(prev) + self.y(prev)


class Layer(nn.Module):
    def __init__(self, channels, num_nodes=2):
        super().__init__()
        labels = ["", ""]
        self.nodes = nn.ModuleList()
        for i in range(num_nodes):
            self.nodes.append(Node(f"node_{i}", list(labels), channels))
            labels.append(f"node_{i}")

    def forward(self, pprev, prev):
        outs = [pprev, prev]
        for node in self.nodes:
            outs.append(node(outs))
        return prev, outs[-1]


class ScopedSpace(nn.Module):
    """Nested scopes, choose_from naming earlier scopes, and keys shared by repeated layers."""

    def __init__(self, channels=4, num_layers=2):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.layers = nn.ModuleList(Layer(channels) for _ in range(num_layers))
        self.fc = nn.Linear(channels, 10)

    def forward(self, x):
        prev = pprev = self.stem(x)
        for layer in self.layers:
            pprev, prev = layer(pprev, prev)
        return self.fc(prev.mean((2, 3)))


def forward_backward(model: nn.Module, mutator=None, steps: int = 3, batch: int = 2) -> None:
    for _ in range(steps):
        if mutator is not None:
            mutator.reset()
        model.zero_grad()
        out = model(torch.randn(batch, 3, 16, 16))
        out.sum().backward()
