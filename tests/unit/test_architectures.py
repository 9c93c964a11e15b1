"""``Architectures`` (the per-key memo the listings use) answers what ``architecture`` does for
every trial, valid or not."""

from __future__ import annotations

import random

from nascli import space as spaces
from nascli.experiment.report import Architectures, architecture
from tests.stores import SEARCH_SPACE, random_parameters


def test_same_answers_as_architecture_for_valid_and_broken_parameters() -> None:
    space = spaces.parse_search_space(SEARCH_SPACE)
    names = Architectures(space)
    rng = random.Random(7)
    cases = [random_parameters(rng) for _ in range(300)]
    good = random_parameters(rng)
    cases += [
        {**good, "cell0": {"_value": "conv3x3", "_idx": True}},  # a bool is not an index
        {**good, "cell0": {"_value": "skip", "_idx": 0}},  # _value does not match _idx
        {**good, "cell1": {"_value": "conv3x3", "_idx": 99}},
        {**good, "skipin": {"_value": ["stem"], "_idx": [0]}},  # n_chosen is 2
        {k: v for k, v in good.items() if k != "cell2"},  # a key missing
        {**good, "extra": {"_value": "a", "_idx": 0}},
        good,
    ]
    for parameters in cases + cases:  # the second time from the memo
        assert names(parameters) == architecture(parameters, space)
