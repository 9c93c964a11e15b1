"""Custom tuners load from a file with every problem reported before an experiment starts."""

from __future__ import annotations

import pytest

from nascli import space as spaces
from tests.helpers import REPO
from tests.unit.test_tuner_contract import ANY_INPUTS_SPACE, objective
from tuners import TunerArgumentError, load_custom_tuner

EXAMPLE = REPO / "examples" / "custom_tuner"


def test_the_example_custom_tuner_loads_and_searches():
    tuner = load_custom_tuner(EXAMPLE, "greedy_tuner.py", "GreedyTuner", {"seed": 0})
    tuner.update_search_space(ANY_INPUTS_SPACE)
    space = spaces.parse_search_space(ANY_INPUTS_SPACE)
    for pid in range(30):
        params = tuner.generate_parameters(pid)
        spaces.parse_parameters(space, params)
        tuner.receive_trial_result(pid, params, objective(params))
        tuner.trial_end(pid, True)


@pytest.mark.parametrize(
    ("file", "cls", "args", "expected"),
    [
        ("missing.py", "GreedyTuner", {}, "does not exist"),
        ("greedy_tuner.py", "Greedy", {}, "has no class 'Greedy'"),
        ("greedy_tuner.py", "GreedyTuner", {"explor": 0.1}, "do not fit GreedyTuner"),
        ("greedy_tuner.py", "GreedyTuner", {"explore": 2}, "explore must be within"),
    ],
)
def test_custom_tuner_problems(file, cls, args, expected):
    with pytest.raises(TunerArgumentError, match=expected):
        load_custom_tuner(EXAMPLE, file, cls, args)


def test_not_a_tuner_and_import_failures(tmp_path):
    (tmp_path / "t.py").write_text("class NotATuner:\n    pass\n")
    with pytest.raises(TunerArgumentError, match="is not a subclass of tuners.Tuner"):
        load_custom_tuner(tmp_path, "t.py", "NotATuner")
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    with pytest.raises(TunerArgumentError, match="importing .* failed: ModuleNotFoundError"):
        load_custom_tuner(tmp_path, "broken.py", "X")
