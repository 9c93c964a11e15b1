"""Search-space, parameter and architecture documents (nascli.space, torch-free)."""

from __future__ import annotations

import json

import pytest

from nascli import space as spaces
from nascli.errors import ArchitectureError, ParameterError, SearchSpaceError

SPACE_DOC = {
    "first_conv": {"_type": "layer_choice", "_value": ["conv5x5", "conv3x3"]},
    "mid_conv": {"_type": "layer_choice", "_value": ["0", "1"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["", ""], "n_chosen": 1}},
    "cells": {"_type": "input_choice", "_value": {"candidates": ["a", "b", "c"], "n_chosen": None}},
}


@pytest.fixture
def space():
    return spaces.parse_search_space(SPACE_DOC)


def test_search_space_round_trips_and_sorts_keys(space):
    doc = spaces.search_space_to_json(space)
    assert list(doc) == sorted(SPACE_DOC)
    assert doc == {k: SPACE_DOC[k] for k in sorted(SPACE_DOC)}
    assert spaces.space_size(space) == 2 * 2 * 2 * 8


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([], "must be a JSON object"),
        ({}, "has no choices"),
        ({"a": {"_type": "choice", "_value": [1]}}, "'_type' must be 'layer_choice' or"),
        ({"a": {"_type": "layer_choise", "_value": ["x"]}}, "did you mean 'layer_choice'"),
        ({"a": {"_type": "layer_choice", "_value": []}}, "non-empty list of candidate names"),
        ({"a": {"_type": "layer_choice"}}, "must be an object with '_type' and '_value'"),
        ({"a": {"_type": "input_choice", "_value": ["x"]}}, "must be an object with 'candidates'"),
        (
            {"a": {"_type": "input_choice", "_value": {"candidates": ["", ""], "n_chosen": 3}}},
            "integer from 0 to 2, got 3",
        ),
        (
            {"a": {"_type": "input_choice", "_value": {"candidates": [], "n_chosen": 0}}},
            "non-empty",
        ),
    ],
)
def test_bad_search_spaces_are_named(doc, expected):
    with pytest.raises(SearchSpaceError, match=expected):
        spaces.parse_search_space(doc, "ss.json")


def test_search_space_errors_are_all_reported_with_the_file(tmp_path):
    path = tmp_path / "ss.json"
    path.write_text(json.dumps({"a": {"_type": "x", "_value": []}, "b": 3}))
    with pytest.raises(SearchSpaceError) as info:
        spaces.load_search_space(path)
    assert str(path) in str(info.value)
    assert len(info.value.problems) == 2
    assert "key 'a'" in str(info.value) and "key 'b'" in str(info.value)


def test_malformed_json_file_names_line_and_column(tmp_path):
    path = tmp_path / "ss.json"
    path.write_text('{"a": \n  {,}')
    with pytest.raises(SearchSpaceError, match=r"line 2 column 4"):
        spaces.load_search_space(path)
    with pytest.raises(SearchSpaceError, match="cannot read"):
        spaces.load_search_space(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("first_conv", "conv3x3", [False, True]),
        ("first_conv", 0, [True, False]),
        ("first_conv", [1], [False, True]),
        ("first_conv", ["conv5x5", "conv3x3"], [True, True]),
        ("first_conv", [False, True], [False, True]),
        ("first_conv", [0.25, 0.75], [0.25, 0.75]),
        ("first_conv", {"_value": "conv3x3", "_idx": 1}, [False, True]),
        ("skip", 1, [False, True]),
        ("skip", [0], [True, False]),
        ("skip", [True, False], [True, False]),
        ("cells", [], [False, False, False]),
        ("cells", ["a", "c"], [True, False, True]),
        ("cells", [0, 1], [True, True, False]),  # ints are indices, not a mask
    ],
)
def test_architecture_formats(space, key, value, expected):
    arch = {"first_conv": 0, "mid_conv": 0, "skip": 0, "cells": []}
    arch[key] = value
    assert spaces.normalize_architecture(space, arch)[key] == expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("first_conv", "conv7x7", "unknown candidate 'conv7x7'"),
        ("first_conv", "conv3x4", "did you mean 'conv3x3'"),
        ("first_conv", 2, "index 2 is out of range; allowed: an index 0..1"),
        ("first_conv", -1, "index -1 is out of range"),
        ("first_conv", [], "needs at least one candidate"),
        ("first_conv", [True, False, False], "multi-hot list needs 2 entries"),
        ("first_conv", [0.5, 0.25, 0.25], "weight list needs 2 entries"),
        ("first_conv", True, "got True"),
        ("first_conv", None, "got None"),
        ("first_conv", [0, 0], "chosen twice"),
        ("skip", [0, 1], "exactly 1 input(s) must be chosen"),
        ("skip", [], "exactly 1 input(s) must be chosen"),
        ("skip", "", "shared by candidates [0, 1]"),
        ("cells", [{"x": 1}], "got {'x': 1}"),
    ],
)
def test_bad_architecture_values_name_key_value_and_what_is_allowed(space, key, value, expected):
    arch = {"first_conv": 0, "mid_conv": 0, "skip": 0, "cells": []}
    arch[key] = value
    with pytest.raises(ArchitectureError) as info:
        spaces.normalize_architecture(space, arch, "arch.json")
    message = str(info.value)
    assert "arch.json" in message and f"key {key!r}" in message
    assert expected in message


