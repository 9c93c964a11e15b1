"""Regression tests for what an adversarial run broke (issue 12) that need a real manager and
real trials (``tests/e2e/trials/hostile_trial.py``): bad trial output, start-up races, a stuck
manager, escaped descendants, delete with live trials, a crash between launch and record,
very short experiments, symlinks in the experiment directory."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nascli.cli.main import app
from nascli.errors import UsageError
from nascli.experiment.control import start_manager, stop_experiment
from nascli.experiment.manager import Manager
from nascli.experiment.store import ExperimentStore, list_experiment_dirs
from tests.experiments import TRIALS, make_experiment
from tests.helpers import PYTHON, REPO, pid_alive, trial_processes, wait_for

try:
    from nascli.experiment import containment
except ImportError:  # the code before issue 12, which these tests must fail on
    containment = None  # type: ignore[assignment]

sys.path.insert(0, str(TRIALS))
from hostile_trial import bad_lines  # noqa: E402


def hostile(tmp_path: Path, mode: str, sleep: float = 0, **overrides: Any) -> ExperimentStore:
    """An experiment whose trials run hostile_trial.py in ``mode``."""
    command = f"HOSTILE_MODE={mode} HOSTILE_SLEEP={sleep} {PYTHON} hostile_trial.py"
    overrides.setdefault("trialConcurrency", 1)
    overrides.setdefault("maxTrialNum", 1)
    return make_experiment(tmp_path, trial={"command": command, "codeDir": str(TRIALS)},
                           **overrides)  # fmt: skip


def run(store: ExperimentStore, **kw: Any) -> str:
    return Manager(store, tick=0.1, kill_grace=1.0, **kw).run(handle_signals=False)




def escaped_pids(store: ExperimentStore) -> list[int]:
    return [
        int(x) for p in store.dir.glob("trials/*/escaped.pids") for x in p.read_text().split()
    ]


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Whatever a test did, its experiments' managers, trials and escapees end with it."""
    yield
    for exp_dir in list_experiment_dirs():
        store = ExperimentStore(exp_dir)
        for pid in escaped_pids(store):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if store.experiment().status in ("RUNNING", "NO_MORE_TRIAL") or store.trials(["RUNNING"]):
            try:
                stop_experiment(store, grace=0.5, timeout=10.0)
            except Exception:  # noqa: BLE001 - best effort; the escapees are killed above
                pass


# ------------------------------------------------------------------ 1: bad metric lines


def test_every_kind_of_bad_metric_line_is_skipped_and_the_trial_succeeds(tmp_path: Path) -> None:
    store = hostile(tmp_path, "bad_lines,report")
    assert run(store) == "DONE"
    (trial,) = store.trials()
    assert trial.status == "SUCCEEDED" and trial.final == 0.0
    assert trial.bad_metric_lines == len(bad_lines())


def test_a_final_result_behind_a_line_longer_than_two_reads_is_not_lost(tmp_path: Path) -> None:
    # The trial writes it all and exits at once: the manager reads it after the exit, and
    # must read on past the huge line (its reads are bounded) to the final result.
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(
        "import os, nascli\n"
        "with open(os.path.join(os.environ['NASCLI_TRIAL_DIR'], 'metrics.jsonl'), 'ab') as f:\n"
        "    f.write(b'y' * (10 << 20) + b'\\n')\n"
        "nascli.report_final_result(0.5)\n"
    )
    store = make_experiment(
        tmp_path, trial={"command": f"{PYTHON} trial.py", "codeDir": str(code)},
        trialConcurrency=1, maxTrialNum=1,
    )  # fmt: skip
    assert run(store) == "DONE"
    (trial,) = store.trials()
    assert trial.status == "SUCCEEDED" and trial.final == 0.5, trial.reason
    assert trial.bad_metric_lines >= 1


# ------------------------------------------------------------------ 2: stop during start-up


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.08, 0.15, 0.3])
def test_a_stop_during_start_up_wins(tmp_path: Path, delay: float) -> None:
    store = hostile(tmp_path, "sleep,report", sleep=30)
    # as `create` does: the experiment exists, then starts (the code before issue 12 had no
    # start requests)
    token = getattr(store, "pending_start", lambda: None)()
    given = {"token": token} if token else {}
    outcome: list[Any] = []

    def start() -> None:
        try:
            outcome.append(start_manager(ExperimentStore(store.dir), **given))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    time.sleep(delay)
    stop_experiment(ExperimentStore(store.dir), grace=0.5, timeout=20)
    starter.join(30)
    time.sleep(1.0)  # a manager that started anyway would have written RUNNING by now
    exp = ExperimentStore(store.dir).experiment()
    assert exp.status == "STOPPED", (exp.status, outcome)
    assert not ExperimentStore(store.dir).trials(["RUNNING", "WAITING"])
    assert not trial_processes(store.dir)
    assert not store.manager_running()


