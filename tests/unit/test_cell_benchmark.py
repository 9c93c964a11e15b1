"""The cell benchmark: its graph's isomorphism classes, the model code computing exactly what a
class says, the query API (exported JSON in, clear errors naming the key out), ranks, the tuner
benchmark's cell mode, and the shipped table's integrity."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from nascli import space as spaces
from nascli.nas import apply_fixed_architecture, model_search_space
from nascli.nas.benchmark.cell_graph import (
    EDGES,
    EMPTY,
    OPS,
    all_cells,
    canonical_key,
    representatives,
)
from nascli.nas.benchmark.cell_space import CellNet
from nascli.nas.benchmark.table import (
    TABLE_PATH,
    BenchmarkQueryError,
    load_benchmark,
    query,
    search_space,
)
from tests.helpers import REPO


def cell(**ops: str) -> dict[str, str]:
    base = dict.fromkeys(EDGES, "none")
    base.update({k.replace("e", "").replace("to", "_"): v for k, v in ops.items()})
    return base


def test_isomorphism_classes() -> None:
    assert sum(1 for _ in all_cells()) == 4096
    assert len(representatives()) == 871
    assert canonical_key(cell()) == EMPTY
    # the two inner nodes are interchangeable; a skip passes its node's sum on
    assert canonical_key(cell(e0to1="conv_3x3", e1to3="skip_connect")) == canonical_key(
        cell(e0to2="conv_3x3", e2to3="skip_connect")
    )
    # an edge out of a node nothing reaches, or into a node that reaches nothing, is irrelevant
    assert canonical_key(cell(e0to3="conv_1x1", e1to2="conv_3x3")) == canonical_key(
        cell(e0to3="conv_1x1")
    )
    assert canonical_key(cell(e0to3="conv_1x1", e0to1="conv_3x3")) == canonical_key(
        cell(e0to3="conv_1x1")
    )
    # but a conv of a sum is not a sum of convs
    assert canonical_key(cell(e0to1="skip_connect", e0to3="skip_connect", e1to3="conv_1x1")) != \
        canonical_key(cell(e0to3="conv_1x1"))  # fmt: skip
    with pytest.raises(KeyError, match="'2_3'"):
        canonical_key({e: "none" for e in EDGES if e != "2_3"})


def test_isomorphic_cells_compute_the_same_function_up_to_weights() -> None:
    """A cell and its class representative, given the same weights for the edges that matter,
    output the same tensor: the mapping is exact, not an approximation."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    a = cell(e0to3="conv_3x3", e0to1="conv_1x1", e1to2="conv_3x3")  # node 2 reaches nothing
    b = cell(e0to3="conv_3x3", e0to1="conv_1x1")
    outs = []
    for arch in (a, b):
        torch.manual_seed(1)
        model = CellNet()
        apply_fixed_architecture(model, arch)
        model.eval()
        outs.append(model(x))
    assert canonical_key(a) == canonical_key(b)
    torch.testing.assert_close(outs[0], outs[1])
    empty = CellNet()
    apply_fixed_architecture(empty, cell(e0to1="conv_3x3", e1to2="conv_3x3"))
    empty.eval()  # the output node gets nothing: every input gives the same logits
    out = empty(x)
    torch.testing.assert_close(out, out[:1].expand_as(out))


def test_the_model_code_and_the_query_api_share_one_space() -> None:
    assert model_search_space(CellNet()) == search_space()


@pytest.fixture
def synthetic_table(tmp_path: Path) -> Path:
    """A complete table whose accuracies grow with the number of convolutions (plumbing only:
    the shipped table's numbers are checked in test_shipped_table)."""
    rows = {}
    for key, rep in representatives().items():
        convs = key.count("conv_3x3") * 2 + key.count("conv_1x1")
        val = 0.1 if key == EMPTY else min(0.99, 0.5 + 0.04 * convs)
        rows[key] = {"architecture": rep, "val": val, "test": val - 0.01, "curve": [val / 2, val],
                     "seeds": {"val": [val, val]}, "params": 100 + convs, "flops": 1000 * convs,
                     "latency": 0.1}  # fmt: skip
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"meta": {}, "rows": rows}))
    return path