def test_architecture_key_problems_are_all_listed(space):
    arch = {"first_cnov": 0, "mid_conv": 0, "skip": 5}
    with pytest.raises(ArchitectureError) as info:
        spaces.normalize_architecture(space, arch)
    problems = info.value.problems
    assert any(
        "'first_cnov' is not in the model's search space" in p and "first_conv" in p
        for p in problems
    )
    assert any("'first_conv' is missing" in p for p in problems)
    assert any("'cells' is missing" in p for p in problems)
    assert any("'skip': index 5 is out of range" in p for p in problems)
    assert len(problems) == 4
    # strict=False ignores unknown keys but still reports missing ones
    with pytest.raises(ArchitectureError) as info:
        spaces.normalize_architecture(space, arch, strict=False)
    assert len(info.value.problems) == 3


def test_parameters_validate_and_accept_the_idex_typo(space):
    params = {
        "first_conv": {"_value": "conv3x3", "_idx": 1},
        "mid_conv": {"_value": "0", "_idx": 0},
        "skip": {"_value": [""], "_idex": [1]},
        "cells": {"_value": ["c", "a"], "_idx": [2, 0]},
    }
    decisions = spaces.parse_parameters(space, params)
    assert decisions == {
        "first_conv": [False, True],
        "mid_conv": [True, False],
        "skip": [False, True],
        "cells": [True, False, True],
    }


@pytest.mark.parametrize(
    ("key", "entry", "expected"),
    [
        ("first_conv", {"_value": "conv3x3", "_idx": 0}, "is not candidate 0 (which is 'conv5x5')"),
        ("first_conv", {"_value": "conv3x3", "_idx": 7}, "out of range 0..1"),
        ("first_conv", {"_value": "conv3x3"}, "must be an object with '_value' and '_idx'"),
        ("first_conv", {"_idx": "1"}, "'_idx' must be an integer"),
        ("skip", {"_value": ["", ""], "_idx": [0, 0]}, "selected twice"),
        ("skip", {"_value": ["", ""], "_idx": [0, 1]}, "exactly 1 input(s)"),
        ("skip", {"_value": [""], "_idx": 1}, "'_idx' must be a list of integers"),
        ("cells", {"_value": ["a"], "_idx": [0, 1]}, "does not match '_idx'"),
    ],
)
def test_bad_parameters(space, key, entry, expected):
    params = spaces.parameters_from_indices(
        space, {"first_conv": 0, "mid_conv": 1, "skip": [0], "cells": []}
    )
    params[key] = entry
    with pytest.raises(ParameterError) as info:
        spaces.parse_parameters(space, params, "parameter.json")
    assert expected in str(info.value) and "parameter.json" in str(info.value)


def test_parameters_with_other_keys_are_refused(space):
    params = spaces.parameters_from_indices(
        space, {"first_conv": 0, "mid_conv": 1, "skip": [0], "cells": []}
    )
    params["extra"] = {"_value": "x", "_idx": 0}
    del params["mid_conv"]
    with pytest.raises(ParameterError) as info:
        spaces.parse_parameters(space, params)
    assert len(info.value.problems) == 2


def test_first_candidate_architecture_is_nni_standalone_mode(space):
    assert spaces.first_candidate_architecture(space) == {
        "cells": [True, True, True],  # n_chosen=None: all of them
        "first_conv": [True, False],
        "mid_conv": [True, False],
        "skip": [True, False],
    }


def test_human_readable_export(space):
    assert spaces.human_readable(space["first_conv"], [False, True]) == "conv3x3"
    assert spaces.human_readable(space["mid_conv"], [False, True]) == 1  # digit names -> index
    assert spaces.human_readable(space["skip"], [True, False]) == 0  # "" names -> index
    assert spaces.human_readable(space["cells"], [True, False, True]) == ["a", "c"]
    assert spaces.human_readable(space["cells"], [False, False, False]) == []
    assert spaces.human_readable(space["first_conv"], [0.2, 0.8]) == [0.2, 0.8]


def test_decision_steps_round_trip():
    space = spaces.parse_search_space(
        {
            "b": {"_type": "layer_choice", "_value": ["x", "y", "z"]},
            "a": {
                "_type": "input_choice",
                "_value": {"candidates": ["p", "q", "r"], "n_chosen": 2},
            },
            "c": {"_type": "input_choice", "_value": {"candidates": ["s", "t"], "n_chosen": None}},
        }
    )
    assert spaces.decision_steps(space) == [("a", 3), ("a", 3), ("b", 3), ("c", 2), ("c", 2)]
    choices = spaces.choices_from_actions(space, [2, 0, 1, 0, 1])
    assert choices == {"a": [0, 2], "b": 1, "c": [1]}
    assert spaces.actions_from_choices(space, choices) == [0, 2, 1, 0, 1]
