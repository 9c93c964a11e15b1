"""Build the cell benchmark's table with nascli's own multi-trial machinery.

    python benchmarks/cell_benchmark/generate.py start --workdir /tmp/cellbench
        # writes the digits cache, search space and config there, then `nascli create`:
        # a UniqueGridSearch experiment, one trial per isomorphism class, --concurrency
        # trials at a time (default 2), each under `nice -n 19` with one torch thread
    nascli resume ID                       # continues an interrupted run where it stopped
    python benchmarks/cell_benchmark/generate.py collect ID [--merge TABLE]
    python benchmarks/cell_benchmark/generate.py start --workdir W --continue-from TABLE
        # when the experiment itself is lost: train only the classes TABLE lacks; then
        # `collect NEW_ID --merge TABLE` writes the union (same recipe, checked)
        # `nascli experiment export` -> nascli/nas/benchmark/cell_table.json, prints the
        # seed-to-seed Spearman rank correlation of final validation accuracy and the cost

The table (package data, read by ``nascli.nas.benchmark.query``) holds one row per isomorphism
class (``cell_graph.canonical_key``) and the recipe, split, cost and seed agreement in ``meta``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from nascli import space as spaces
from nascli.nas import model_search_space
from nascli.nas.benchmark.cell_graph import OPS, canonical_key, representatives
from nascli.nas.benchmark.cell_space import CellNet
from nascli.nas.benchmark.table import TABLE_PATH, spearman
from nascli.nas.benchmark.training import COPIES, DATASET, DISTORTION, RECIPE, digits_splits

HERE = Path(__file__).resolve().parent


def nascli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nascli.cli.main", *args]


def start(workdir: Path, seeds: int, concurrency: int, done: Path | None) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "digits.pt"
    digits_splits(data)
    space = model_search_space(CellNet())
    spaces.dump_search_space(space, workdir / "search_space.json")
    tuner_args: dict = {"optimize_mode": "maximize", "shuffle_seed": 0}
    done_keys: list[str] = []
    if done is not None:
        done_keys = sorted(_rows_of(done, RECIPE))
        (workdir / "done.json").write_text(json.dumps(done_keys))
        tuner_args["done_file"] = str(workdir / "done.json")
    config = {
        "authorName": "nascli",
        "experimentName": "cell_benchmark",
        "trialConcurrency": concurrency,
        "maxExecDuration": "7d",
        "maxTrialNum": len(representatives()) - len(done_keys),
        "trainingServicePlatform": "local",
        "searchSpacePath": str(workdir / "search_space.json"),
        "useAnnotation": False,
        "tuner": {
            "codeDir": str(HERE),
            "classFileName": "unique_grid.py",
            "className": "UniqueGridSearch",
            "classArgs": tuner_args,
        },
        "trial": {
            "command": f"OMP_NUM_THREADS=1 nice -n 19 {sys.executable} trial.py --data {data} "
            f"--seeds {seeds}",
            "codeDir": str(HERE),
            "gpuNum": 0,
        },
    }
    (workdir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run(nascli_cmd("create", "--config", str(workdir / "config.yml")), check=True)


def _rows_of(table: Path, recipe: dict) -> dict[str, dict]:
    """The rows of an earlier table, which must have been trained with ``recipe``."""
    doc = json.loads(table.read_text())
    if doc["meta"].get("recipe") != recipe or doc["meta"].get("copies") != list(COPIES):
        raise SystemExit(f"{table}: trained with another recipe or dataset; cannot merge")
    return doc["rows"]


def collect(experiment: str, out: Path, merge: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "trials.json"
        subprocess.run(
            nascli_cmd("experiment", "export", experiment, "-t", "json", "-f", str(dump)),
            check=True,
        )
        trials = json.loads(dump.read_text())
    rows: dict[str, dict] = {}
    for trial in trials:
        final = trial.get("value")
        if trial["status"] != "SUCCEEDED" or not isinstance(final, dict):
            continue
        arch = {k: v for k, v in trial["architecture"].items()}
        key = canonical_key(arch)
        rows[key] = {
            "architecture": arch,
            "val": round(statistics.mean(final["val"]), 5),
            "test": round(statistics.mean(final["test"]), 5),
            "curve": [round(statistics.mean(e), 5) for e in zip(*final["curves"], strict=True)],
            "seeds": {"val": final["val"], "test": final["test"], "curves": final["curves"]},
            "params": final["params"],
            "flops": final["flops"],
            "latency": final["latency_ms"],
            "train_seconds": final["train_seconds"],
            "trial_seconds": round(trial["ended"] - trial["started"], 3),
        }
    if merge is not None:
        rows = {**_rows_of(merge, RECIPE), **rows}
    seconds = sum(row["trial_seconds"] for row in rows.values())
    expected = len(representatives())
    per_seed = list(zip(*(r["seeds"]["val"] for r in rows.values()), strict=True))
    pairs = [spearman(a, b) for a, b in itertools.combinations(per_seed, 2)]
    rho = min(pairs) if pairs else None
    table = {
        "meta": {
            "space": "nascli.nas.benchmark.cell_space.CellNet; edges 0_1 0_2 1_2 0_3 1_3 2_3; "
            f"operations {list(OPS)}; 4096 cells in {expected} isomorphism classes",
            "dataset": DATASET,
            "copies": list(COPIES),
            "distortion": DISTORTION,
            "recipe": RECIPE,
            "seeds": len(per_seed),
            "classes_trained": len(rows),
            "classes_expected": expected,
            "spearman_seed_val": None if rho is None else round(rho, 4),
            "spearman_seed_val_pairs": [round(r, 4) for r in pairs],
            "trial_seconds_total": round(seconds, 1),
            "experiment": experiment,
            "command": "python benchmarks/cell_benchmark/generate.py start && ... collect ID",
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
        },
        "rows": dict(sorted(rows.items())),
    }
    spaces.write_json_atomic(out, table)
    print(f"wrote {len(rows)}/{expected} classes to {out}; seed-to-seed Spearman rho of final "
          f"validation accuracy {rho}; {seconds / 60:.1f} trial-minutes")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("--workdir", type=Path, required=True)
    p_start.add_argument("--seeds", type=int, default=2)
    p_start.add_argument("--concurrency", type=int, default=2)
    p_start.add_argument("--continue-from", type=Path, default=None,
                         help="a table whose classes are not trained again")  # fmt: skip
    p_collect = sub.add_parser("collect")
    p_collect.add_argument("experiment")
    p_collect.add_argument("--out", type=Path, default=TABLE_PATH)
    p_collect.add_argument("--merge", type=Path, default=None, help="an earlier table to extend")
    args = parser.parse_args()
    if args.command == "start":
        start(args.workdir, args.seeds, args.concurrency, args.continue_from)
    else:
        collect(args.experiment, args.out, args.merge)


if __name__ == "__main__":
    main()