def test_query_accepts_exported_json_in_every_form(synthetic_table: Path, tmp_path: Path) -> None:
    arch = cell(e0to1="conv_3x3", e1to3="skip_connect")
    twin = cell(e0to2="conv_3x3", e2to3="skip_connect")
    by_name = query(arch, synthetic_table)
    assert set(by_name) >= {"val", "test", "curve", "params", "flops", "latency"}
    assert query(twin, synthetic_table) == by_name
    by_index = {k: OPS.index(v) for k, v in arch.items()}
    assert query(by_index, synthetic_table) == by_name
    file = tmp_path / "arch.json"
    file.write_text(json.dumps(arch))
    assert query(str(file), synthetic_table) == by_name
    params = spaces.parameters_from_indices(search_space(), by_index)
    assert query(params, synthetic_table) == by_name


def test_unknown_architectures_get_an_error_naming_the_key(synthetic_table: Path) -> None:
    arch = cell(e0to1="conv_3x3")
    with pytest.raises(BenchmarkQueryError, match="'1_3'.*missing"):
        query({k: v for k, v in arch.items() if k != "1_3"}, synthetic_table)
    with pytest.raises(BenchmarkQueryError, match="'block1'"):
        query({**arch, "block1": "conv3x3"}, synthetic_table)
    with pytest.raises(BenchmarkQueryError, match="'0_2'.*'conv_5x5'"):
        query({**arch, "0_2": "conv_5x5"}, synthetic_table)
    with pytest.raises(BenchmarkQueryError, match="'0_1' must choose exactly one"):
        query({**arch, "0_1": [0.2, 0.3, 0.5, 0.0]}, synthetic_table)
    doc = json.loads(synthetic_table.read_text())
    del doc["rows"][canonical_key(arch)]
    partial = synthetic_table.with_name("partial.json")
    partial.write_text(json.dumps(doc))
    with pytest.raises(BenchmarkQueryError, match="is not in the table: it holds 870 of 871"):
        query(arch, partial)


def test_ranks_count_every_cell(synthetic_table: Path) -> None:
    bench = load_benchmark(synthetic_table)
    best = max(bench.rows.values(), key=lambda r: r["val"])
    worst = bench.rank(cell(), "val")
    assert bench.rank(best["architecture"])["rank"] == 1
    assert worst["of"] == 4096 and worst["percentile"] > 95
    assert bench.median() < best["val"]


def test_tuner_benchmark_runs_on_the_cell_table(synthetic_table: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "tuner_efficiency", REPO / "benchmarks" / "tuner_efficiency.py"
    )
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    cells = bench.cell_benchmark(synthetic_table)
    assert "4096 architectures" in cells.description
    assert len(spaces.parse_search_space(cells.search_space)) > 0
    curve, _ = bench.run_search("Evolution", {}, cells, budget=20, seed=0)
    assert len(curve) == 20 and curve[-1] >= curve[0]


@pytest.mark.skipif(not TABLE_PATH.exists(), reason="the cell table is not built yet")
def test_shipped_table() -> None:
    bench = load_benchmark()
    assert len(bench.rows) >= 100
    for key, row in bench.rows.items():
        assert canonical_key(row["architecture"]) == key
        assert len(row["seeds"]["val"]) >= 2 and len(row["curve"]) == bench.meta["recipe"]["epochs"]
        assert 0.0 <= row["test"] <= 1.0 and row["latency"] > 0
        assert query(row["architecture"])["val"] == row["val"]
    vals = [r["val"] for r in bench.rows.values()]
    assert max(vals) > 0.8 and min(vals) < 0.2  # trained for real: the empty cell is chance
    assert bench.meta["spearman_seed_val"] >= 0.8


@pytest.mark.skipif(not TABLE_PATH.exists(), reason="the cell table is not built yet")
def test_the_package_offers_the_query_api() -> None:
    import nascli.nas.benchmark as benchmark

    arch = {"0_1": "conv_3x3", "0_2": "none", "0_3": "conv_3x3", "1_2": "conv_3x3",
            "1_3": "none", "2_3": "conv_3x3"}  # fmt: skip
    assert benchmark.query(arch) == query(arch)
    with pytest.raises(benchmark.BenchmarkQueryError, match="'1_3' is missing"):
        benchmark.query({"0_1": "conv_3x3"})
