"""The tuner keeper: one validated ask per proposal, tuner problems as TunerFailedError, and a
restore that replays the logged calls through the tuner's public contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from nascli import space as spaces
from nascli.errors import TunerFailedError
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.tuner_keeper import TunerKeeper
from tests.experiments import make_experiment


def _keeper(tmp_path: Path):
    store = make_experiment(tmp_path)
    config = ExperimentConfig.from_dict(store.experiment().config)
    return store, config, TunerKeeper.restore(store, config.tuner)


def test_restore_replays_the_log_and_keeps_what_trials_really_run(tmp_path: Path) -> None:
    store, config, keeper = _keeper(tmp_path)
    with store.transaction():
        pid0, params0 = keeper.ask()
        keeper.save()  # the first save writes the whole checkpoint
    with store.transaction():
        pid1, params1 = keeper.ask()
        keeper.tell(pid0, params0, True, {"default": 0.5})
        keeper.save()  # later turns only log their calls
    assert (pid0, pid1) == (0, 1)
    assert [call[0] for call in store.tuner_calls()] == ["ask", "tell", "end"]
    # A trial runs parameters the replayed tuner would not propose (not expected of a
    # replayable tuner, but what runs wins): the logged ask says so.
    other = dict(params1)
    key = sorted(other)[0]
    spec = keeper.space[key]
    idx = (other[key]["_idx"] + 1) % spec.n_candidates
    other[key] = {"_value": spec.names[idx], "_idx": idx}
    with store.transaction():
        store.clear_tuner_calls()
        store.append_tuner_calls([["ask", pid1, other], ["tell", pid0, params0, {"default": 0.5}]])
    restored = TunerKeeper.restore(store, config.tuner)
    assert restored.tuner.proposed[pid1] == restored.tuner.from_parameters(other)
    assert [reward for _, reward in restored.tuner.history] == [0.5]
    assert restored.next_parameter_id == 2  # committed with each turn, not re-counted by replay


def test_a_failing_or_invalid_tuner_is_a_tuner_failure(tmp_path: Path) -> None:
    store, _, keeper = _keeper(tmp_path)
    keeper.tuner.generate_parameters = lambda pid, **kw: {"nonsense": {"_idx": 0}}
    with pytest.raises(TunerFailedError, match="proposed invalid parameters"):
        keeper.ask()

    def broken(*a, **k):
        raise ValueError("tuner bug")

    keeper.tuner.trial_end = broken
    with pytest.raises(TunerFailedError, match="the tuner failed: ValueError: tuner bug"):
        keeper.tell(0, {}, False, None)
    assert keeper.next_parameter_id == 0  # nothing was proposed


def test_decoding_parameters_gives_the_internal_form(tmp_path: Path) -> None:
    _, _, keeper = _keeper(tmp_path)
    _, params = keeper.ask()
    chosen = spaces.decode_parameters(keeper.space, params)
    assert spaces.parameters_from_indices(keeper.space, chosen) == params
    multi_hot = spaces.to_multi_hot(keeper.space, chosen)
    assert multi_hot == spaces.parse_parameters(keeper.space, params)
    assert all(isinstance(chosen[k], int if isinstance(s, spaces.LayerChoiceSpec) else tuple)
               for k, s in keeper.space.items())  # fmt: skip
