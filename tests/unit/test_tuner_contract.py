"""The tuner contract, run for every registered tuner (a new tuner is tested by registering it)."""

from __future__ import annotations

import json

import pytest

from nascli import space as spaces
from nascli.nas import model_search_space
from tests.models import ScopedSpace
from tuners import BUILTIN_TUNERS, NoMoreTrialError, TunerArgumentError, create_tuner

TRIAL_SPACE = {
    "first_conv": {"_type": "layer_choice", "_value": ["0", "1"]},
    "mid_conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "dil3x3"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["", ""], "n_chosen": 1}},
}
ANY_INPUTS_SPACE = {
    "op": {"_type": "layer_choice", "_value": ["a", "b", "c", "d"]},
    "inputs": {
        "_type": "input_choice",
        "_value": {"candidates": ["x", "y", "z", "w"], "n_chosen": None},
    },
    "pair": {
        "_type": "input_choice",
        "_value": {"candidates": ["", "", "", "", ""], "n_chosen": 2},
    },
}
# A space generated from a model whose repeated layers share keys.
SHARED_KEYS_SPACE = spaces.search_space_to_json(model_search_space(ScopedSpace()))
SPACES = {"trial": TRIAL_SPACE, "any_inputs": ANY_INPUTS_SPACE, "shared_keys": SHARED_KEYS_SPACE}

NAMES = sorted(BUILTIN_TUNERS)


def objective(params) -> float:
    """A deterministic score of an architecture: larger indices score higher."""
    total = 0.0
    for key in sorted(params):
        idx = params[key]["_idx"]
        total += sum(idx) if isinstance(idx, list) else idx
    return total


def make(name, doc, **kwargs):
    tuner = create_tuner(name, {"seed": 1, **kwargs})
    tuner.update_search_space(doc)
    return tuner


def run(tuner, n, start=0, sign=1.0, fail_every=0):
    out = []
    for pid in range(start, start + n):
        try:
            params = tuner.generate_parameters(pid)
        except NoMoreTrialError:
            break
        out.append(params)
        if fail_every and pid % fail_every == 0:
            tuner.trial_end(pid, False)
            continue
        tuner.receive_trial_result(pid, params, {"default": sign * objective(params)})
        tuner.trial_end(pid, True)
    return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_parameters_are_always_valid(name, space_name):
    doc = SPACES[space_name]
    space = spaces.parse_search_space(doc)
    tuner = make(name, doc)
    proposals = run(tuner, 60, fail_every=7)
    assert proposals
    for params in proposals:
        spaces.parse_parameters(space, params)  # raises on anything invalid
    keys = [json.dumps(p, sort_keys=True) for p in proposals]
    assert len(set(keys)) == len(keys), "an architecture was proposed twice"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_sequence(name):
    assert run(make(name, ANY_INPUTS_SPACE), 40) == run(make(name, ANY_INPUTS_SPACE), 40)


@pytest.mark.parametrize("name", NAMES)
def test_many_proposals_before_any_result(name):
    tuner = make(name, ANY_INPUTS_SPACE)
    space = spaces.parse_search_space(ANY_INPUTS_SPACE)
    outstanding = [tuner.generate_parameters(pid) for pid in range(40)]
    for params in outstanding:
        spaces.parse_parameters(space, params)
    assert len({json.dumps(p, sort_keys=True) for p in outstanding}) == 40
    for pid, params in enumerate(outstanding):
        tuner.receive_trial_result(pid, params, objective(params))
        tuner.trial_end(pid, True)
    run(tuner, 20, start=40)


