"""Search efficiency of every tuner on the tabular benchmark (look-ups only, no training).

    python benchmarks/tuner_efficiency.py [--budget 150 --seeds 300 --tuners TPE,Random]
    python benchmarks/tuner_efficiency.py --benchmark cell   # on the cell benchmark's table

Each tuner proposes ``budget`` architectures per seed; a query returns the architecture's
validation accuracy from ``benchmarks/nas_table/digits_table.json`` (what a trial would report;
``--benchmark cell``: the cell benchmark's table, ``nascli.nas.benchmark``, each cell answering
its isomorphism class's accuracies).
Printed side by side, over the seeds:

* the best-so-far test accuracy curve: after n queries, the mean test accuracy of the queried
  architecture with the best validation accuracy (the usual NAS-benchmark protocol);
* queries to find a top-1% architecture (by validation accuracy, the tuners' objective): mean
  over seeds, counting ``budget + 1`` for seeds that never found one, with its 95 % bootstrap
  interval, and how many seeds never found one;
* that mean relative to Random's, with its 95 % interval (goal: Evolution and TPE <= 0.7; a
  ratio whose interval contains 1 is no evidence of a difference).

Intervals: percentile bootstrap over seeds (``--resamples`` resamples, fixed seed), the seeds
resampled together for the tuner and Random (seed i of one is paired with seed i of the other).
30 seeds give intervals about +-30 % wide on this table; the default 300, about +-10 %.

The script is organised for new modes: ``load_benchmark`` reads a table (``cell_benchmark`` the
cell benchmark's), ``run_search`` runs one tuner for one seed against a ``query`` function,
``TunerResult`` summarises the seeds and ``report`` prints them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nascli import space as spaces
from tuners import BUILTIN_TUNERS, NoMoreTrialError, create_tuner

TABLE = Path(__file__).resolve().parent / "nas_table" / "digits_table.json"
CHECKPOINTS = (10, 25, 50, 75, 100, 150)
# Variants run besides every built-in tuner with its defaults.
EXTRA_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("Evolution", {"population_size": 10, "sample_size": 3}),
    ("PPOTuner", {"trials_per_update": 10, "lr": 0.01, "ent_coef": 0.01}),
]


def _arch_key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


@dataclass
class Benchmark:
    """A search space with an answer per architecture: ``query(parameters)`` gives (the value
    a trial would report, the test accuracy); ``top`` is the set of architectures that count
    as found."""

    search_space: dict[str, Any]
    query: Callable[[dict[str, Any]], tuple[float, float]]
    is_top: Callable[[dict[str, Any]], bool]
    description: str


def load_benchmark(path: Path) -> Benchmark:
    """The tabular benchmark at ``path`` (``benchmarks/nas_table/generate.py``'s format)."""
    return benchmark_from_table(json.loads(path.read_text()))


def cell_benchmark(path: Path | None = None) -> Benchmark:
    """The cell benchmark (``nascli.nas.benchmark``, 4,096 cells; ``path``: its table, default
    the shipped one), every cell answering its isomorphism class's mean validation / test
    accuracy.

    Raises:
        SystemExit: the table does not hold every class yet (tuners may propose any cell).
    """
    from nascli.nas.benchmark import table as cell_table
    from nascli.nas.benchmark.cell_graph import all_cells, canonical_key

    bench = cell_table.load_benchmark(path)
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
    space = spaces.search_space_to_json(cell_table.search_space())
    return benchmark_from_table({"search_space": space, "architectures": rows})


def benchmark_from_table(table: dict[str, Any]) -> Benchmark:
    """A ``Benchmark`` over ``{"search_space": ..., "architectures": [{"architecture",
    "valid_accuracy", "test_accuracy"}, ...]}``; the top 1% by validation accuracy counts as
    found."""
    space = spaces.parse_search_space(table["search_space"])
    rows = table["architectures"]
    lookup = {_arch_key(r["architecture"]): r for r in rows}
    ranked = sorted(rows, key=lambda r: r["valid_accuracy"], reverse=True)
    cutoff = ranked[max(1, math.ceil(len(rows) * 0.01)) - 1]["valid_accuracy"]
    top_keys = {_arch_key(r["architecture"]) for r in rows if r["valid_accuracy"] >= cutoff}

    def key(params: dict[str, Any]) -> str:
        return _arch_key(spaces.human_architecture(space, spaces.parse_parameters(space, params)))

    def query(params: dict[str, Any]) -> tuple[float, float]:
        row = lookup[key(params)]
        return row["valid_accuracy"], row["test_accuracy"]

    description = (
        f"table: {len(rows)} architectures; top 1% by validation accuracy: {len(top_keys)} "
        f"(valid >= {cutoff:.4f}); best test accuracy in the table "
        f"{max(r['test_accuracy'] for r in rows):.4f}; mean test accuracy "
        f"{statistics.mean(r['test_accuracy'] for r in rows):.4f}"
    )
    return Benchmark(table["search_space"], query, lambda p: key(p) in top_keys, description)


def run_search(
    name: str, class_args: dict, bench: Benchmark, budget: int, seed: int
) -> tuple[list[float], int | None]:
    """One search: (best-so-far test accuracy after each query, the query that first found a
    top architecture or None)."""
    tuner = create_tuner(name, {**class_args, "seed": seed})
    tuner.update_search_space(bench.search_space)
    best_valid, best_test = -math.inf, 0.0
    curve: list[float] = []
    found_at = None
    for pid in range(budget):
        try:
            params = tuner.generate_parameters(pid)
        except NoMoreTrialError:
            break
        valid, test = bench.query(params)
        tuner.receive_trial_result(pid, params, valid)
        tuner.trial_end(pid, True)
        if valid > best_valid:
            best_valid, best_test = valid, test
        curve.append(best_test)
        if found_at is None and bench.is_top(params):
            found_at = pid + 1
    while len(curve) < budget:
        curve.append(curve[-1])
    return curve, found_at


@dataclass
class TunerResult:
    """One variant's searches over the seeds (seed i at index i)."""

    label: str
    budget: int
    curves: list[list[float]] = field(default_factory=list)
    found: list[int | None] = field(default_factory=list)

    @property
    def queries(self) -> list[int]:
        """Queries to a top architecture per seed; ``budget + 1`` when never found."""
        return [f if f is not None else self.budget + 1 for f in self.found]

    @property
    def missed(self) -> int:
        return sum(f is None for f in self.found)

    def mean_at(self, n: int) -> float:
        return statistics.mean(c[n - 1] for c in self.curves)


def bootstrap_interval(
    statistic: Callable[[Sequence[int]], float], n: int, resamples: int, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(indices)`` over ``resamples`` resamplings of the
    indices ``0..n-1`` with replacement."""
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(range(n), k=n)) for _ in range(resamples))
    return values[int(0.025 * (resamples - 1))], values[int(math.ceil(0.975 * (resamples - 1)))]


def mean_interval(values: Sequence[float], resamples: int) -> tuple[float, float]:
    return bootstrap_interval(
        lambda idx: statistics.fmean(values[i] for i in idx), len(values), resamples
    )


def ratio_interval(
    ours: Sequence[float], baseline: Sequence[float], resamples: int
) -> tuple[float, float]:
    """Interval of mean(ours) / mean(baseline), seeds resampled in pairs."""

    def ratio(idx: Sequence[int]) -> float:
        return sum(ours[i] for i in idx) / sum(baseline[i] for i in idx)

    return bootstrap_interval(ratio, min(len(ours), len(baseline)), resamples)


def report(results: list[TunerResult], baseline: TunerResult | None, resamples: int) -> None:
    budget = results[0].budget
    checkpoints = [c for c in CHECKPOINTS if c <= budget]
    print(
        "mean best-so-far test accuracy after n queries; queries to a top-1% architecture: "
        "mean [95% interval]; missed = seeds that never found one"
    )
    width = max(len(r.label) for r in results) + 2
    header = f"{'tuner':{width}s}" + "".join(f"{'@' + str(c):>8s}" for c in checkpoints)
    header += f"{'to top-1%':>22s}{'missed':>8s}{'vs Random':>22s}"
    print(header)
    for result in results:
        queries = result.queries
        low, high = mean_interval(queries, resamples)
        line = f"{result.label:{width}s}"
        line += "".join(f"{result.mean_at(n):8.4f}" for n in checkpoints)
        line += f"{statistics.fmean(queries):8.1f} [{low:5.1f}, {high:5.1f}]{result.missed:8d}"
        if baseline is not None and result is not baseline:
            ratio = statistics.fmean(queries) / statistics.fmean(baseline.queries)
            r_low, r_high = ratio_interval(queries, baseline.queries, resamples)
            line += f"{ratio:8.2f} [{r_low:4.2f}, {r_high:4.2f}]"
        print(line)


def variants(selected: set[str] | None, extra: bool = True) -> list[tuple[str, dict[str, Any]]]:
    chosen = [(name, {}) for name in BUILTIN_TUNERS] + (EXTRA_VARIANTS if extra else [])
    return [v for v in chosen if selected is None or v[0] in selected]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--table", type=Path, default=None,
                        help=f"the table (default: {TABLE.name}, or the cell benchmark's)")
    parser.add_argument("--benchmark", choices=["digits", "cell"], default="digits",
                        help="digits: benchmarks/nas_table; cell: nascli.nas.benchmark")
    parser.add_argument("--tuners", help="comma-separated tuner names (default: all)")
    parser.add_argument(
        "--defaults-only", action="store_true", help="only each tuner with its defaults"
    )
    args = parser.parse_args()

    if args.benchmark == "cell":
        bench = cell_benchmark(args.table)
    else:
        bench = load_benchmark(args.table or TABLE)
    selected = set(args.tuners.split(",")) | {"Random"} if args.tuners else None
    print(bench.description)
    print(f"{args.budget} queries x {args.seeds} seeds per tuner\n")
    results, baseline = [], None
    for name, class_args in variants(selected, not args.defaults_only):
        label = name + (f" {class_args}" if class_args else "")
        result = TunerResult(label, args.budget)
        for seed in range(args.seeds):
            curve, found_at = run_search(name, class_args, bench, args.budget, seed)
            result.curves.append(curve)
            result.found.append(found_at)
        if name == "Random" and not class_args:
            baseline = result
        results.append(result)
    report(results, baseline, args.resamples)


if __name__ == "__main__":
    main()
