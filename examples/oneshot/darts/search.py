"""DARTS on the digits set: search, export, retrain, compare with a random architecture.

    python examples/oneshot/darts/search.py [--epochs 10] [--unrolled] [--out arch.json]
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digits_space import accuracy, run_example  # noqa: E402

from nascli.nas.oneshot import DartsTrainer  # noqa: E402


def make(model, data, args):
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    return DartsTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, args.epochs, data,
                        batch_size=64, arc_learning_rate=3e-3, unrolled=args.unrolled,
                        seed=args.seed)  # fmt: skip


def flags(parser):
    parser.add_argument("--unrolled", action="store_true", help="second-order DARTS")


if __name__ == "__main__":
    run_example("DARTS", make, search_epochs=10, add_arguments=flags)
