"""The cell benchmark: a NAS-Bench-201-style space on distorted scikit-learn digits, every
architecture trained (one per isomorphism class, 2 seeds), shipped as package data with a query
API.

``query(architecture)`` looks an exported architecture up (``BenchmarkQueryError`` names the
key that does not fit); ``load_benchmark()`` gives the whole table (ranks, median);
``CellNet`` is the space as model code; ``cell_graph`` holds the graph and its isomorphism
classes.
"""

from nascli.nas.benchmark.cell_graph import EDGES, OPS, canonical_key
from nascli.nas.benchmark.cell_space import CellNet
from nascli.nas.benchmark.table import BenchmarkQueryError, CellBenchmark, load_benchmark, query

__all__ = [
    "EDGES",
    "OPS",
    "canonical_key",
    "CellNet",
    "BenchmarkQueryError",
    "CellBenchmark",
    "load_benchmark",
    "query",
]
