"""ProxylessNAS on the digits set, with a latency term from costs measured on this CPU:
search, export, retrain, compare with a random architecture.

    python examples/oneshot/proxyless/search.py [--epochs 10] [--cost-weight 0.01]
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digits_space import accuracy, run_example  # noqa: E402

from nascli.nas.oneshot import ProxylessTrainer  # noqa: E402


def make(model, data, args):
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    return ProxylessTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, args.epochs, data,
                            batch_size=64, arc_learning_rate=1e-2, warmup_epochs=2,
                            measure_cost=True, cost_weight=args.cost_weight,
                            seed=args.seed)  # fmt: skip


def flags(parser):
    parser.add_argument("--cost-weight", type=float, default=0.01,
                        help="weight of the expected latency (ms) in the architecture loss")


if __name__ == "__main__":
    run_example("ProxylessNAS", make, search_epochs=10, add_arguments=flags)
