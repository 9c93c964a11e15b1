"""The cell benchmark's table and its query API (torch-free; package data, no download).

``query(architecture)`` accepts what users export (``{edge: operation name | index | one-hot
list | [name]}``, a parameter entry, or the path of such a JSON file) and returns the trained
results of its isomorphism class: ``{"val", "test", "curve", "params", "flops", "latency", ...}``.
``CellBenchmark`` adds ranks: every one of the 4,096 cells counts (a class weighs as many cells
as it holds, so percentiles are those of a uniformly random pick).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from nascli import space as spaces
from nascli.errors import ArchitectureError
from nascli.nas.benchmark.cell_graph import EDGES, OPS, all_cells, canonical_key

__all__ = [
    "TABLE_PATH",
    "BenchmarkQueryError",
    "CellBenchmark",
    "load_benchmark",
    "query",
    "search_space",
    "spearman",
]

TABLE_PATH = Path(__file__).resolve().parent / "cell_table.json"
RESULT_FIELDS = ("val", "test", "curve", "params", "flops", "latency")


class BenchmarkQueryError(ArchitectureError):
    """The architecture does not fit the cell space, or its class is not in the table."""


def search_space() -> dict[str, spaces.LayerChoiceSpec]:
    """The cell space as nascli's search-space model (what ``model_search_space(CellNet())``
    returns), without building the model."""
    return {edge: spaces.LayerChoiceSpec(OPS) for edge in sorted(EDGES)}


def cell_of(architecture: Any, source: str = "architecture") -> dict[str, str]:
    """``{edge: operation name}`` for one architecture document or JSON file.

    Raises:
        BenchmarkQueryError: not a cell-space architecture (names the key), or an edge does not
            choose exactly one operation.
    """
    if isinstance(architecture, (str, os.PathLike)):
        source = str(architecture)
        architecture = spaces.load_architecture(architecture)
    space = search_space()
    try:
        decisions = spaces.normalize_architecture(space, architecture, source)
    except ArchitectureError as exc:
        raise BenchmarkQueryError(exc.problems, source) from None
    cell: dict[str, str] = {}
    problems = []
    for edge, decision in decisions.items():
        chosen = [i for i, v in enumerate(decision) if v is True or (v is not False and v > 0)]
        if len(chosen) != 1:
            problems.append(
                f"key {edge!r} must choose exactly one operation of {list(OPS)}, got {decision}"
            )
        else:
            cell[edge] = OPS[chosen[0]]
    if problems:
        raise BenchmarkQueryError(problems, source)
    return cell


class CellBenchmark:
    """The table in memory: ``rows`` maps a canonical key to its trained results."""

    def __init__(self, doc: Mapping[str, Any], source: str = "table"):
        self.meta: dict[str, Any] = dict(doc["meta"])
        self.rows: dict[str, dict[str, Any]] = dict(doc["rows"])
        self.source = source
        self.class_size = Counter(canonical_key(c) for c in all_cells())
        self.n_cells = sum(self.class_size.values())

    def lookup(self, architecture: Any) -> tuple[str, dict[str, Any]]:
        """(canonical key, row) of an architecture.

        Raises:
            BenchmarkQueryError: names the key that does not fit, or the class that is missing.
        """
        cell = cell_of(architecture)
        key = canonical_key(cell)
        if key not in self.rows:
            raise BenchmarkQueryError(
                [f"architecture {cell} (class {key!r}) is not in the table: it holds "
                 f"{len(self.rows)} of {len(self.class_size)} classes"],  # fmt: skip
                self.source,
            )
        return key, self.rows[key]

    def query(self, architecture: Any) -> dict[str, Any]:
        key, row = self.lookup(architecture)
        return {**{f: row[f] for f in RESULT_FIELDS}, "class": key, "seeds": row["seeds"]}

    def rank(self, architecture: Any, metric: str = "val") -> dict[str, Any]:
        """Where the architecture stands among all cells by ``metric`` (``val`` or ``test``):
        ``rank`` 1 is the best; ``percentile`` is the share of cells at least as good, in % (1 =
        top 1 %). Ties count in its favour: rank = 1 + cells strictly better."""
        _, row = self.lookup(architecture)
        better = sum(self.class_size[k] for k, r in self.rows.items() if r[metric] > row[metric])
        covered = sum(self.class_size[k] for k in self.rows)
        return {"rank": better + 1, "of": covered, "percentile": 100.0 * (better + 1) / covered}

    def median(self, metric: str = "val") -> float:
        values = sorted(
            v for k, r in self.rows.items() for v in [r[metric]] * self.class_size[k]
        )
        return values[len(values) // 2]


@lru_cache(maxsize=4)
def _load(path: str) -> CellBenchmark:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BenchmarkQueryError(
            [f"the table {path!r} does not exist (build it with "
             "benchmarks/cell_benchmark/generate.py)"], path,  # fmt: skip
        ) from None
    return CellBenchmark(doc, path)


def load_benchmark(path: str | os.PathLike[str] | None = None) -> CellBenchmark:
    """The shipped table (or the one at ``path``), loaded once per process."""
    return _load(str(path or TABLE_PATH))


def query(architecture: Any, table: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{val, test, curve, params, flops, latency, class, seeds}`` of an architecture.

    ``val``/``test`` are accuracies averaged over the seeds, ``curve`` the mean validation
    accuracy per epoch, ``flops`` multiply-adds per image, ``latency`` milliseconds per image on
    one CPU thread.

    Raises:
        BenchmarkQueryError: the architecture does not fit the cell space (the message names the
            key and what is allowed) or its class is not in the table.
    """
    return load_benchmark(table).query(architecture)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var else 0.0
