"""Early stopping with the real ``nascli``: stopped trials in every reading command, kill -9 of
the manager and resume giving the same decisions, assessor configs refused at create."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from nascli.experiment.manager import Manager
from tests.e2e.test_experiment import create, finished, nascli_json, status, wait_for
from tests.experiments import TRIALS, make_experiment, quick_config
from tests.helpers import pid_alive, run_nascli

pytestmark = pytest.mark.slow

CURVE = {"command": f"{sys.executable} curve_trial.py", "codeDir": str(TRIALS)}


def curve_config(tmp_path: Path, **overrides) -> Path:
    settings = {"trialConcurrency": 1, "maxTrialNum": 5, "maxTrialRetries": 1,
                "assessor": {"builtinAssessorName": "Medianstop"}, **overrides}  # fmt: skip
    return quick_config(tmp_path, trial=CURVE, **settings)


def test_stopped_trials_in_status_trial_ls_and_export(home: Path, tmp_path: Path) -> None:
    env = {"CURVE_TRIAL_QUALITY": "0.9", "CURVE_TRIAL_BAD_SEQ": "1,3",
           "CURVE_TRIAL_STEP_SLEEP": "0.2"}  # fmt: skip
    exp_id = create(curve_config(tmp_path), env=env)
    summary = wait_for(lambda: finished(exp_id), what="the experiment to end")
    assert summary["status"] == "DONE"
    assert summary["trials"]["EARLY_STOPPED"] == 2 and summary["trials"]["SUCCEEDED"] == 3
    assert summary["trials"]["FAILED"] == 0
    assert summary["assessor"] == {"name": "Medianstop", "error": None}
    human = run_nascli("status", exp_id).stdout
    assert "2 EARLY_STOPPED" in human and "Medianstop" in human

    stopped = nascli_json("trial", "ls", exp_id, "--status", "early_stopped")
    assert [t["id"] for t in stopped] == ["1", "3"]
    for t in stopped:
        assert t["status"] == "EARLY_STOPPED" and t["final"] is None
        assert t["reason"].startswith("Medianstop at step 1: its best result 0.01 is worse than")
        assert len(t["intermediate"]) < 6
    table = run_nascli("trial", "ls", exp_id, env={"COLUMNS": "300"}).stdout
    assert table.count("EARLY_STOPPED") == 2 and "Medianstop at step 1" in table

    def export(kind: str, out: Path) -> None:
        result = run_nascli("experiment", "export", exp_id, "--type", kind, "--file", str(out))
        assert result.returncode == 0, result.stderr

    out = tmp_path / "trials.csv"
    export("csv", out)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["status"] for r in rows].count("EARLY_STOPPED") == 2
    assert rows[1]["reason"].startswith("Medianstop at step 1")
    out = tmp_path / "trials.json"
    export("json", out)
    exported = json.loads(out.read_text())
    assert exported[3]["status"] == "EARLY_STOPPED" and "Medianstop" in exported[3]["reason"]


def decisions(trials) -> list[tuple]:
    return [(t["parameter_id"], t["status"], t["reason"]) for t in trials]


def test_kill_dash_nine_and_resume_give_the_same_decisions(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Curves depend on the architecture, so Medianstop stops some trials at various steps.
    env = {"CURVE_TRIAL_STEP_SLEEP": "0.8"}
    config = curve_config(tmp_path / "crashed", maxTrialNum=8)
    exp_id = create(config, env=env)

    def mid_run():
        trials = nascli_json("trial", "ls", exp_id)
        ended = [t for t in trials if t["ended"]]
        running = [t for t in trials if t["status"] == "RUNNING" and 1 <= len(t["intermediate"])]
        return running if len(ended) >= 3 and running else None

    wait_for(mid_run, 120, "a trial in the middle of its curve after three ended")
    manager_pid = status(exp_id)["manager"]["pid"]
    os.kill(manager_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(manager_pid), 10, "the manager to die")
    assert run_nascli("resume", exp_id, env=env).returncode == 0
    summary = wait_for(lambda: finished(exp_id), 180, "the resumed experiment to end")
    assert summary["status"] == "DONE"
    resumed = decisions(nascli_json("trial", "ls", exp_id))
    assert "EARLY_STOPPED" in {d[1] for d in resumed} and "SUCCEEDED" in {d[1] for d in resumed}
    log = run_nascli("log", "manager", exp_id).stdout
    assert "assessor restored" in log

    # the same experiment without the crash
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path / "uninterrupted"))
    monkeypatch.setenv("CURVE_TRIAL_STEP_SLEEP", "0.3")
    reference = make_experiment(
        tmp_path / "reference", trial=CURVE, trialConcurrency=1, maxTrialNum=8, maxTrialRetries=1,
        assessor={"builtinAssessorName": "Medianstop"},
    )  # fmt: skip
    assert Manager(reference, tick=0.1).run(handle_signals=False) == "DONE"
    expected = [(t.parameter_id, t.status, t.reason) for t in reference.trials()]
    assert resumed == expected


def test_assessor_problems_are_refused_at_create_all_at_once(home: Path, tmp_path: Path) -> None:
    config = quick_config(
        tmp_path,
        tuner={"builtinTunerName": "Evolutoin"},
        assessor={"builtinAssessorName": "Curvefitting",
                  "classArgs": {"threshold": 2, "gap": 0, "epochs": 3}},
    )  # fmt: skip
    result = run_nascli("create", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for fragment in ("did you mean 'Evolution'", "classArgs.epochs", "did you mean 'epoch_num'"):
        assert fragment in result.stderr
    config = quick_config(
        tmp_path,
        assessor={"builtinAssessorName": "Curvefitting", "classArgs": {"threshold": 2, "gap": 0}},
    )
    result = run_nascli("create", "--config", str(config))
    assert result.returncode == 2
    assert "classArgs.threshold" in result.stderr and "classArgs.gap" in result.stderr
    config = quick_config(tmp_path, assessor={"builtinAssessorName": "Medianstp"})
    result = run_nascli("create", "--config", str(config))
    assert result.returncode == 2 and "did you mean 'Medianstop'" in result.stderr
    assert not home.exists() or not any(home.iterdir())
