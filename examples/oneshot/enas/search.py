"""ENAS on the digits set: search, export, retrain, compare with a random architecture.

    python examples/oneshot/enas/search.py [--epochs 30] [--out arch.json]

30 search epochs, not DARTS's 10: ENAS's weight steps train one path, so each of a block's five
candidates gets about a fifth of the steps. At 10 epochs (about 24 weight steps per candidate)
the supernet scores every network below 72 % and the parameter-free poolings, which need no
training, look best: the export was avgpool / avgpool / conv5x5 (test 0.914, below random
architectures); at 30 it is conv5x5 / dilconv3x3 / conv5x5 (0.994; docs/oneshot_quality.md).
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
    run_example("ENAS", make, search_epochs=30)
