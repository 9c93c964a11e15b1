"""The manager in-process, with real trial subprocesses (tests/e2e/trials/quick_trial.py)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from nascli.experiment.manager import Manager
from nascli.experiment.report import experiment_summary
from nascli.experiment.store import ExperimentStore
from tests.experiments import failing_tuner, make_experiment
from tests.fake_gpus import install, path_with
from tests.helpers import pid_alive


def run(store: ExperimentStore, **kw) -> str:
    return Manager(store, tick=0.1, kill_grace=2.0, **kw).run(handle_signals=False)


def env_of(store: ExperimentStore, trial_id: str) -> dict:
    return json.loads((store.trial_paths(trial_id).dir / "env.json").read_text())


def test_full_experiment(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    assert run(store) == "DONE"
    exp = store.experiment()
    assert exp.reason == "maxTrialNum 6 reached" and exp.next_parameter_id == 6
    trials = store.trials()
    assert [t.status for t in trials] == ["SUCCEEDED"] * 6
    for t in trials:
        files = {p.name for p in store.trial_paths(t.id).dir.iterdir()}
        assert {"parameter.json", "metrics.jsonl", "stdout", "stderr", "exit"} <= files
        kinds = [m[2] for m in store.metrics(t.id)]
        assert kinds == ["PERIODICAL", "FINAL"]
        assert t.final["seq"] == t.seq and t.exit_code == 0
        env = env_of(store, t.id)
        assert env["NASCLI_TRIAL_ID"] == t.id and env["NASCLI_EXP_ID"] == store.id
        assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
        assert env["CUDA_VISIBLE_DEVICES"] is None  # gpuNum unset: environment untouched
    summary = experiment_summary(store)
    assert summary["trials"]["SUCCEEDED"] == 6
    best = max(trials, key=lambda t: t.final["default"])
    assert summary["best"]["metric"]["default"] == best.final["default"]
    assert exp.tuner_state is not None and len(exp.tuner_state["history"]) == 6
    assert exp.manager_pid is None and exp.ended is not None


def test_crashing_and_garbage_printing_trials_are_recorded_and_the_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUICK_TRIAL_CRASH_SEQ", "1")
    monkeypatch.setenv("QUICK_TRIAL_GARBAGE", "1")
    store = make_experiment(tmp_path)
    # A torn and a garbage line in one trial's metric file must be skipped, not fatal.
    assert run(store) == "DONE"
    failed = store.trials(["FAILED"])
    assert [t.id for t in failed] == ["1"]
    assert failed[0].exit_code == 1
    assert "exit code 1" in failed[0].reason
    assert "RuntimeError: trial 1 crashes on purpose" in failed[0].reason
    assert [m[2] for m in store.metrics("1")] == ["PERIODICAL"]  # kept what it reported
    assert store.status_counts()["SUCCEEDED"] == 5
    assert {t.bad_metric_lines for t in store.trials()} == {2}
    assert store.experiment().tuner_state["proposed"] == []


def test_failed_trials_are_retried_with_the_same_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUICK_TRIAL_CRASH_SEQ", "1")
    store = make_experiment(tmp_path, maxTrialRetries=1, maxTrialNum=3)
    assert run(store) == "DONE"
    trials = {t.id: t for t in store.trials()}
    assert len(trials) == 4  # 3 proposals + 1 retry
    retry = next(t for t in trials.values() if t.attempt == 2)
    assert retry.parameter_id == trials["1"].parameter_id
    assert retry.parameters == trials["1"].parameters
    assert retry.status == "SUCCEEDED" and trials["1"].status == "FAILED"
    # The tuner heard of parameter 1 once, with the retry's result.
    assert len(store.experiment().tuner_state["history"]) == 3


def test_all_trials_failing_ends_in_error(tmp_path: Path) -> None:
    store = make_experiment(
        tmp_path, maxTrialNum=3, trial={"command": f"{sys.executable} -c 'import sys; sys.exit(3)'"}
    )
    assert run(store) == "ERROR"
    assert store.experiment().reason == "all 3 trial(s) failed (see `nascli trial ls`)"
    assert all("exit code 3" in t.reason for t in store.trials())


def test_exit_zero_without_a_final_result_is_a_failure(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=1, trial={"command": "true"})
    assert run(store) == "ERROR"
    assert "without reporting a final result" in store.trials()[0].reason


def test_grid_search_ends_when_the_tuner_runs_out(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=100, tuner={"builtinTunerName": "GridSearch"})
    assert run(store) == "DONE"
    assert store.experiment().reason == "the tuner has no more architectures to propose"
    trials = store.trials()
    assert len(trials) == 36  # 4 x 3 x 3
    assert len({json.dumps(t.parameters, sort_keys=True) for t in trials}) == 36


def test_time_budget_cancels_running_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUICK_TRIAL_SLEEP", "60")
    store = make_experiment(tmp_path, maxExecDuration="2s")
    start = time.monotonic()
    assert run(store) == "DONE"
    assert time.monotonic() - start < 20
    trials = store.trials()
    assert len(trials) == 2
    assert {t.status for t in trials} == {"USER_CANCELED"}
    assert {t.reason for t in trials} == {"maxExecDuration reached"}
    assert store.experiment().reason == "maxExecDuration 2 s reached"


def test_stop_cancels_trials_and_their_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUICK_TRIAL_SLEEP", "60")
    monkeypatch.setenv("QUICK_TRIAL_CHILD", "1")
    store = make_experiment(tmp_path)
    manager = Manager(store, tick=0.1, kill_grace=2.0)
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(manager.run(handle_signals=False)))
    thread.start()
    child_pids = []
    try:
        deadline = time.monotonic() + 20
        while len(child_pids) < 2 and time.monotonic() < deadline:
            child_pids = [
                int(p.read_text()) for p in store.dir.glob("trials/*/child.pid") if p.read_text()
            ]
            time.sleep(0.05)
        assert len(child_pids) == 2
        # each running trial's identity (pid + start time) gets recorded, for adoption on resume
        reader = ExperimentStore(store.dir)
        while not all(t.pid_token for t in reader.trials()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(t.pid and t.pid_token for t in reader.trials())
    finally:  # whatever happened, the trials (sleeping 60 s) end with the test
        asked = time.monotonic()
        manager.request_stop()
        thread.join(timeout=30)
    assert result == ["STOPPED"]
    # trials that end on SIGTERM are not held for the whole kill grace (2 s): their exits are
    # reaped while the manager waits
    assert time.monotonic() - asked < 1.0
    assert {t.status for t in store.trials()} == {"USER_CANCELED"}
    for pid in child_pids:
        assert not pid_alive(pid), f"grandchild {pid} survived the stop"


def test_each_concurrent_trial_gets_its_own_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_with(install(tmp_path / "bin")))
    monkeypatch.setenv("QUICK_TRIAL_SLEEP", "0.5")
    store = make_experiment(tmp_path, trialConcurrency=4, maxTrialNum=4, trial={"gpuNum": 1})
    assert run(store) == "DONE"
    trials = store.trials()
    visible = [env_of(store, t.id)["CUDA_VISIBLE_DEVICES"] for t in trials]
    assert [str(t.gpus[0]) for t in trials] == visible
    assert sorted(visible[:3]) == ["0", "1", "3"]  # GPU 2 is busy with a foreign process
    assert visible[3] in {"0", "1", "3"}
    fourth, first_three = trials[3], trials[:3]
    assert fourth.started >= min(t.ended for t in first_three)  # it waited for a free GPU
    waits = [e for e in store.events(200) if e[2] == "waiting"]
    assert waits and "GPU2 busy" in waits[0][3] and "GPU0 full" in waits[0][3]


def test_gpu_num_zero_hides_gpus(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=1, trial={"gpuNum": 0})
    assert run(store) == "DONE"
    assert env_of(store, "0")["CUDA_VISIBLE_DEVICES"] == ""


def test_a_failing_tuner_ends_the_experiment_in_error(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, tuner=failing_tuner(tmp_path))
    assert run(store) == "ERROR"
    exp = store.experiment()
    assert exp.reason == "the tuner failed: ValueError: tuner bug"
    # No new trial after the failure; the ones already running finished and were recorded.
    assert all(t.terminal for t in store.trials())
    assert len(store.trials()) <= 2


def _proposed_ahead(store: ExperimentStore) -> list[str]:
    """Trials whose proposal was made before the exit that freed their slot: created before
    the latest trial end preceding their start."""
    trials = store.trials()
    ends = sorted(t.ended for t in trials if t.ended)
    ahead = []
    for t in trials:
        before = [e for e in ends if e <= t.started]
        if before and t.created < before[-1]:
            ahead.append(t.id)
    return ahead


def test_short_trials_get_their_proposal_ready_ahead(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=12)
    assert run(store) == "DONE"
    trials = store.trials()
    assert [t.status for t in trials] == ["SUCCEEDED"] * 12  # exactly the budget, none left
    assert len({t.parameter_id for t in trials}) == 12
    assert _proposed_ahead(store), "no trial was proposed ahead although trials are short"
    history = store.experiment().tuner_state["history"]
    assert len(history) == 12  # the tuner heard of every trial, the ahead ones included


def test_long_trials_are_proposed_only_when_a_slot_frees(tmp_path: Path) -> None:
    store = make_experiment(tmp_path, maxTrialNum=8)
    # the same quick trials, but counted as long: no proposal before a slot frees
    assert run(store, ahead_below=0.01) == "DONE"
    assert [t.status for t in store.trials()] == ["SUCCEEDED"] * 8
    assert _proposed_ahead(store) == []


def test_stop_cancels_a_trial_proposed_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # trials 0-3 are quick (so the next proposal is made ahead), 4 and later sleep
    monkeypatch.setenv("QUICK_TRIAL_SLEEP", "30")
    monkeypatch.setenv("QUICK_TRIAL_SLEEP_FROM", "4")
    store = make_experiment(tmp_path, maxTrialNum=20)
    manager = Manager(store, tick=0.1, kill_grace=2.0)
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(manager.run(handle_signals=False)))
    thread.start()
    try:
        reader = ExperimentStore(store.dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            reader.trials(["WAITING"]) and len(reader.trials(["RUNNING"])) == 2
        ):
            time.sleep(0.01)
        waiting = [t.id for t in reader.trials(["WAITING"])]
        assert waiting, "no proposal was made ahead"
    finally:  # whatever happened, the trials (sleeping 30 s) end with the test
        manager.request_stop()
        thread.join(timeout=30)
    assert result == ["STOPPED"]
    trials = {t.id: t for t in store.trials()}
    assert {t.status for t in trials.values()} <= {"SUCCEEDED", "USER_CANCELED"}
    for tid in waiting:
        assert trials[tid].status == "USER_CANCELED" and trials[tid].started is None


def test_a_failing_observer_does_not_end_the_experiment(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)

    def broken_display(_ended: list) -> None:
        raise RuntimeError("terminal went away")

    assert run(store, observer=broken_display) == "DONE"
    assert [t.status for t in store.trials()] == ["SUCCEEDED"] * 6
    assert "terminal went away" in store.manager_log.read_text()


def test_without_pidfds_exits_are_seen_by_waiting_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kernels older than 5.3 (or no os.pidfd_open): one waiting thread per trial reports exits
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    store = make_experiment(tmp_path, maxTrialNum=6)
    assert run(store) == "DONE"
    assert [t.status for t in store.trials()] == ["SUCCEEDED"] * 6
