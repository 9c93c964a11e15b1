"""The main job's trial: a small CNN whose convolutions and skip connection are searched.

Runs three ways, unchanged:

* ``python trial/trial.py``: standalone, with the first candidate of every choice;
* ``nascli ss_gen -t "python trial.py" -d trial``: dumps the search space and exits;
* as a trial of ``nascli create --config config_nas.yml``: trains the architecture the tuner chose
  and reports the validation accuracy per epoch and at the end.

Data: scikit-learn's bundled handwritten digits (8x8 grey images, 10 classes; offline), split
into a fixed training and validation set.
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

import nascli
from nascli.nas import InputChoice, LayerChoice, get_and_apply_next_architecture


class Net(nn.Module):
    """Conv (3x3 | 5x5) -> pool -> mid conv (3x3 | 5x5 | dilated 3x3) with an optional skip over
    it -> conv -> pool -> two linear layers. Every candidate keeps the spatial size, so any
    combination fits."""

    def __init__(self, hidden_size: int = 64):
        super().__init__()
        self.conv1 = LayerChoice(
            [nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(1, 16, 5, padding=2)], key="first_conv"
        )
        self.mid_conv = LayerChoice(
            OrderedDict(
                conv3x3=nn.Conv2d(16, 16, 3, padding=1),
                conv5x5=nn.Conv2d(16, 16, 5, padding=2),
                dil3x3=nn.Conv2d(16, 16, 3, padding=2, dilation=2),
            ),
            key="mid_conv",
        )
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        # Candidate 0 is "no skip" (zeros), candidate 1 the input of mid_conv.
        self.skip = InputChoice(n_candidates=2, n_chosen=1, key="skip")
        self.fc1 = nn.Linear(32 * 2 * 2, hidden_size)
        self.fc2 = nn.Linear(hidden_size, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 8x8 -> 4x4
        before = x
        x = F.relu(self.mid_conv(x))
        x = x + self.skip([torch.zeros_like(before), before])
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 4x4 -> 2x2
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def load_digits_split(seed: int = 0, n_valid: int = 450):
    """The digits set as tensors: ``(x_train, y_train, x_valid, y_valid)``, x in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    valid, train = order[:n_valid], order[n_valid:]
    return x[train], y[train], x[valid], y[valid]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = Net()
    get_and_apply_next_architecture(model)  # before loading data: ss_gen stops here

    x_train, y_train, x_valid, y_valid = load_digits_split(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    acc = 0.0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), args.batch_size):
            batch = order[i : i + args.batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        acc = accuracy(model, x_valid, y_valid)
        nascli.report_intermediate_result(acc)
        print(f"epoch {epoch + 1}/{args.epochs}: validation accuracy {acc:.4f}", flush=True)
    nascli.report_final_result(acc)
    print(f"trained in {time.perf_counter() - start:.1f} s; final accuracy {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
