"""SPOS on the digits set: uniform single-path supernet training, evolution over the trained
supernet, export, retrain, compare with a random architecture.

    python examples/oneshot/spos/search.py [--epochs 15] [--out arch.json]
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digits_space import accuracy, run_example  # noqa: E402

from nascli.nas.oneshot import SPOSTrainer  # noqa: E402


def make(model, data, args):
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    return SPOSTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, args.epochs, data,
                       batch_size=64, population_size=16, generations=4, num_select=4,
                       mutation_prob=0.3, seed=args.seed)  # fmt: skip


if __name__ == "__main__":
    run_example("SPOS", make, search_epochs=15)
