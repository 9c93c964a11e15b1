"""Random single-path supernet training on the digits set, then random search over the trained
supernet: export, retrain, compare with a random architecture.

    python examples/oneshot/random/search.py [--epochs 15] [--out arch.json]
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digits_space import accuracy, run_example  # noqa: E402

from nascli.nas.oneshot import RandomTrainer  # noqa: E402


def make(model, data, args):
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    return RandomTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, args.epochs, data,
                         batch_size=64, num_samples=30, seed=args.seed)  # fmt: skip


if __name__ == "__main__":
    run_example("Random single-path", make, search_epochs=15)
