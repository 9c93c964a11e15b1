"""The cell benchmark's graph: edges, operation names and isomorphism classes (torch-free).

A cell is a DAG of 4 nodes (0 is the cell's input, 3 its output); each of the 6 edges ``i_j``
(i < j) carries one operation, with NNI's NAS-Bench-201 names: ``none`` (no edge),
``skip_connect``, ``conv_1x1``, ``conv_3x3`` (ReLU-conv-BN). Node j is the sum of its incoming
edges. 4 ** 6 = 4,096 cells.

Two cells are *isomorphic* when they compute the same expression of the cell input, as
NAS-Bench-201 deduplicates its cells: a node with no input is absent (an operation on it
contributes nothing; in ``CellNet`` such nodes are exactly zero and every operation maps zero to
zero), a skip passes its node's sum on (sums are flattened and unordered, which also makes the
two inner nodes interchangeable), and nodes that do not reach the output do not matter.
``canonical_key`` returns that expression; the 4,096 cells fall into 871 classes. Isomorphic
cells compute the same function family and differ only in which random draw initialises which
weight, so the benchmark trains one representative per class (the first in GridSearch order) and
maps every cell to it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

__all__ = [
    "EDGES",
    "OPS",
    "PARAMETER_FREE",
    "EMPTY",
    "canonical_key",
    "all_cells",
    "representatives",
    "is_representative",
]

EDGES: tuple[str, ...] = ("0_1", "0_2", "1_2", "0_3", "1_3", "2_3")
OPS: tuple[str, ...] = ("none", "skip_connect", "conv_1x1", "conv_3x3")
PARAMETER_FREE = frozenset({"none", "skip_connect"})
EMPTY = "empty"  # the class of cells whose output receives nothing


def canonical_key(cell: Mapping[str, str]) -> str:
    """The expression the cell computes, as a string equal for isomorphic cells.

    ``cell`` maps every edge of ``EDGES`` to an operation of ``OPS`` (extra keys are ignored).

    Raises:
        KeyError: an edge is missing (the message names it).
        ValueError: an operation is not one of ``OPS`` (the message names the edge).
    """
    nodes: list[list[str] | None] = [["x"]]
    for j in (1, 2, 3):
        terms: list[str] = []
        for i in range(j):
            edge = f"{i}_{j}"
            if edge not in cell:
                raise KeyError(f"cell edge {edge!r} is missing")
            op = cell[edge]
            if op not in OPS:
                raise ValueError(f"edge {edge!r}: unknown operation {op!r} (allowed: {list(OPS)})")
            source = nodes[i]
            if op == "none" or source is None:
                continue
            if op == "skip_connect":
                terms.extend(source)
            else:
                terms.append(f"{op}({'+'.join(source)})")
        nodes.append(sorted(terms) if terms else None)
    out = nodes[3]
    return EMPTY if out is None else "+".join(out)


def all_cells() -> Iterator[dict[str, str]]:
    """Every cell, in GridSearch order (keys sorted, the first key varies slowest)."""
    keys = sorted(EDGES)
    for ops in itertools.product(OPS, repeat=len(keys)):
        yield dict(zip(keys, ops, strict=True))


def representatives() -> dict[str, dict[str, str]]:
    """canonical key -> the first cell of that class in GridSearch order."""
    out: dict[str, dict[str, str]] = {}
    for cell in all_cells():
        out.setdefault(canonical_key(cell), cell)
    return out


_REPRESENTATIVE_IDS: set[str] = set()


def is_representative(cell: Mapping[str, str]) -> bool:
    """True when ``cell`` is the one cell of its class that the benchmark trains."""
    if not _REPRESENTATIVE_IDS:
        _REPRESENTATIVE_IDS.update(_cell_id(rep) for rep in representatives().values())
    return _cell_id(cell) in _REPRESENTATIVE_IDS


def _cell_id(cell: Mapping[str, str]) -> str:
    return ",".join(f"{e}={cell[e]}" for e in sorted(EDGES))