@pytest.mark.parametrize("name", NAMES)
def test_failed_trials_are_tolerated(name):
    tuner = make(name, ANY_INPUTS_SPACE)
    assert len(run(tuner, 50, fail_every=2)) == 50


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_then_load_continues_identically(name):
    # what `replayable` promises: the manager replays logged calls on a restored tuner
    assert create_tuner(name).replayable
    original = make(name, ANY_INPUTS_SPACE)
    run(original, 25, fail_every=5)
    outstanding = original.generate_parameters(25)  # in flight at the checkpoint
    state = json.loads(json.dumps(original.save_checkpoint()))
    restored = create_tuner(name, {"seed": 99})
    restored.update_search_space(ANY_INPUTS_SPACE)
    restored.load_checkpoint(state)
    for tuner in (original, restored):
        tuner.receive_trial_result(25, outstanding, objective(outstanding))
        tuner.trial_end(25, True)
    assert run(original, 25, start=26) == run(restored, 25, start=26)


@pytest.mark.parametrize("name", NAMES)
def test_minimize_is_maximize_of_the_negated_metric(name):
    minimizing = make(name, ANY_INPUTS_SPACE, optimize_mode="minimize")
    maximizing = make(name, ANY_INPUTS_SPACE, optimize_mode="maximize")
    assert run(minimizing, 40, sign=-1.0) == run(maximizing, 40, sign=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_import_data_counts_as_tried(name):
    tuner = make(name, TRIAL_SPACE)
    donor = make("GridSearch", TRIAL_SPACE)
    imported = [donor.generate_parameters(i) for i in range(6)]
    tuner.import_data([{"parameter": p, "value": objective(p)} for p in imported])
    fresh = run(tuner, 20)
    assert len(fresh) == 12 - 6  # the space has 12 architectures
    assert not {json.dumps(p, sort_keys=True) for p in fresh} & {
        json.dumps(p, sort_keys=True) for p in imported
    }


@pytest.mark.parametrize("name", NAMES)
def test_bad_class_args(name):
    with pytest.raises(TunerArgumentError, match="optimize_mode must be 'maximize' or 'minimize'"):
        create_tuner(name, {"optimize_mode": "max"})
    with pytest.raises(TunerArgumentError, match="do not fit"):
        create_tuner(name, {"no_such_arg": 1})
    with pytest.raises(TunerArgumentError, match="seed must be an integer"):
        create_tuner(name, {"seed": "x"})


def test_unknown_tuner_name_lists_the_known_ones():
    with pytest.raises(TunerArgumentError) as info:
        create_tuner("Evolutoin")
    assert "did you mean 'Evolution'" in str(info.value) and "'GridSearch'" in str(info.value)


def test_grid_search_proposes_every_architecture_once_then_stops():
    tuner = make("GridSearch", TRIAL_SPACE)
    proposals = run(tuner, 100)
    assert len(proposals) == 12
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(100)


def test_grid_search_refuses_a_space_too_large_with_the_count():
    tuner = create_tuner("GridSearch", {"max_size": 100})
    with pytest.raises(TunerArgumentError, match="has 640 architectures, more than max_size"):
        tuner.update_search_space(ANY_INPUTS_SPACE)


def test_random_stops_when_the_space_is_exhausted():
    assert len(run(make("Random", TRIAL_SPACE), 100)) == 12


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"population_size": 0}, "population_size must be a positive integer"),
        ({"population_size": 4, "sample_size": 5}, "must not exceed population_size"),
    ],
)
def test_evolution_args(args, expected):
    with pytest.raises(TunerArgumentError, match=expected):
        create_tuner("Evolution", args)


@pytest.mark.parametrize(
    ("args", "expected"),
    [({"gamma": 1.5}, "gamma must be"), ({"n_startup_trials": 0}, "n_startup_trials must be")],
)
def test_tpe_args(args, expected):
    with pytest.raises(TunerArgumentError, match=expected):
        create_tuner("TPE", args)


def test_evolution_mutates_exactly_one_decision():
    tuner = make("Evolution", ANY_INPUTS_SPACE)
    for _ in range(200):
        parent = tuner.sample_uniform()
        child = tuner.mutate(parent)
        assert sum(a != b for a, b in zip(parent, child, strict=True)) == 1
        spaces.parse_parameters(tuner.space, tuner.to_parameters(child))
