"""How good are the one-shot trainers' exports? Each trainer x seed searches a space whose every
architecture was trained for real, with its default arguments, and its export is looked up in
that space's table.

    python benchmarks/oneshot_quality.py [--space cell|cellinput|digits] [--seeds 5] [--epochs N]
        [--trainers darts,gdas,...] [--json rows.json]
    python benchmarks/oneshot_quality.py --rejudge rows.json   # judge saved exports again

Spaces and their tables:

* ``cell``: the cell benchmark (``nascli.nas.benchmark``: ``CellNet``, 4,096 cells, package
  data); percentiles count every cell (a class weighs as many cells as it holds);
* ``cellinput``: the same cells written with ``InputChoice`` picks (``CellInputNet``: every
  node sums any subset of its incoming edges, ``n_chosen: null``), judged as the cell an export
  computes, in the cell table;
* ``digits``: ``benchmarks/nas_table`` (384 architectures: layer choices and ``InputChoice``
  skips), ranked by its validation accuracy.

Every search gets about the same CPU budget (``BUDGET``: epochs over the table's training
images, cell: 2,000 distorted digits; digits: 1,000; ``--epochs N`` gives every trainer N): 10
epochs for DARTS, whose every step runs every candidate (the mixture), 50 for the trainers
whose weight steps run one path (GDAS, ENAS, ProxylessNAS, SPOS, random single-path), which
then train each candidate on about as many batches and take about as long (on the cell space
a search takes 0.2-1 minutes here). The trainers split the images into a weight half and an
architecture half; batch 64, SGD (lr 0.05,
momentum 0.9, weight decay 3e-4, cosine), one torch thread. Printed per trainer x seed: the
export, its rank and percentile in the table by validation accuracy (1 % = best), its table
validation / test accuracy, minutes; then per trainer the mean and worst percentile, and how
many exports were worse than the table's median. Goal: mean in the top 10 %, worst in the top
25 %, none below the median.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nascli.errors import ArchitectureError, UsageError
from nascli.nas.oneshot import (
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    LRSchedulerCallback,
    ProxylessTrainer,
    RandomTrainer,
    SPOSTrainer,
)

REPO = Path(__file__).resolve().parents[1]
TRAINERS = ("darts", "darts2", "gdas", "enas", "proxyless", "spos", "random")
#: epochs per search by trainer (see the module docstring): about the same CPU time each
BUDGET = {"darts": 10, "darts2": 10, "gdas": 50, "enas": 50, "proxyless": 50, "spos": 50,
          "random": 50}  # fmt: skip


def accuracy(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"accuracy": float((output.argmax(1) == target).float().mean())}


def reward(output: torch.Tensor, target: torch.Tensor) -> float:
    return accuracy(output, target)["accuracy"]


# ---------------------------------------------------------------------------- spaces


class Space:
    """A model factory, the search data, and ``judge(export) -> dict`` from the space's table."""

    name: str
    make_model: Callable[[], nn.Module]
    train: TensorDataset

    def judge(self, export: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class CellSpace(Space):
    name = "cell"

    def __init__(self, table: Path | None = None) -> None:
        from nascli.nas.benchmark.cell_space import CellNet
        from nascli.nas.benchmark.table import load_benchmark
        from nascli.nas.benchmark.training import digits_splits

        self.make_model = CellNet
        (xt, yt), _, _ = digits_splits()
        self.train = TensorDataset(xt, yt)
        self.table = load_benchmark(table)
        self.median = self.table.median("val")
        self.size = f"{len(self.table.rows)} classes of {self.table.n_cells} cells"

    def judge(self, export: dict[str, Any]) -> dict[str, Any]:
        try:
            result = self.table.query(export)
        except ArchitectureError as exc:
            return {"missing": str(exc)}
        rank = self.table.rank(export, "val")
        return {"val": result["val"], "test": result["test"], **rank}


class DigitsTableSpace(Space):
    name = "digits"

    def __init__(self, table: Path | None = None) -> None:
        spec = importlib.util.spec_from_file_location(
            "nas_table_generate", REPO / "benchmarks" / "nas_table" / "generate.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from nascli import space as spaces

        self.spaces = spaces
        self.make_model = module.DigitsSpace
        (xt, yt), _, _ = module.digits_splits(0)
        self.train = TensorDataset(xt, yt)
        path = table or REPO / "benchmarks" / "nas_table" / "digits_table.json"
        table = json.loads(Path(path).read_text())
        self.space = spaces.parse_search_space(table["search_space"])
        self.rows = {self._key(r["architecture"]): r for r in table["architectures"]}
        vals = sorted(r["valid_accuracy"] for r in self.rows.values())
        self.median = vals[len(vals) // 2]
        self.size = f"{len(self.rows)} architectures"

    def _key(self, arch: dict[str, Any]) -> str:
        return json.dumps(self.spaces.normalize_architecture(self.space, arch), sort_keys=True)

    def judge(self, export: dict[str, Any]) -> dict[str, Any]:
        row = self.rows[self._key(export)]
        better = sum(r["valid_accuracy"] > row["valid_accuracy"] for r in self.rows.values())
        n = len(self.rows)
        return {"val": row["valid_accuracy"], "test": row["test_accuracy"], "rank": better + 1,
                "of": n, "percentile": 100.0 * (better + 1) / n}  # fmt: skip


class CellInputSpace(CellSpace):
    """The cell space written with ``InputChoice`` picks (``CellInputNet``: each node picks any
    subset of its incoming edges, each edge one of three operations); an export is judged as
    the cell it computes (``to_cell_architecture``), in the cell table."""

    name = "cellinput"

    def __init__(self, table: Path | None = None) -> None:
        from nascli.nas.benchmark.cell_input_space import CellInputNet

        super().__init__(table)
        self.make_model = CellInputNet
        self.size += " (46,656 architectures of InputChoice picks)"

    def judge(self, export: dict[str, Any]) -> dict[str, Any]:
        from nascli.nas.benchmark.cell_input_space import to_cell_architecture

        try:
            cell = to_cell_architecture(export)
        except ArchitectureError as exc:
            return {"missing": str(exc)}
        return {**super().judge(cell), "cell": cell}


SPACES = {"cell": CellSpace, "cellinput": CellInputSpace, "digits": DigitsTableSpace}


# ---------------------------------------------------------------------------- searches


def search(name: str, space: Space, seed: int, epochs: int) -> dict[str, Any]:
    """One search with the trainer's default arguments; returns the export and minutes."""
    torch.manual_seed(seed)
    model = space.make_model()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs))
    callbacks = [LRSchedulerCallback(schedule)]
    common = {"batch_size": 64, "seed": seed, "callbacks": callbacks, "device": "cpu"}
    head = (model, nn.CrossEntropyLoss(), accuracy)
    if name == "darts":
        trainer = DartsTrainer(*head, optimizer, epochs, space.train, **common)
    elif name == "darts2":
        trainer = DartsTrainer(*head, optimizer, epochs, space.train, unrolled=True, **common)
    elif name == "gdas":
        trainer = GumbelDartsTrainer(*head, optimizer, epochs, space.train, **common)
    elif name == "enas":
        trainer = EnasTrainer(*head, reward, optimizer, epochs, space.train, **common)
    elif name == "proxyless":
        trainer = ProxylessTrainer(*head, optimizer, epochs, space.train, **common)
    elif name == "spos":
        trainer = SPOSTrainer(*head, optimizer, epochs, space.train, **common)
    elif name == "random":
        trainer = RandomTrainer(*head, optimizer, epochs, space.train, **common)
    else:
        raise SystemExit(f"--trainers: unknown trainer {name!r} (known: {', '.join(TRAINERS)})")
    start = time.perf_counter()
    trainer.fit()
    export = trainer.export()
    return {"export": export, "minutes": (time.perf_counter() - start) / 60}


def report(name: str, seed: int, found: dict[str, Any], judged: dict[str, Any]) -> None:
    arch = json.dumps(found["export"], sort_keys=True)
    if "missing" in judged:
        blank = f"{'-':>9s} {'-':>6s} {'-':>7s} {'-':>7s}"
        print(f"{name:10s} {seed:4d} {blank} {found['minutes']:5.2f}  {arch}  "
              "(not in the table)", flush=True)  # fmt: skip
        return
    print(f"{name:10s} {seed:4d} {judged['rank']:4d}/{judged['of']:<4d} "
          f"{judged['percentile']:5.1f}% {judged['val']:7.4f} {judged['test']:7.4f} "
          f"{found['minutes']:5.2f}  {arch}", flush=True)  # fmt: skip


def searched(args: argparse.Namespace, space: Space) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(trainer, seed, {"export", "minutes"}) per search; a trainer that cannot search the space
    yields ``{"unsupported": why}`` once. With ``--rejudge``, the searches saved by ``--json``."""
    if args.rejudge is not None:
        for row in json.loads(args.rejudge.read_text()):
            yield row["trainer"], row["seed"], row
        return
    for name in args.trainers.split(","):
        for seed in range(args.seeds):
            try:
                epochs = args.epochs if args.epochs is not None else BUDGET[name]
                yield name, seed, {**search(name, space, seed, epochs), "epochs": epochs}
            except UsageError as exc:  # the trainer does not support this space
                yield name, seed, {"unsupported": str(exc)}
                break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=sorted(SPACES), default="cell")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per search for every trainer (default: BUDGET)")
    parser.add_argument("--trainers", default=",".join(TRAINERS))
    parser.add_argument("--table", type=Path, default=None, help="another table of the space")
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    parser.add_argument("--rejudge", type=Path, default=None,
                        help="judge the searches of a --json file again")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = SPACES[args.space](args.table)
    print(f"space {space.name}: {space.size}; median validation accuracy {space.median:.4f}; "
          f"epochs per search: {args.epochs or 'by trainer, ' + str(BUDGET)}; "
          f"{args.seeds} seeds per trainer\n")  # fmt: skip
    print(f"{'trainer':10s} {'seed':>4s} {'rank':>9s} {'pct':>6s} {'val':>7s} {'test':>7s} "
          f"{'min':>5s}  export")  # fmt: skip
    rows: list[dict[str, Any]] = []
    per_trainer: dict[str, dict[str, Any]] = {}
    for name, seed, found in searched(args, space):
        tally = per_trainer.setdefault(name, {"pcts": [], "below": 0, "runs": 0, "why": None})
        if "unsupported" in found:
            tally["why"] = found["unsupported"]
            continue
        tally["runs"] += 1
        found = {"export": found["export"], "minutes": found["minutes"],
                 "epochs": found.get("epochs")}  # fmt: skip
        judged = space.judge(found["export"])
        rows.append({"trainer": name, "seed": seed, **found, **judged})
        report(name, seed, found, judged)
        if "missing" not in judged:
            tally["pcts"].append(judged["percentile"])
            tally["below"] += judged["val"] < space.median
    print("\nsummary (percentile: share of the table at least as good; 1% = best)")
    for name, tally in per_trainer.items():
        pcts = tally["pcts"]
        if tally["why"] is not None and not pcts:
            print(f"{name:10s} does not support this space: {tally['why']}")
        elif pcts:
            missing = tally["runs"] - len(pcts)
            print(f"{name:10s} mean percentile {statistics.mean(pcts):5.1f}%  worst "
                  f"{max(pcts):5.1f}%  below the median {tally['below']}/{len(pcts)}"
                  + (f"  ({missing} exports not in the table)" if missing else ""))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
