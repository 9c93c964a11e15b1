"""One-shot search throughput with 1 and 2 torchrun processes (gloo, CPU), side by side.

Each run trains DARTS and SPOS for one epoch on the digits supernet
(examples/oneshot/digits_space.py, batch 32 per process, 1 thread per process) and reports
steps/s (per process) and samples/s (all processes). On this 2-core CPU machine the figures show
that the distributed path works and what its synchronisation costs, not a speed-up: two processes
share the same two cores that one process already uses.

    python benchmarks/ddp_scaling.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(algo: str, out: Path) -> None:
    import torch
    from torch import nn

    sys.path.insert(0, str(REPO / "examples" / "oneshot"))
    from digits_space import DigitsNet, accuracy, digits

    from nascli.nas.oneshot import DartsTrainer, SPOSTrainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, _ = digits(0)
    model = DigitsNet()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    common = dict(batch_size=32, seed=0)
    if algo == "darts":
        trainer = DartsTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, 1, train,
                               **common)  # fmt: skip
    else:
        trainer = SPOSTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, 1, train,
                              population_size=1, generations=0, **common)  # fmt: skip
    steps = len(trainer.train_loader)
    start = time.perf_counter()
    trainer.train_one_epoch(0)
    elapsed = time.perf_counter() - start
    if trainer.rank == 0:
        world = trainer.dist.world_size
        out.write_text(json.dumps({"steps_per_s": steps / elapsed,
                                   "samples_per_s": steps * 32 * world / elapsed}))  # fmt: skip


def run(algo: str, processes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
             str(processes), __file__, "--worker", algo, "--out", str(out)],
            check=True, capture_output=True, env=env,
        )  # fmt: skip
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=("darts", "spos"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.out)
        return
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for algo in ("darts", "spos"):
            for processes in (1, 2):
                results.setdefault((algo, processes), []).append(run(algo, processes))
    print(f"one epoch on the digits supernet, batch 32 per process, gloo on CPU, "
          f"median of {args.rounds} rounds")  # fmt: skip
    print(f"{'trainer':8}{'processes':>10}{'steps/s':>10}{'samples/s':>11}")
    for (algo, processes), runs in results.items():
        steps = statistics.median(r["steps_per_s"] for r in runs)
        samples = statistics.median(r["samples_per_s"] for r in runs)
        print(f"{algo:8}{processes:>10}{steps:10.1f}{samples:11.0f}")
    for algo in ("darts", "spos"):
        one = statistics.median(r["samples_per_s"] for r in results[(algo, 1)])
        two = statistics.median(r["samples_per_s"] for r in results[(algo, 2)])
        print(f"{algo}: samples/s with 2 processes / with 1 = {two / one:.2f}")


if __name__ == "__main__":
    main()
