"""The trial state machine: the transition table, its one writer, and what illegal changes do."""

from __future__ import annotations

from pathlib import Path

import pytest

from nascli.errors import IllegalTransitionError
from nascli.experiment.store import TERMINAL_TRIAL_STATUSES, ExperimentStore
from nascli.experiment.trials import (
    EXPERIMENT_TRANSITIONS,
    LIVE_EXPERIMENT,
    TRIAL_TRANSITIONS,
    ExperimentStatus,
    Ledger,
    TrialStatus,
    judge_exit,
)
from tests.experiments import make_experiment


@pytest.fixture
def store(tmp_path: Path) -> ExperimentStore:
    store = make_experiment(tmp_path)
    yield store
    store.close()


def _trial(store: ExperimentStore, tid: str = "0") -> None:
    with store.transaction():
        store.add_trial(tid, int(tid), int(tid), {"a": {"_value": "x", "_idx": 0}})


def test_stored_texts_are_unchanged() -> None:
    assert [s.value for s in TrialStatus] == [
        "WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED",
    ]  # fmt: skip
    assert [s.value for s in ExperimentStatus] == [
        "RUNNING", "NO_MORE_TRIAL", "DONE", "STOPPED", "ERROR",
    ]  # fmt: skip
    assert TrialStatus.RUNNING == "RUNNING" and str(TrialStatus.EARLY_STOPPED) == "EARLY_STOPPED"
    assert TERMINAL_TRIAL_STATUSES == {"SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED"}
    # stored texts (as readers get them) are found in the enum sets
    assert "NO_MORE_TRIAL" in LIVE_EXPERIMENT and "DONE" not in LIVE_EXPERIMENT


def test_the_table_covers_every_status_and_ended_trials_stay_ended() -> None:
    assert set(TRIAL_TRANSITIONS) == set(TrialStatus)
    assert set(EXPERIMENT_TRANSITIONS) == set(ExperimentStatus)
    for status in TERMINAL_TRIAL_STATUSES:
        assert TRIAL_TRANSITIONS[TrialStatus(status)] == frozenset()
    assert TrialStatus.EARLY_STOPPED in TRIAL_TRANSITIONS[TrialStatus.RUNNING]
    assert TrialStatus.EARLY_STOPPED not in TRIAL_TRANSITIONS[TrialStatus.WAITING]


def test_a_trial_lives_through_launch_and_finish(store: ExperimentStore) -> None:
    _trial(store)
    ledger = Ledger(store)
    with store.transaction():
        ledger.launch("0", 4242, "tok", 10.0, [1])
    t = store.trial("0")
    assert (t.status, t.pid, t.pid_token, t.started, t.gpus) == ("RUNNING", 4242, "tok", 10.0, [1])
    with store.transaction():
        ledger.finish("0", TrialStatus.SUCCEEDED, None, 12.0, 0, {"default": 0.5},
                      metrics_offset=99, bad_metric_lines=1)  # fmt: skip
    t = store.trial("0")
    assert (t.status, t.final, t.ended) == ("SUCCEEDED", {"default": 0.5}, 12.0)
    assert t.metrics_offset == 99


def test_early_stop_records_the_verdict_and_its_reason(store: ExperimentStore) -> None:
    _trial(store)
    ledger = Ledger(store)
    with store.transaction():
        ledger.launch("0", 1, None, 1.0, None)
        ledger.early_stop("0", "Medianstop: below the median at step 3")
    t = store.trial("0")
    assert t.status == "EARLY_STOPPED" and t.reason == "Medianstop: below the median at step 3"
    assert t.terminal
    events = [e for e in store.events() if e[2] == "early_stopped"]
    assert events and "below the median" in events[0][3]


@pytest.mark.parametrize(
    "steps, illegal",
    [
        ([], "finish_success"),  # WAITING -> SUCCEEDED: it never ran
        ([], "early_stop"),  # WAITING -> EARLY_STOPPED: nothing to assess
        (["launch"], "launch"),  # RUNNING -> RUNNING
        (["launch", "finish_success"], "cancel"),  # an ended trial stays ended
        (["launch", "early_stop"], "finish_success"),  # a verdict is not overwritten
        (["fail"], "launch"),  # FAILED -> RUNNING: a retry is a new trial
    ],
)
def test_an_illegal_transition_raises_and_changes_nothing(
    store: ExperimentStore, steps: list[str], illegal: str
) -> None:
    _trial(store)
    ledger = Ledger(store)
    actions = {
        "launch": lambda: ledger.launch("0", 1, None, 1.0, None),
        "finish_success": lambda: ledger.finish("0", TrialStatus.SUCCEEDED, None, 2.0, 0, 1.0),
        "early_stop": lambda: ledger.early_stop("0", "assessor"),
        "cancel": lambda: ledger.cancel("0", "by the user"),
        "fail": lambda: ledger.fail("0", "could not start"),
    }
    for step in steps:
        with store.transaction():
            actions[step]()
    before = store.trial("0")
    with pytest.raises(IllegalTransitionError, match="trial 0: .* is not a transition"):
        with store.transaction():
            actions[illegal]()
    assert store.trial("0") == before


def test_only_a_failed_trial_is_retried(store: ExperimentStore) -> None:
    _trial(store)
    ledger = Ledger(store)
    with pytest.raises(IllegalTransitionError):
        ledger.retry(store.trial("0"), 1, 2)
    with store.transaction():
        ledger.fail("0", "could not start")
        retried = ledger.retry(store.trial("0"), 1, 2)
    assert (retried.status, retried.attempt, retried.parameter_id) == ("WAITING", 2, 0)


def test_statuses_change_only_through_the_ledger(store: ExperimentStore) -> None:
    _trial(store)
    with pytest.raises(ValueError, match="status"):
        store.update_trial("0", status="SUCCEEDED")
    with pytest.raises(ValueError, match="status"):
        store.update_experiment(status="DONE")
    with pytest.raises(ValueError, match="not settable"):
        store.update_trial("0", **{"reason = 'x', status": "SUCCEEDED"})


def test_experiment_transitions(store: ExperimentStore) -> None:
    ledger = Ledger(store)
    with store.transaction():
        ledger.no_more_trials("maxTrialNum 6 reached")
        ledger.end_experiment(ExperimentStatus.DONE, "maxTrialNum 6 reached")
    assert store.experiment().status == "DONE"
    with pytest.raises(IllegalTransitionError, match="DONE -> NO_MORE_TRIAL"):
        ledger.no_more_trials("again")
    with store.transaction():
        ledger.end_experiment(ExperimentStatus.STOPPED, "stopped by the user")
    with pytest.raises(IllegalTransitionError, match="STOPPED -> DONE"):
        ledger.end_experiment(ExperimentStatus.DONE, None)


def test_judge_exit(tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    err.write_text("Traceback\nValueError: bad\n\n")
    assert judge_exit(0, 1.0, None, err) == (TrialStatus.SUCCEEDED, None)
    assert judge_exit(0, 1.0, "cancelled by the user", err)[0] == TrialStatus.USER_CANCELED
    status, reason = judge_exit(-9, None, None, err)
    assert status == TrialStatus.FAILED and reason == "killed by SIGKILL; stderr: ValueError: bad"
    assert "without reporting a final result" in judge_exit(0, None, None, err)[1]
    assert judge_exit(3, None, None, tmp_path / "missing")[1] == "exit code 3; stderr was empty"
