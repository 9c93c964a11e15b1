"""The cell space written with InputChoice picks (``CellInputNet``): an architecture computes
exactly the cell ``to_cell_architecture`` names, so the cell table judges it."""

from __future__ import annotations

import pytest
import torch

from nascli.errors import ArchitectureError
from nascli.nas import apply_fixed_architecture, model_search_space
from nascli.nas.benchmark.cell_input_space import CellInputNet, to_cell_architecture
from nascli.nas.benchmark.cell_space import CellNet
from nascli.nas.benchmark.table import load_benchmark

ARCH = {"op_0_1": "conv_3x3", "op_0_2": "skip_connect", "op_1_2": "conv_1x1",
        "op_0_3": "conv_3x3", "op_1_3": "skip_connect", "op_2_3": "conv_3x3",
        "node_1": [0], "node_2": [1], "node_3": [0, 2]}  # fmt: skip
CELL = {"0_1": "conv_3x3", "0_2": "none", "1_2": "conv_1x1", "0_3": "conv_3x3",
        "1_3": "none", "2_3": "conv_3x3"}  # fmt: skip


def test_the_space_has_input_choices_over_earlier_nodes() -> None:
    space = model_search_space(CellInputNet())
    for j in (1, 2, 3):
        spec = space[f"node_{j}"]
        assert spec.n_candidates == j and spec.n_chosen is None
    assert sorted(k for k in space if k.startswith("op_")) == sorted(
        f"op_{e}" for e in CELL
    )


def test_an_architecture_maps_to_the_cell_it_computes() -> None:
    assert to_cell_architecture(ARCH) == CELL
    empty_output = {**ARCH, "node_3": []}
    assert to_cell_architecture(empty_output) == {**CELL, "0_3": "none", "2_3": "none"}
    assert load_benchmark().query(to_cell_architecture(ARCH))["val"] > 0.5
    with pytest.raises(ArchitectureError, match="node_3"):
        to_cell_architecture({k: v for k, v in ARCH.items() if k != "node_3"})


def test_the_input_choice_network_computes_its_cell_exactly() -> None:
    torch.manual_seed(0)
    reference = CellNet()
    apply_fixed_architecture(reference, CELL)
    picks = CellInputNet()
    apply_fixed_architecture(picks, ARCH)
    weights = {k.replace(".edges.", ".ops."): v for k, v in reference.state_dict().items()}
    mine = picks.state_dict()
    shared = {k: v for k, v in weights.items() if k in mine}
    # every weight of the picked network comes from the reference (the unpicked skip has none)
    assert set(mine) == set(shared)
    picks.load_state_dict(shared)
    reference.eval()
    picks.eval()
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(picks(x), reference(x))
