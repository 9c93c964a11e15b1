"""Search efficiency of every tuner on the tabular benchmark (look-ups only, no training).

    python benchmarks/tuner_efficiency.py [--budget 150 --seeds 30]
    python benchmarks/tuner_efficiency.py --benchmark cell   # on the cell benchmark's table

Each tuner proposes ``budget`` architectures per seed; a query returns the architecture's
validation accuracy from ``benchmarks/nas_table/digits_table.json`` (what a trial would report).
Printed side by side, averaged over the seeds:

* the best-so-far test accuracy curve: after n queries, the test accuracy of the queried
  architecture with the best validation accuracy (the usual NAS-benchmark protocol);
* queries to find a top-1% architecture (by validation accuracy, the tuners' objective): mean
  over seeds, counting ``budget + 1`` for seeds that never found one, and how many never did;
* that number relative to Random's (goal: Evolution and TPE <= 0.7).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from nascli import space as spaces
from tuners import BUILTIN_TUNERS, NoMoreTrialError, create_tuner

TABLE = Path(__file__).resolve().parent / "nas_table" / "digits_table.json"
CHECKPOINTS = (10, 25, 50, 75, 100, 150)


def _arch_key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


def cell_benchmark_table(path: Path | None = None) -> dict:
    """The cell benchmark (``nascli.nas.benchmark``, 4,096 cells) in this script's table shape:
    every cell with its isomorphism class's mean validation / test accuracy.

    Raises:
        SystemExit: the table does not hold every class yet (tuners may propose any cell).
    """
    from nascli.nas.benchmark.cell_graph import all_cells, canonical_key
    from nascli.nas.benchmark.table import load_benchmark, search_space

    bench = load_benchmark(path)
    missing = len(bench.class_size) - len(bench.rows)
    if missing:
        raise SystemExit(f"--benchmark cell: {bench.source} lacks {missing} of "
                         f"{len(bench.class_size)} classes; finish it first "
                         "(benchmarks/cell_benchmark/generate.py)")  # fmt: skip
    rows = []
    for cell in all_cells():
        row = bench.rows[canonical_key(cell)]
        rows.append({"architecture": cell, "valid_accuracy": row["val"],
                     "test_accuracy": row["test"]})  # fmt: skip
    return {"search_space": spaces.search_space_to_json(search_space()), "architectures": rows}


def run_search(
    name: str, class_args: dict, table: dict, space, lookup, top_keys, budget: int, seed: int
) -> tuple[list[float], int | None]:
    tuner = create_tuner(name, {**class_args, "seed": seed})
    tuner.update_search_space(table["search_space"])
    best_valid, best_test = -math.inf, 0.0
    curve: list[float] = []
    found_at = None
    for pid in range(budget):
        try:
            params = tuner.generate_parameters(pid)
        except NoMoreTrialError:
            break
        arch = spaces.human_architecture(space, spaces.parse_parameters(space, params))
        row = lookup[_arch_key(arch)]
        tuner.receive_trial_result(pid, params, row["valid_accuracy"])
        tuner.trial_end(pid, True)
        if row["valid_accuracy"] > best_valid:
            best_valid, best_test = row["valid_accuracy"], row["test_accuracy"]
        curve.append(best_test)
        if found_at is None and _arch_key(arch) in top_keys:
            found_at = pid + 1
    while len(curve) < budget:
        curve.append(curve[-1])
    return curve, found_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--table", type=Path, default=None)
    parser.add_argument("--benchmark", choices=["digits", "cell"], default="digits",
                        help="digits: benchmarks/nas_table; cell: nascli.nas.benchmark")
    args = parser.parse_args()

    if args.benchmark == "cell":
        table = cell_benchmark_table(args.table)
    else:
        table = json.loads((args.table or TABLE).read_text())
    space = spaces.parse_search_space(table["search_space"])
    rows = table["architectures"]
    lookup = {_arch_key(r["architecture"]): r for r in rows}
    ranked = sorted(rows, key=lambda r: r["valid_accuracy"], reverse=True)
    cutoff = ranked[max(1, math.ceil(len(rows) * 0.01)) - 1]["valid_accuracy"]
    top_keys = {_arch_key(r["architecture"]) for r in rows if r["valid_accuracy"] >= cutoff}
    best_test = max(r["test_accuracy"] for r in rows)
    print(
        f"table: {len(rows)} architectures; top 1% by validation accuracy: {len(top_keys)} "
        f"(valid >= {cutoff:.4f}); best test accuracy in the table {best_test:.4f}; "
        f"mean test accuracy {statistics.mean(r['test_accuracy'] for r in rows):.4f}"
    )
    print(f"{args.budget} queries x {args.seeds} seeds per tuner\n")

    variants = [(name, {}) for name in BUILTIN_TUNERS]
    variants.append(("Evolution", {"population_size": 10, "sample_size": 3}))
    variants.append(("PPOTuner", {"trials_per_update": 10, "lr": 0.01, "ent_coef": 0.01}))
    checkpoints = [c for c in CHECKPOINTS if c <= args.budget]
    header = f"{'tuner':38s}" + "".join(f"{'@' + str(c):>8s}" for c in checkpoints)
    header += f"{'to top-1%':>11s}{'missed':>8s}{'vs Random':>11s}"
    print("mean best-so-far test accuracy after n queries; mean queries to a top-1% architecture")
    print(header)
    random_queries = None
    for name, class_args in variants:
        curves, found = [], []
        for seed in range(args.seeds):
            curve, found_at = run_search(
                name, class_args, table, space, lookup, top_keys, args.budget, seed
            )
            curves.append(curve)
            found.append(found_at)
        mean_queries = statistics.mean(f if f is not None else args.budget + 1 for f in found)
        if name == "Random" and not class_args:
            random_queries = mean_queries
        label = name + (f" {class_args}" if class_args else "")
        line = f"{label:38s}" + "".join(
            f"{statistics.mean(c[n - 1] for c in curves):8.4f}" for n in checkpoints
        )
        ratio = mean_queries / random_queries if random_queries else float("nan")
        line += f"{mean_queries:11.1f}{sum(f is None for f in found):8d}{ratio:11.2f}"
        print(line)


if __name__ == "__main__":
    main()
