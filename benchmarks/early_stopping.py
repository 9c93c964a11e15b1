"""What early stopping saves and costs: real learning curves replayed through the assessors.

    python benchmarks/early_stopping.py [--trials 50 --seeds 20 --concurrency 1 --workers 2]

Each row of ``benchmarks/nas_table/digits_table.json`` holds an architecture's validation
accuracy after every epoch (``valid_curve``, 12 epochs) and its final test accuracy. A search is
simulated with the table as its trials: the tuner (Random, TPE) proposes architectures, each
"runs" one epoch per time unit, reports its validation accuracy as an intermediate result, and
the assessor (built with ``nascli.assessors.create_assessor`` from default arguments, called as
the manager calls it: ``assess_trial`` once per result in order, ``trial_end(id, success)``)
may stop it; a trial that reaches its last epoch succeeds and the tuner is told its final
validation accuracy (a stopped one: ``trial_end(success=False)``, as with the default
``includeIntermediateResults: false``). ``--concurrency`` trials run at once, their epochs in
lock step. No training happens: the figures come from the table.

Printed per tuner, averaged over the seeds (seed s seeds the tuner):

* at the same number of trials (``--trials``): epochs run, the compute saved relative to no
  early stopping, and the test accuracy of the best architecture found (the completed trial
  with the best final validation accuracy; early-stopped trials are never "found");
* at the same compute (the epochs no early stopping spends on ``--trials`` trials): trials
  started and the test accuracy of the best architecture found.

Differences in points are against no early stopping, with the standard error over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nascli import space as spaces
from nascli.assessor import AssessResult, as_verdict
from nascli.assessors import BUILTIN_ASSESSORS, create_assessor
from tuners import NoMoreTrialError, create_tuner

TABLE = Path(__file__).resolve().parent / "nas_table" / "digits_table.json"
TUNERS = ("Random", "TPE")
ASSESSORS = (None, *BUILTIN_ASSESSORS)


@dataclass
class Outcome:
    epochs: int  # compute spent
    trials: int  # trials started
    stopped: int  # trials stopped early
    best_valid: float
    best_test: float


@dataclass
class _Running:
    pid: int
    tid: str
    params: dict[str, Any]
    row: dict[str, Any]
    step: int = 0


def _arch_key(arch: dict[str, Any]) -> str:
    return json.dumps(arch, sort_keys=True)


def simulate(
    table: dict[str, Any],
    lookup: dict[str, dict[str, Any]],
    tuner_name: str,
    assessor_name: str | None,
    seed: int,
    max_trials: int | None,
    max_epochs: int | None,
    concurrency: int,
    include_intermediate: bool = False,
) -> Outcome:
    """One search; ends after ``max_trials`` trials have ended or ``max_epochs`` epochs are
    spent (trials still running then are cut and never count as found)."""
    space = spaces.parse_search_space(table["search_space"])
    tuner = create_tuner(tuner_name, {"seed": seed})
    tuner.update_search_space(table["search_space"])
    assessor = create_assessor(assessor_name) if assessor_name else None
    running: list[_Running] = []
    started = stopped = spent = 0
    best_valid, best_test = -math.inf, math.nan
    exhausted = False
    while True:
        while (
            not exhausted
            and len(running) < concurrency
            and (max_trials is None or started < max_trials)
        ):
            try:
                params = tuner.generate_parameters(started)
            except NoMoreTrialError:
                exhausted = True
                break
            arch = spaces.human_architecture(space, spaces.parse_parameters(space, params))
            running.append(_Running(started, str(started), params, lookup[_arch_key(arch)]))
            started += 1
        if not running or (max_epochs is not None and spent >= max_epochs):
            break
        for trial in list(running):  # one epoch each, in start order
            if max_epochs is not None and spent >= max_epochs:
                break
            trial.step += 1
            spent += 1
            curve = trial.row["valid_curve"]
            done = trial.step == len(curve)
            if assessor is not None:
                verdict = as_verdict(assessor.assess_trial(trial.tid, curve[: trial.step]))
                if verdict is AssessResult.Bad and not done:
                    assessor.trial_end(trial.tid, False)
                    if include_intermediate:
                        tuner.receive_trial_result(trial.pid, trial.params, curve[trial.step - 1])
                    tuner.trial_end(trial.pid, False)
                    running.remove(trial)
                    stopped += 1
                    continue
            if done:
                if assessor is not None:
                    assessor.trial_end(trial.tid, True)
                tuner.receive_trial_result(trial.pid, trial.params, curve[-1])
                tuner.trial_end(trial.pid, True)
                running.remove(trial)
                if curve[-1] > best_valid:
                    best_valid, best_test = curve[-1], trial.row["test_accuracy"]
    return Outcome(spent, started, stopped, best_valid, best_test)


_TABLE: dict[str, Any] = {}


def _init_worker(table: dict[str, Any], lookup: dict[str, dict[str, Any]]) -> None:
    _TABLE.update(table=table, lookup=lookup)


def _simulate_job(*job: Any) -> Outcome:
    tuner, assessor, seed, max_trials, max_epochs, concurrency, include = job
    return simulate(_TABLE["table"], _TABLE["lookup"], tuner, assessor, seed, max_trials,
                    max_epochs, concurrency, include)  # fmt: skip


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--tuners", default=",".join(TUNERS))
    parser.add_argument("--workers", type=int, default=2, help="processes running the searches")
    parser.add_argument(
        "--include-intermediate", action="store_true",
        help="tell the tuner a stopped trial's last result (includeIntermediateResults: true)",
    )  # fmt: skip
    args = parser.parse_args()
    table = json.loads(args.table.read_text())
    rows = table["architectures"]
    if not all("valid_curve" in r for r in rows):
        raise SystemExit(f"{args.table}: rows have no valid_curve (regenerate the table)")
    lookup = {_arch_key(r["architecture"]): r for r in rows}
    epochs = len(rows[0]["valid_curve"])
    best_test = max(rows, key=lambda r: r["valid_accuracy"])["test_accuracy"]
    print(
        f"{args.table.name}: {len(rows)} architectures, {epochs} epochs each; the best by "
        f"validation has test accuracy {100 * best_test:.2f}"
    )
    print(
        f"{args.trials} trials or the same compute, {args.seeds} seeds, concurrency "
        f"{args.concurrency}, default classArgs, includeIntermediateResults "
        f"{'true' if args.include_intermediate else 'false'}\n"
    )
    start = time.perf_counter()
    met = []
    tuners = args.tuners.split(",")
    common = (args.concurrency, args.include_intermediate)
    # same number of trials first (no early stopping gives the compute budgets), then the same
    # compute; runs are independent, so they go to --workers processes
    seeds = range(args.seeds)
    jobs = [(tuner, assessor, seed, args.trials, None, *common)
            for tuner in tuners for assessor in ASSESSORS for seed in seeds]  # fmt: skip
    with multiprocessing.get_context("fork").Pool(
        args.workers, initializer=_init_worker, initargs=(table, lookup)
    ) as pool:
        same_trials = dict(zip(jobs, pool.starmap(_simulate_job, jobs), strict=True))
        budgets = {(t, seed): same_trials[(t, None, seed, args.trials, None, *common)].epochs
                   for t in tuners for seed in range(args.seeds)}  # fmt: skip
        jobs_c = [(tuner, assessor, seed, None, budgets[(tuner, seed)], *common)
                  for tuner in tuners for assessor in ASSESSORS if assessor
                  for seed in range(args.seeds)]  # fmt: skip
        same_compute = dict(zip(jobs_c, pool.starmap(_simulate_job, jobs_c), strict=True))
    for tuner in tuners:
        results: dict[str | None, dict[str, list[Outcome]]] = {}
        for assessor in ASSESSORS:
            t = [same_trials[(tuner, assessor, s, args.trials, None, *common)]
                 for s in range(args.seeds)]  # fmt: skip
            c = t if assessor is None else [
                same_compute[(tuner, assessor, s, None, budgets[(tuner, s)], *common)]
                for s in range(args.seeds)
            ]  # fmt: skip
            results[assessor] = {"trials": t, "compute": c}
        base = results[None]
        print(f"{tuner}")
        print(
            f"  {'assessor':<13}| same trials: {'epochs':>7} {'saved':>6} {'stopped':>7} "
            f"{'best test':>9} {'diff':>13} | same compute: {'trials':>6} {'best test':>9} "
            f"{'diff':>13}"
        )
        for assessor, runs in results.items():
            t, c = runs["trials"], runs["compute"]
            spent = statistics.fmean(o.epochs for o in t)
            saved = 1 - spent / statistics.fmean(o.epochs for o in base["trials"])
            acc_t, _ = _mean_se([100 * o.best_test for o in t])
            diff_t, se_t = _mean_se(
                [100 * (o.best_test - b.best_test) for o, b in zip(t, base["trials"], strict=True)]
            )
            acc_c, _ = _mean_se([100 * o.best_test for o in c])
            trials_c = statistics.fmean(o.trials for o in c)
            diff_c, se_c = _mean_se(
                [100 * (o.best_test - b.best_test) for o, b in zip(c, base["compute"], strict=True)]
            )
            print(
                f"  {assessor or 'none':<13}| {'':13}{spent:7.1f} {100 * saved:5.1f}% "
                f"{statistics.fmean(o.stopped for o in t):7.1f} {acc_t:9.2f} "
                f"{diff_t:+6.2f} ± {se_t:4.2f} | {'':13}{trials_c:6.1f}"
                f" {acc_c:9.2f} {diff_c:+6.2f} ± {se_c:4.2f}"
            )
            if assessor is not None and saved >= 0.40 and diff_t >= -0.3:
                met.append(f"{assessor} with {tuner}")
        print()
    print(
        "goal (a built-in with default arguments saves >= 40 % of the compute at equal trials, "
        f"best found within 0.3 points): {'met by ' + ', '.join(met) if met else 'not met'}"
    )
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