# ------------------------------------------------------------------ 3: a stuck manager


def test_stop_ends_a_manager_whose_trial_swapped_its_metrics_for_a_fifo(tmp_path: Path) -> None:
    store = hostile(tmp_path, "fifo", sleep=60)
    start_manager(store)
    wait_for(lambda: list(store.dir.glob("trials/*/metrics.jsonl")), what="the FIFO")
    time.sleep(1.0)  # the manager's tick reads the trial's files
    started = time.monotonic()
    stop_experiment(ExperimentStore(store.dir), grace=0.5, timeout=10)
    assert time.monotonic() - started < 15
    exp = ExperimentStore(store.dir).experiment()
    assert exp.status == "STOPPED" and not store.manager_running()
    assert not trial_processes(store.dir)


# ------------------------------------------------------------------ 4: unbounded reads


def test_a_huge_stderr_costs_the_manager_no_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_STDERR_MB", "400")
    store = hostile(tmp_path, "huge_stderr")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert run(store) == "ERROR"  # its only trial failed
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    (trial,) = store.trials()
    assert trial.status == "FAILED" and trial.reason.endswith("the last line of a huge stderr")
    assert grown_mb < 100, f"the manager grew by {grown_mb:.0f} MB reading a 400 MB stderr"


def test_metrics_linked_to_dev_zero_fail_the_trial_not_the_manager(tmp_path: Path) -> None:
    store = hostile(tmp_path, "devzero", sleep=0.5)
    assert run(store) == "ERROR"
    (trial,) = store.trials()
    assert trial.status == "FAILED" and trial.exit_code == 1
    assert store.experiment().reason.startswith("all 1 trial(s) failed")


# ------------------------------------------------------------------ 6: escaped descendants


@pytest.fixture(params=["cgroup", "environment tag"])
def tracking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if containment is None:
        return str(request.param)
    monkeypatch.setattr(containment, "_base_cache", [])
    if request.param == "cgroup":
        if containment.cgroup_base() is None:
            pytest.skip("no writable cgroup v2 here: trials are tracked by their environment tag")
    else:
        monkeypatch.setenv("NASCLI_NO_CGROUP", "1")
    return str(request.param)


def test_escaped_descendants_end_with_their_trial(tmp_path: Path, tracking: str) -> None:
    store = hostile(tmp_path, "escape,report")
    assert run(store) == "DONE"
    pids = escaped_pids(store)
    assert len(pids) == 2
    wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "the escapees to end")


def test_escaped_descendants_end_with_a_stop(tmp_path: Path, tracking: str) -> None:
    store = hostile(tmp_path, "escape,sleep,report", sleep=60)
    manager = Manager(store, tick=0.1, kill_grace=1.0)
    thread = threading.Thread(target=lambda: manager.run(handle_signals=False))
    thread.start()
    try:
        pids = wait_for(lambda: len(escaped_pids(store)) >= 2 and escaped_pids(store))
        assert all(pid_alive(p) for p in pids)
    finally:
        manager.request_stop()
        thread.join(30)
    wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "the escapees to end")


def test_escapees_that_scrub_their_environment_are_found_by_the_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if containment is not None:
        monkeypatch.setattr(containment, "_base_cache", [])
    if containment is not None and containment.cgroup_base() is None:
        pytest.skip("no writable cgroup v2 here: a scrubbed environment escapes the tag")
    store = hostile(tmp_path, "scrub,report")
    assert run(store) == "DONE"
    pids = escaped_pids(store)
    assert len(pids) == 2
    wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "the escapees to end")


def test_an_ended_experiment_leaves_no_cgroup_behind(tmp_path: Path, tracking: str) -> None:
    store = hostile(tmp_path, "report", maxTrialNum=5)
    assert run(store) == "DONE"
    recorded = store.dir / "trials.cgroup"
    if tracking == "cgroup":
        assert recorded.exists()  # the trials ran in the experiment's cgroup
        wait_for(lambda: not Path(recorded.read_text().strip()).exists(), 5,
                 "the experiment's cgroup to be removed")  # fmt: skip
    else:
        assert not recorded.exists()


def test_stop_after_a_manager_kill_ends_the_escapees_too(tmp_path: Path) -> None:
    store = hostile(tmp_path, "escape,sleep,report", sleep=60)
    manager_pid = start_manager(store)
    pids = wait_for(lambda: len(escaped_pids(store)) >= 2 and escaped_pids(store))
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), 5)
    stop_experiment(ExperimentStore(store.dir), grace=0.5, timeout=10)
    wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "the escapees to end")
    assert ExperimentStore(store.dir).experiment().status == "STOPPED"


# ------------------------------------------------------------------ 7: delete with live trials


