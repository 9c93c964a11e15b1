"""The manager's loop on the in-process fake training service: no subprocess, so each test runs
in a fraction of a second while exercising the real store, tuner, ledger and loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nascli import channel
from nascli.experiment.manager import Manager
from nascli.experiment.services.fake import FakeCluster, FakeRun, FakeTrainingService
from nascli.experiment.store import ExperimentStore
from tests.experiments import failing_tuner, make_experiment


def quick(
    crash: tuple[int, ...] = (), sleep: float = 0.0, final: bool = True, seen: dict | None = None
) -> Callable[[FakeRun], int]:
    """A fake trial like tests/e2e/trials/quick_trial.py: its score is the sum of its indices."""

    def program(run: FakeRun) -> int:
        trial_dir = run.spec.trial_dir
        _, params, _ = channel.read_parameters(trial_dir)
        seq = int(run.spec.env["NASCLI_TRIAL_SEQ"])
        if seen is not None:
            seen[seq] = dict(run.spec.env)
        score = sum(p["_idx"] if isinstance(p["_idx"], int) else sum(p["_idx"])
                    for p in params.values())  # fmt: skip
        channel.append_metric(trial_dir, channel.INTERMEDIATE, score / 2)
        if seq in crash:
            raise RuntimeError(f"trial {seq} crashes on purpose")
        if sleep and not run.sleep(sleep):
            return 0
        if final:
            channel.append_metric(trial_dir, channel.FINAL, {"default": float(score), "seq": seq})
        return 0

    return program


def manager(store: ExperimentStore, program, cluster: FakeCluster | None = None, **kw) -> Manager:
    def service(inbox):
        return FakeTrainingService(inbox, program, cluster)

    return Manager(store, service=service, tick=0.05, kill_grace=1.0, **kw)


def run(store: ExperimentStore, program, **kw) -> str:
    return manager(store, program, **kw).run(handle_signals=False)


def in_thread(m: Manager) -> tuple[threading.Thread, list[str]]:
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(m.run(handle_signals=False)))
    thread.start()
    return thread, result


def stop_once_two_run(store: ExperimentStore, m: Manager) -> list[str]:
    """Run ``m`` until two trials run, then stop it; its result (the manager always ends)."""
    thread, result = in_thread(m)
    try:
        reader = ExperimentStore(store.dir)
        wait_for(lambda: len(reader.trials(["RUNNING"])) == 2)
    finally:
        m.request_stop()
        thread.join(timeout=15)
    return result


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_whole_experiment(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=10)
    seen: dict[int, dict] = {}
    start = time.monotonic()
    assert run(store, quick(seen=seen)) == "DONE"
    assert time.monotonic() - start < 5
    trials = store.trials()
    assert [t.status for t in trials] == ["SUCCEEDED"] * 10
    assert all(t.final["seq"] == t.seq and t.exit_code == 0 for t in trials)
    assert [m[2] for m in store.metrics("0")] == ["PERIODICAL", "FINAL"]
    assert seen[0]["NASCLI_PLATFORM"] == "fake" and seen[3]["NASCLI_TRIAL_ID"] == "3"
    exp = store.experiment()
    assert exp.reason == "maxTrialNum 10 reached" and exp.next_parameter_id == 10
    assert len(exp.tuner_state["history"]) == 10 and exp.manager_pid is None


def test_a_crashing_trial_fails_with_its_reason_and_is_retried(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=3, maxTrialRetries=1)
    assert run(store, quick(crash=(1,))) == "DONE"
    trials = {t.id: t for t in store.trials()}
    assert trials["1"].status == "FAILED" and trials["1"].exit_code == 1
    assert "exit code 1; stderr: RuntimeError: trial 1 crashes on purpose" == trials["1"].reason
    retry = next(t for t in trials.values() if t.attempt == 2)
    assert retry.parameters == trials["1"].parameters and retry.status == "SUCCEEDED"
    assert len(store.experiment().tuner_state["history"]) == 3
    assert any(e[2] == "retry" for e in store.events())


def test_no_final_result_fails_and_all_failed_is_an_error(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=2)
    assert run(store, quick(final=False)) == "ERROR"
    assert store.experiment().reason == "all 2 trial(s) failed (see `nascli trial ls`)"
    assert all("without reporting a final result" in t.reason for t in store.trials())


def test_stop_cancels_running_and_pending_trials(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=20)
    assert stop_once_two_run(store, manager(store, quick(sleep=30))) == ["STOPPED"]
    assert {t.status for t in store.trials()} == {"USER_CANCELED"}
    assert store.experiment().reason == "stopped by the user"


def test_the_time_budget_cancels_running_trials(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxExecDuration="1s")
    assert run(store, quick(sleep=30)) == "DONE"
    assert {(t.status, t.reason) for t in store.trials()} == {
        ("USER_CANCELED", "maxExecDuration reached")
    }
    assert store.experiment().reason == "maxExecDuration 1 s reached"


def test_an_early_stop_is_recorded_before_the_trial_is_signalled(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=4)
    seen_when_signalled: list[str] = []
    slow_then_fast = quick(sleep=0.3)

    def program(run: FakeRun) -> int:
        if run.spec.trial_id != "0":
            return slow_then_fast(run)
        channel.append_metric(run.spec.trial_dir, channel.INTERMEDIATE, 0.1)
        if not run.sleep(30):  # signalled: what does the store say by now?
            seen_when_signalled.append(ExperimentStore(store.dir).trial("0").status)
        return 0

    def assess(trial, new) -> str | None:
        assert all(r.type == "PERIODICAL" for r in new)
        return "below the median at step 0" if trial.id == "0" else None

    assert run(store, program, assess=assess) == "DONE"
    t0 = store.trial("0")
    assert (t0.status, t0.reason) == ("EARLY_STOPPED", "below the median at step 0")
    assert t0.ended is not None and t0.exit_code is not None and t0.final is None
    assert seen_when_signalled == ["EARLY_STOPPED"]
    assert [t.status for t in store.trials()[1:]] == ["SUCCEEDED"] * 3
    # the tuner heard of its end (not of a result), like of any unsuccessful trial
    assert store.experiment().tuner_state["proposed"] == []
    assert len(store.experiment().tuner_state["history"]) == 3


def test_a_stopped_experiment_resumes_with_its_budget_and_tuner(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=8)
    assert stop_once_two_run(store, manager(store, quick(sleep=30))) == ["STOPPED"]
    assert run(store, quick()) == "DONE"
    trials = store.trials()
    assert store.experiment().next_parameter_id == 8
    assert sum(t.status == "SUCCEEDED" for t in trials) == 6  # the budget left after 2 cancelled
    assert len({t.parameter_id for t in trials}) == 8
    assert any(e[3].startswith("resumed") for e in store.events(200))


def test_a_tuner_failure_ends_the_experiment_in_error(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, tuner=failing_tuner(tmp_path))
    assert run(store, quick()) == "ERROR"
    assert store.experiment().reason == "the tuner failed: ValueError: tuner bug"
    assert all(t.terminal for t in store.trials()) and len(store.trials()) <= 2


@pytest.mark.parametrize("ahead_below, expect_ahead", [(1.0, True), (0.0, False)])
def test_proposals_ahead_only_for_short_trials(
    tmp_path: Path, ahead_below: float, expect_ahead: bool
) -> None:
    store = make_experiment(tmp_path, maxTrialNum=12)
    m = manager(store, quick(sleep=0.02), ahead_below=ahead_below)
    prepared: list[str] = []
    mark = m.ahead.prepared
    m.ahead.prepared = lambda trial_id: (prepared.append(trial_id), mark(trial_id))[-1]
    assert m.run(handle_signals=False) == "DONE"
    trials = store.trials()
    assert [t.status for t in trials] == ["SUCCEEDED"] * 12  # exactly the budget, none left
    assert bool(prepared) == expect_ahead
    for trial_id in prepared:  # proposed while both slots were busy, started once one freed
        trial = store.trial(trial_id)
        assert trial.started is not None and trial.created < trial.started
