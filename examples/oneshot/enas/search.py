"""ENAS on the digits set: search, export, retrain, compare with a random architecture.

    python examples/oneshot/enas/search.py [--epochs 10] [--out arch.json]
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digits_space import accuracy, run_example  # noqa: E402

from nascli.nas.oneshot import EnasTrainer  # noqa: E402


def reward(output, target):
    return accuracy(output, target)["accuracy"]


def make(model, data, args):
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    return EnasTrainer(model, nn.CrossEntropyLoss(), accuracy, reward, optimizer, args.epochs,
                       data, batch_size=64, ctrl_lr=3e-3, ctrl_steps_aggregate=5,
                       ctrl_steps=50, seed=args.seed)  # fmt: skip


if __name__ == "__main__":
    run_example("ENAS", make, search_epochs=10)
