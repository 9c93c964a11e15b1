"""One-shot trainers decide in the one internal form (``spaces.Chosen``: an index per layer
choice, sorted indices per input choice) and export it with ``spaces.export_architecture``; a
checkpoint written before the one form (input picks as lists) resumes into it."""

from __future__ import annotations

from typing import Any

import pytest

from nascli import space as spaces
from tests.unit.test_oneshot import build


def is_chosen(space: spaces.SearchSpace, arch: Any) -> bool:
    if not isinstance(arch, dict) or set(arch) != set(space):
        return False
    for key, value in arch.items():
        if isinstance(space[key], spaces.LayerChoiceSpec):
            if type(value) is not int or not 0 <= value < space[key].n_candidates:
                return False
        elif not (isinstance(value, tuple) and all(type(i) is int for i in value)
                  and list(value) == sorted(set(value))):  # fmt: skip
            return False
    return True


@pytest.mark.parametrize("name", ["darts", "gdas", "proxyless"])
def test_weighted_trainers_export_the_indices_they_chose(name: str) -> None:
    trainer = build(name, epochs=1)
    trainer.fit()
    chosen = trainer.chosen_indices()
    assert is_chosen(trainer.search_space, chosen), chosen
    assert trainer.export() == spaces.export_architecture(trainer.search_space, chosen)


@pytest.mark.parametrize("name", ["enas", "random", "spos"])
def test_single_path_trainers_sample_score_and_keep_the_one_form(name: str) -> None:
    trainer = build(name, epochs=1)
    trainer.fit()
    space = trainer.search_space
    assert is_chosen(space, trainer.sample_for_step())
    assert trainer.best and all(is_chosen(space, arch) for _, arch in trainer.best)
    best = max(trainer.best, key=lambda item: item[0])[1]
    assert trainer.export() == spaces.export_architecture(space, best)


def test_a_checkpoint_with_input_picks_as_lists_resumes_in_the_one_form() -> None:
    trainer = build("random", epochs=1)
    trainer._load_extra_state({"best": [(0.5, {"op1": 2, "op2": 0, "cell_in": [2, 0]})]})
    assert trainer.best == [(0.5, {"op1": 2, "op2": 0, "cell_in": (0, 2)})]
    assert trainer.export() == {"cell_in": [0, 2], "op1": "pool", "op2": 0}
