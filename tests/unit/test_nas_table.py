"""The committed tabular benchmark covers its search space exactly, and tuners can query it."""

from __future__ import annotations

import importlib.util
import json
import sys

from nascli import space as spaces
from tests.helpers import REPO

TABLE = REPO / "benchmarks" / "nas_table" / "digits_table.json"


def _load_benchmark(name: str = "tuner_efficiency"):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_table_has_every_architecture_exactly_once():
    table = json.loads(TABLE.read_text())
    space = spaces.parse_search_space(table["search_space"])
    rows = table["architectures"]
    assert len(rows) == spaces.space_size(space) == 384
    keys = set()
    for row in rows:
        decisions = spaces.normalize_architecture(space, row["architecture"])
        keys.add(json.dumps(decisions, sort_keys=True))
        assert 0.0 <= row["valid_accuracy"] <= 1.0 and 0.0 <= row["test_accuracy"] <= 1.0
        assert row["train_seconds"] > 0 and row["n_params"] > 0
        # the learning curve the early-stopping benchmark replays ends at the final score
        curve = row["valid_curve"]
        assert len(curve) == 12 and curve[-1] == row["valid_accuracy"]
        assert all(0.0 <= v <= 1.0 for v in curve)
    assert len(keys) == len(rows)
    # trained for real: far above chance (0.1) and not all alike
    accuracies = [r["test_accuracy"] for r in rows]
    assert min(accuracies) > 0.5 and max(accuracies) - min(accuracies) > 0.01
    # curves rise: the first epoch is worse than the last for most architectures
    assert sum(r["valid_curve"][0] < r["valid_curve"][-1] for r in rows) > 0.9 * len(rows)


def test_every_tuner_searches_the_table():
    bench = _load_benchmark()
    benchmark = bench.load_benchmark(TABLE)
    for name in bench.BUILTIN_TUNERS:
        curve, _ = bench.run_search(name, {}, benchmark, budget=30, seed=0)
        assert len(curve) == 30
        assert all(0.5 < acc <= 1.0 for acc in curve)


def test_the_early_stopping_benchmark_replays_the_table():
    bench = _load_benchmark("early_stopping")
    table = json.loads(TABLE.read_text())
    lookup = {bench._arch_key(r["architecture"]): r for r in table["architectures"]}
    full = bench.simulate(table, lookup, "Random", None, 0, 20, None, 1)
    assert full.epochs == 20 * 12 and full.trials == 20 and full.stopped == 0
    asha = bench.simulate(table, lookup, "Random", "ASHA", 0, 20, None, 1)
    assert asha.trials == 20 and 0 < asha.stopped < 20 and asha.epochs < full.epochs
    capped = bench.simulate(table, lookup, "TPE", "Medianstop", 0, None, full.epochs, 2)
    assert capped.epochs == full.epochs and capped.trials >= 20
    assert 0.5 < capped.best_test <= 1.0
