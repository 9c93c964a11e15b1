"""How well does a single-path supernet rank architectures? Train ``RandomTrainer``'s supernet
on a space of ``oneshot_quality.py`` (default: the cell benchmark's) with its defaults, score
``--archs`` uniformly drawn architectures on it (BatchNorm recalibrated for each, as the search
scores them) and print the Spearman rho of the scores against the table's validation accuracy,
and how good the top-scored architecture is.

    python benchmarks/supernet_ranking.py [--space cell|cellinput|digits] [--epochs 50]
        [--archs 80] [--train-zero-ops] [--sole-source-paths all|nonempty]

The single-path trainers (SPOS, random single-path, ENAS's final scoring) can export only as
good a cell as this ranking lets them find; docs/oneshot_quality.md quotes it per budget.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oneshot_quality import SPACES, accuracy  # noqa: E402

from nascli import space as spaces  # noqa: E402
from nascli.nas.benchmark.table import spearman  # noqa: E402
from nascli.nas.oneshot import LRSchedulerCallback, RandomTrainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=sorted(SPACES), default="cell")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--archs", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-zero-ops", action="store_true",
                        help="training paths may run zero operations (the old default)")
    parser.add_argument("--sole-source-paths", choices=("all", "nonempty"), default="all",
                        help="training paths of an InputChoice that is its node's only source")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = SPACES[args.space]()
    torch.manual_seed(args.seed)
    model = space.make_model()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, args.epochs))
    trainer = RandomTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, args.epochs,
                            space.train, batch_size=64, seed=args.seed, device="cpu",
                            callbacks=[LRSchedulerCallback(schedule)], num_samples=1,
                            train_zero_ops=args.train_zero_ops,
                            sole_source_paths=args.sole_source_paths)  # fmt: skip
    start = time.perf_counter()
    trainer.fit()
    trained = time.perf_counter() - start
    rng = random.Random(args.seed + 5)
    scores, truth = [], []
    for _ in range(args.archs):
        arch = {k: spaces.random_choice(s, rng) for k, s in sorted(trainer.search_space.items())}
        scores.append(trainer.score(arch))
        truth.append(space.judge(spaces.export_architecture(trainer.search_space, arch))["val"])
    top = max(range(len(scores)), key=lambda i: scores[i])
    print(f"{args.space}, {args.epochs} epochs (training {trained:.0f} s), train_zero_ops="
          f"{args.train_zero_ops}, sole_source_paths={args.sole_source_paths}: Spearman rho "
          f"of supernet score vs table over {args.archs} "
          f"architectures {spearman(scores, truth):.3f}; top-scored one's table accuracy "
          f"{truth[top]:.4f} (best of the {args.archs}: {max(truth):.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