def test_delete_is_refused_while_trials_outlive_their_manager(tmp_path: Path) -> None:
    store = hostile(tmp_path, "sleep,report", sleep=60)
    manager_pid = start_manager(store)
    wait_for(lambda: ExperimentStore(store.dir).trials(["RUNNING"]), what="a running trial")
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), 5)
    result = CliRunner().invoke(app, ["experiment", "delete", store.id, "--yes"])
    assert result.exit_code == 2, result.output
    assert "nascli stop" in result.output and store.dir.is_dir()
    from nascli.experiment.control import delete_experiment

    with pytest.raises(UsageError):
        delete_experiment(ExperimentStore(store.dir))
    stop_experiment(ExperimentStore(store.dir), grace=0.5)
    assert delete_experiment(ExperimentStore(store.dir)) == store.dir
    assert not store.dir.exists()


# ------------------------------------------------------------------ 9: launch idempotent


def crash_right_after_launch(tmp_path: Path, patch: str = "") -> tuple[ExperimentStore, Path]:
    """A one-trial experiment whose manager (with ``patch`` run first) dies right after its
    trial's launch, before recording it; the trial appends its id to the returned file."""
    counter = tmp_path / "runs"
    store = hostile(tmp_path, "counter,sleep,report", sleep=1.0)
    crash = (
        "import os\n"
        "from nascli.experiment.manager import Manager\n"
        "from nascli.experiment.store import ExperimentStore\n"
        + patch
        + "Manager._record_started = lambda self, trial, proc: os._exit(9)\n"
        f"Manager(ExperimentStore({str(store.dir)!r}), tick=0.1).run()\n"
    )
    env = dict(os.environ, HOSTILE_COUNTER=str(counter), PYTHONPATH=str(REPO))
    crashed = subprocess.run([PYTHON, "-c", crash], env=env, timeout=60, cwd=tmp_path)
    assert crashed.returncode == 9
    return store, counter


def resume_counting(store: ExperimentStore, counter: Path) -> None:
    os.environ["HOSTILE_COUNTER"] = str(counter)
    try:
        assert run(ExperimentStore(store.dir)) == "DONE"
    finally:
        del os.environ["HOSTILE_COUNTER"]


def test_a_crash_between_launch_and_record_does_not_run_the_trial_twice(tmp_path: Path) -> None:
    store, counter = crash_right_after_launch(tmp_path)
    assert ExperimentStore(store.dir).trials()[0].status == "WAITING"  # its pid was not recorded
    resume_counting(store, counter)
    (trial,) = ExperimentStore(store.dir).trials()
    assert trial.status == "SUCCEEDED"
    assert counter.read_text().split() == [trial.id]  # it ran once


def test_a_launcher_slow_to_write_its_marker_is_adopted_not_run_again(tmp_path: Path) -> None:
    # The manager dies right after starting the launcher, which has not written its launch
    # marker yet when the next manager looks (here: it sleeps first).
    slow_launcher = (
        "from nascli.experiment.services import local\n"
        "script = local.launcher_script\n"
        "local.launcher_script = lambda *a, **k: 'sleep 0.5\\n' + script(*a, **k)\n"
    )
    store, counter = crash_right_after_launch(tmp_path, slow_launcher)
    assert ExperimentStore(store.dir).trials()[0].status == "WAITING"
    resume_counting(store, counter)
    (trial,) = ExperimentStore(store.dir).trials()
    assert trial.status == "SUCCEEDED"
    assert counter.read_text().split() == [trial.id]  # it ran once


# ------------------------------------------------------------------ 10: very short experiments


def test_resuming_an_experiment_with_nothing_left_to_do_succeeds(tmp_path: Path) -> None:
    store = hostile(tmp_path, "report")
    assert run(store) == "DONE"
    for _ in range(3):
        with sqlite3.connect(store.dir / "experiment.sqlite") as db:  # as if stopped at its end
            db.execute("UPDATE experiment SET status = 'STOPPED'")
        result = CliRunner().invoke(app, ["resume", store.id])
        assert result.exit_code == 0, result.output
        assert "DONE" in result.output or "resumed" in result.output
        wait_for(lambda: ExperimentStore(store.dir).experiment().status == "DONE", 10)


# ------------------------------------------------------------------ 14: symlinks


def test_nothing_is_written_through_symlinks_in_the_experiment(tmp_path: Path) -> None:
    store = hostile(tmp_path, "report", maxTrialNum=2, trialConcurrency=2)
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("keep me")
    with store.transaction():  # two trials proposed before a crash, then tampered with
        store.add_trial("0", 0, 0, {})
        store.add_trial("1", 1, 1, {})
        store.update_experiment(next_parameter_id=2)
    first = store.trial_paths("0").dir
    first.mkdir(parents=True)
    (first / "parameter.json").symlink_to(precious)
    store.trial_paths("1").dir.symlink_to(outside, target_is_directory=True)
    run(store)
    assert precious.read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    trials = {t.id: t for t in store.trials()}
    assert trials["0"].status == trials["1"].status == "FAILED"
    assert "symbolic link" in trials["0"].reason and "symbolic link" in trials["1"].reason
