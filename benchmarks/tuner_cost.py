"""What a tuner costs the manager as the history grows: CPU per proposal, per result, and the
checkpoint's size, at a few history lengths, every tuner side by side (Random is the baseline:
it does nothing per proposal but draw and check for duplicates).

    python benchmarks/tuner_cost.py [--results 5000] [--space wide|digits] [--tuners TPE,PPOTuner]

Each tuner is driven as the manager drives it, two trials outstanding, results from a noisy
synthetic objective (the table's validation accuracy on ``--space digits``; 384 architectures, so
the run stops when the space is exhausted). In each window of ``--window`` results: the median CPU
time of ``generate_parameters``, of ``receive_trial_result`` + ``trial_end`` (the mean, which
includes the policy updates of PPOTuner), and for PPOTuner the share of proposals that fell
back to a uniform draw (every policy sample already tried). At the window's end, the size of
``json.dumps(save_checkpoint())`` and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tuners import NoMoreTrialError, create_tuner  # noqa: E402

WIDE = {
    f"k{i}": {"_type": "layer_choice", "_value": [f"op{j}" for j in range(8)]} for i in range(8)
}
TABLE = REPO / "benchmarks" / "nas_table" / "digits_table.json"


def objective(space: str):
    """(search space, params -> metric)."""
    if space == "wide":
        rng = random.Random(0)
        weights = {k: [rng.random() for _ in range(8)] for k in WIDE}

        def wide(params) -> float:
            return sum(weights[k][v["_idx"]] for k, v in params.items()) + rng.gauss(0, 0.3)

        return WIDE, wide
    sys.path.insert(0, str(REPO / "benchmarks"))
    from tuner_efficiency import load_benchmark

    bench = load_benchmark(TABLE)
    return bench.search_space, lambda params: bench.query(params)[0]


def measure(name: str, space_name: str, results: int, window: int) -> list[dict[str, float]]:
    space, metric = objective(space_name)
    tuner = create_tuner(name, {"seed": 0})
    tuner.update_search_space(space)
    fallbacks = [0]
    sample_new = tuner.sample_new

    def counted(*args, **kwargs):
        fallbacks[0] += 1
        return sample_new(*args, **kwargs)

    tuner.sample_new = counted  # PPOTuner's uniform fallback; every Random proposal
    rows, propose, tell = [], [], []
    outstanding: list[tuple[int, dict]] = []
    pid = 0
    done = 0
    while done < results:
        while len(outstanding) < 2:
            start = time.process_time()
            try:
                params = tuner.generate_parameters(pid)
            except NoMoreTrialError:  # the space is exhausted
                break
            propose.append(time.process_time() - start)
            outstanding.append((pid, params))
            pid += 1
        if not outstanding:
            break  # the space is exhausted
        finished, params = outstanding.pop(0)
        start = time.process_time()
        tuner.receive_trial_result(finished, params, metric(params))
        tuner.trial_end(finished, True)
        tell.append(time.process_time() - start)
        done += 1
        if done % window == 0 or (not outstanding and propose):
            checkpoint = json.dumps(tuner.save_checkpoint(), separators=(",", ":"))
            rows.append(
                {
                    "results": done,
                    "propose_ms": statistics.median(propose) * 1000,
                    "tell_ms": statistics.fmean(tell) * 1000,
                    "fallback": fallbacks[0] / len(propose),
                    "checkpoint_kb": len(checkpoint) / 1024,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
            propose, tell, fallbacks[0] = [], [], 0
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=5000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--space", choices=("wide", "digits"), default="wide")
    parser.add_argument("--tuners", default="Random,TPE,Evolution,PPOTuner")
    args = parser.parse_args()
    window = min(args.window, args.results)
    print(f"{args.space} space, {args.results} results, windows of {window}; CPU ms medians")
    print(
        f"{'tuner':10}{'results':>8}{'propose ms':>12}{'tell ms':>9}{'fallback':>10}"
        f"{'ckpt KB':>9}{'peak RSS MB':>13}"
    )
    for name in args.tuners.split(","):
        for row in measure(name, args.space, args.results, window):
            print(
                f"{name:10}{row['results']:8d}{row['propose_ms']:12.3f}{row['tell_ms']:9.3f}"
                f"{row['fallback']:10.0%}{row['checkpoint_kb']:9.0f}{row['peak_rss_mb']:13.0f}"
            )


if __name__ == "__main__":
    main()
