"""The real ``nascli`` end to end: detached experiments, status/trial/export/log commands,
kill -9 of the manager and resume, stop without orphans, crashing trials, bad configs."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from nascli.experiment.manager import Manager
from nascli.experiment.store import ExperimentStore
from tests.experiments import make_experiment, quick_config
from tests.helpers import (
    PYTHON,
    REPO,
    pid_alive,
    run_nascli,
    run_nascli_into_closed_pipe,
    wait_for,
)
from tuners import BUILTIN_TUNERS

pytestmark = pytest.mark.slow




def nascli_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run_nascli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def create(config: Path, env: dict[str, str] | None = None) -> str:
    result = run_nascli("create", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("experiment ") and "started" in first
    return first.split()[1]


def status(exp_id: str) -> dict[str, Any]:
    return nascli_json("status", exp_id)


def finished(exp_id: str) -> dict[str, Any] | None:
    s = status(exp_id)
    return s if s["status"] in ("DONE", "ERROR", "STOPPED") else None


def test_detached_experiment_and_its_commands(home: Path, tmp_path: Path) -> None:
    exp_id = create(quick_config(tmp_path), env={"QUICK_TRIAL_SLEEP": "0.3"})
    # create returned while the experiment runs on without it
    assert status(exp_id)["status"] in ("RUNNING", "NO_MORE_TRIAL")
    summary = wait_for(lambda: finished(exp_id), what="the experiment to end")
    assert summary["status"] == "DONE" and summary["id"] == exp_id
    assert summary["trials"]["SUCCEEDED"] == 6 and summary["trials"]["FAILED"] == 0
    assert summary["manager"]["alive"] is False
    best = summary["best"]
    assert set(best) >= {"id", "parameters", "metric", "architecture"}

    trials = nascli_json("trial", "ls", exp_id)
    assert len(trials) == 6
    for row in trials:
        assert set(row) >= {"id", "status", "parameters", "final", "intermediate", "exit_code",
                            "gpus", "started", "ended"}  # fmt: skip
        assert row["status"] == "SUCCEEDED" and row["exit_code"] == 0
        assert len(row["intermediate"]) == 1 and row["started"] <= row["ended"]
    assert best["metric"]["default"] == max(r["final"]["default"] for r in trials)

    listed = nascli_json("experiment", "list", "--all")
    assert [e["id"] for e in listed] == [exp_id]
    assert set(listed[0]) >= {"id", "name", "status", "started", "ended", "trials"}
    assert nascli_json("experiment", "list") == []  # no running experiment

    out = tmp_path / "trials.csv"
    result = run_nascli("experiment", "export", exp_id, "--type", "csv", "--file", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 6 and {"conv1", "conv2", "shortcut", "final", "seq"} <= set(rows[0])
    assert rows[0]["conv1"] in {"conv3x3", "conv5x5", "maxpool", "skip"}
    out_json = tmp_path / "trials.json"
    run_nascli("experiment", "export", exp_id, "-t", "json", "-f", str(out_json))
    exported = json.loads(out_json.read_text())
    assert len(exported) == 6 and {"parameter", "value", "id"} <= set(exported[0])

    log = run_nascli("log", "manager", exp_id)
    assert "trial 0 SUCCEEDED" in log.stdout
    ls = run_nascli("trial", "ls", exp_id)
    assert ls.returncode == 0 and "SUCCEEDED" in ls.stdout
    human = run_nascli("status", exp_id)
    assert "DONE" in human.stdout and "best" in human.stdout


def test_kill_dash_nine_and_resume_lose_nothing(home: Path, tmp_path: Path) -> None:
    # Trial 0 sleeps 1 s, trial 1 sleeps 3 s: after the manager dies, trial 0 ends while no
    # manager runs (its result must be ingested) and trial 1 is still running (it must be adopted).
    exp_id = create(quick_config(tmp_path), env={"QUICK_TRIAL_SLEEP": "1"})
    running = wait_for(
        lambda: [t for t in nascli_json("trial", "ls", exp_id) if t["status"] == "RUNNING"]
        if len(nascli_json("trial", "ls", exp_id)) >= 2 else None,
        what="two running trials",
    )  # fmt: skip
    manager_pid = status(exp_id)["manager"]["pid"]
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), 10, "the manager to die")
    for t in running:
        assert pid_alive(t["pid"]), "a trial died with its manager"
    crashed = status(exp_id)
    assert crashed["status"] in ("RUNNING", "NO_MORE_TRIAL") and "resume" in crashed["warning"]
    trial_dir = home / exp_id / "trials" / "0"
    wait_for(lambda: (trial_dir / "exit").exists(), 20, "trial 0 to end without its manager")

    result = run_nascli("resume", exp_id)
    assert result.returncode == 0, result.stderr
    summary = wait_for(lambda: finished(exp_id), what="the resumed experiment to end")
    assert summary["status"] == "DONE"
    trials = nascli_json("trial", "ls", exp_id)
    assert len(trials) == 6 and {t["status"] for t in trials} == {"SUCCEEDED"}
    assert sorted(t["parameter_id"] for t in trials) == list(range(6))  # none counted twice
    assert trials[0]["final"]["seq"] == 0 and trials[1]["final"]["seq"] == 1
    log = run_nascli("log", "manager", exp_id).stdout
    assert "resumed" in log and "trial 1 still running" in log
    again = run_nascli("resume", exp_id)
    assert again.returncode == 2 and "DONE" in again.stderr


def test_resume_replays_the_tuner_log_to_the_same_proposals(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trials 0-3 are quick (several turns, so tuner calls are logged after the checkpoint),
    # 4 and later sleep; the manager dies while 4 and 5 run.
    config = quick_config(tmp_path, maxTrialNum=8)
    exp_id = create(config, env={"QUICK_TRIAL_SLEEP": "1", "QUICK_TRIAL_SLEEP_FROM": "4"})
    wait_for(
        lambda: {"4", "5"} <= {t["id"] for t in nascli_json("trial", "ls", exp_id)
                               if t["status"] == "RUNNING"},
        what="trials 4 and 5 running",
    )  # fmt: skip
    store = ExperimentStore(home / exp_id)
    assert store.tuner_calls(), "nothing logged after the checkpoint: the test replays nothing"
    manager_pid = status(exp_id)["manager"]["pid"]
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), 10, "the manager to die")
    assert run_nascli("resume", exp_id).returncode == 0
    assert wait_for(lambda: finished(exp_id), what="the resumed experiment")["status"] == "DONE"
    resumed = {t["parameter_id"]: t["parameters"] for t in nascli_json("trial", "ls", exp_id)}

    # the same experiment without the crash (in-process, trials not sleeping) proposes the same
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path / "uninterrupted"))
    reference = make_experiment(tmp_path / "reference", maxTrialNum=8)
    assert Manager(reference, tick=0.1).run(handle_signals=False) == "DONE"
    assert resumed == {t.parameter_id: t.parameters for t in reference.trials()}
    final = ExperimentStore(home / exp_id)
    assert len(final.experiment().tuner_state["history"]) == 8 and final.tuner_calls() == []


def test_a_foreground_experiment_outlives_the_reader_of_its_output(
    home: Path, tmp_path: Path
) -> None:
    # `nascli create -f | head -1`: the display is lost, the experiment is not
    config = quick_config(tmp_path, maxTrialNum=8)
    code, read, err = run_nascli_into_closed_pipe("create", "--config", str(config), "-f")
    assert code == 0 and err == ""
    exp_id = read[0].split()[1]
    summary = status(exp_id)
    assert summary["status"] == "DONE" and summary["trials"]["SUCCEEDED"] == 8


def test_stop_leaves_no_process_behind(home: Path, tmp_path: Path) -> None:
    exp_id = create(
        quick_config(tmp_path), env={"QUICK_TRIAL_SLEEP": "60", "QUICK_TRIAL_CHILD": "1"}
    )
    child_files = lambda: [p for p in (home / exp_id).glob("trials/*/child.pid")  # noqa: E731
                           if p.read_text()]  # fmt: skip
    wait_for(lambda: len(child_files()) == 2, what="two trials with a grandchild each")
    pids = [int(p.read_text()) for p in child_files()]
    pids += [t["pid"] for t in nascli_json("trial", "ls", exp_id)]
    manager_pid = status(exp_id)["manager"]["pid"]
    result = run_nascli("stop", exp_id, "--grace", "2")
    assert result.returncode == 0, result.stderr
    assert "STOPPED" in result.stdout
    for pid in [manager_pid, *pids]:
        assert not pid_alive(pid), f"process {pid} outlived `nascli stop`"
    summary = status(exp_id)
    assert summary["status"] == "STOPPED" and summary["trials"]["USER_CANCELED"] == 2
    assert summary["trials"]["RUNNING"] == 0


def test_a_crashing_trial_is_recorded_and_the_experiment_goes_on(
    home: Path, tmp_path: Path
) -> None:
    exp_id = create(
        quick_config(tmp_path), env={"QUICK_TRIAL_CRASH_SEQ": "0,3", "QUICK_TRIAL_GARBAGE": "1"}
    )
    summary = wait_for(lambda: finished(exp_id), what="the experiment to end")
    assert summary["status"] == "DONE"
    assert summary["trials"] == {"WAITING": 0, "RUNNING": 0, "SUCCEEDED": 4, "FAILED": 2,
                                 "EARLY_STOPPED": 0, "USER_CANCELED": 0}  # fmt: skip
    failed = nascli_json("trial", "ls", exp_id, "--status", "failed")
    assert [t["id"] for t in failed] == ["0", "3"]
    assert all(t["exit_code"] == 1 and "crashes on purpose" in t["reason"] for t in failed)
    stderr = run_nascli("log", "stderr", exp_id, "0").stdout
    assert "RuntimeError: trial 0 crashes on purpose" in stderr


def test_kill_one_trial(home: Path, tmp_path: Path) -> None:
    exp_id = create(quick_config(tmp_path, maxTrialNum=3), env={"QUICK_TRIAL_SLEEP": "30"})
    wait_for(lambda: any(t["status"] == "RUNNING" and t["id"] == "0"
                         for t in nascli_json("trial", "ls", exp_id)))  # fmt: skip
    result = run_nascli("trial", "kill", exp_id, "0", "--grace", "1")
    assert result.returncode == 0, result.stderr
    assert "USER_CANCELED" in result.stdout
    # the freed slot is refilled: trial 2 starts
    wait_for(lambda: len(nascli_json("trial", "ls", exp_id)) == 3, what="the next trial")
    run_nascli("stop", exp_id, "--grace", "1")


def test_bad_config_starts_and_writes_nothing(home: Path, tmp_path: Path) -> None:
    config = quick_config(tmp_path, trialConcurrency=0, maxExecDuration="soon")
    result = run_nascli("create", "--config", str(config))
    assert result.returncode == 2
    assert "trialConcurrency" in result.stderr and "maxExecDuration" in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists() or not any(home.iterdir())


def test_unknown_tuner_is_refused_at_create(home: Path, tmp_path: Path) -> None:
    config = quick_config(tmp_path, tuner={"builtinTunerName": "Evolutoin"})
    result = run_nascli("create", "--config", str(config))
    assert result.returncode == 2
    assert "did you mean 'Evolution'" in result.stderr
    assert not home.exists() or not any(home.iterdir())


def test_the_digits_trial_runs_in_an_experiment(home: Path, tmp_path: Path) -> None:
    """The real torch trial under the manager: parameters applied, accuracy reported."""
    config = tmp_path / "digits.yml"
    config.write_text(
        (REPO / "config_nas.yml").read_text()
        .replace("maxTrialNum: 10", "maxTrialNum: 2")
        .replace("--epochs 10", "--epochs 2")
        .replace("command: python3 ", f"command: {PYTHON} ")
        .replace("searchSpacePath: trial/", f"searchSpacePath: {REPO}/trial/")
        .replace("codeDir: trial", f"codeDir: {REPO}/trial")
    )  # fmt: skip
    result = run_nascli("create", "--config", str(config), "--foreground", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "DONE" in result.stdout and "best: trial" in result.stdout
    exp_id = result.stdout.split()[1]
    trials = nascli_json("trial", "ls", exp_id)
    assert [t["status"] for t in trials] == ["SUCCEEDED", "SUCCEEDED"]
    for t in trials:
        assert 0.1 < t["final"] <= 1.0 and len(t["intermediate"]) == 2
        stderr = run_nascli("log", "stderr", exp_id, t["id"]).stdout
        assert "standalone" not in stderr


@pytest.mark.parametrize("tuner", sorted(BUILTIN_TUNERS))
def test_every_builtin_tuner_runs_a_real_experiment(home: Path, tmp_path: Path, tuner: str) -> None:
    config = quick_config(
        tmp_path, maxTrialNum=5, tuner={"builtinTunerName": tuner, "classArgs": {"seed": 3}}
    )
    result = run_nascli("create", "--config", str(config), "--foreground", timeout=300)
    assert result.returncode == 0, result.stderr
    exp_id = result.stdout.split()[1]
    trials = nascli_json("trial", "ls", exp_id)
    assert [t["status"] for t in trials] == ["SUCCEEDED"] * 5
    assert len({json.dumps(t["parameters"], sort_keys=True) for t in trials}) == 5
    assert status(exp_id)["tuner"] == tuner


def test_ctrl_c_stops_a_foreground_experiment_cleanly(home: Path, tmp_path: Path) -> None:
    import subprocess

    from tests.helpers import nascli_command

    config = quick_config(tmp_path)
    env = dict(os.environ, QUICK_TRIAL_SLEEP="60", QUICK_TRIAL_CHILD="1")
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.Popen(
        [*nascli_command(), "create", "--config", str(config), "--foreground"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        children = wait_for(
            lambda: [p for p in home.glob("*/trials/*/child.pid") if p.read_text()]
            if len(list(home.glob("*/trials/*/child.pid"))) == 2 else None,
            what="two running trials",
        )  # fmt: skip
        grandchildren = [int(p.read_text()) for p in children]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "STOPPED" in out
    exp_id = out.split()[1]
    summary = status(exp_id)
    assert summary["status"] == "STOPPED" and summary["trials"]["USER_CANCELED"] == 2
    assert not any(pid_alive(pid) for pid in grandchildren)


def test_search_space_generated_from_the_trial_command_when_no_path_is_given(
    home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "gen.yml"
    config.write_text(
        "trialConcurrency: 1\nmaxTrialNum: 1\ntuner:\n  builtinTunerName: Random\n"
        f"trial:\n  command: {PYTHON} trial.py --epochs 1\n  codeDir: {REPO / 'trial'}\n"
    )
    result = run_nascli("create", "--config", str(config), "--dry-run", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "3 choices (generated from trial.command" in result.stdout


def test_a_trial_command_that_cannot_give_a_search_space_is_refused_at_create(
    home: Path, tmp_path: Path
) -> None:
    config = quick_config(tmp_path)
    text = config.read_text().replace("searchSpacePath:", "unusedKey:")
    config.write_text("\n".join(line for line in text.splitlines() if "unusedKey" not in line))
    result = run_nascli("create", "--config", str(config))
    assert result.returncode == 2
    assert "searchSpacePath is not set" in result.stderr
    assert "get_and_apply_next_architecture" in result.stderr
    assert not home.exists() or not any(home.iterdir())


def test_stop_all(home: Path, tmp_path: Path) -> None:
    env = {"QUICK_TRIAL_SLEEP": "60"}
    first = create(quick_config(tmp_path / "a"), env=env)
    second = create(quick_config(tmp_path / "b"), env=env)
    wait_for(lambda: all(status(e)["trials"]["RUNNING"] == 2 for e in (first, second)))
    result = run_nascli("stop", "--all", "--grace", "1")
    assert result.returncode == 0, result.stderr
    for exp_id in (first, second):
        summary = status(exp_id)
        assert summary["status"] == "STOPPED" and summary["trials"]["RUNNING"] == 0
    assert nascli_json("experiment", "list") == []
