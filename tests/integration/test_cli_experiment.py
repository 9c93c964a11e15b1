"""Experiment commands through the CLI (in-process runner) on an experiment that really ran:
what people and scripts see, and one clear message with exit code 2 for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nascli.cli.main import app
from nascli.experiment.manager import Manager
from tests.experiments import make_experiment
from tests.helpers import modules_after, torch_modules_after

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QUICK_TRIAL_CRASH_SEQ", "2")
    store = make_experiment(tmp_path, maxTrialNum=4)
    assert Manager(store, tick=0.1).run(handle_signals=False) == "DONE"
    return store


def test_status_json_shape(finished) -> None:
    result = invoke("status", finished.id, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["id"] == finished.id and data["status"] == "DONE"
    assert data["trials"]["SUCCEEDED"] == 3 and data["trials"]["FAILED"] == 1
    assert data["best"]["id"] in {"0", "1", "3"}
    assert set(data["best"]) >= {"id", "parameters", "metric"}


def test_latest_experiment_is_the_default_and_prefixes_work(finished) -> None:
    assert json.loads(invoke("status", "--json").output)["id"] == finished.id
    assert json.loads(invoke("status", finished.id[:4], "--json").output)["id"] == finished.id


def test_trial_ls_filters_by_status(finished) -> None:
    rows = json.loads(invoke("trial", "ls", finished.id, "--status", "FAILED", "--json").output)
    assert [r["id"] for r in rows] == ["2"]
    assert "crashes on purpose" in rows[0]["reason"]
    table = invoke("trial", "ls", finished.id)
    assert table.exit_code == 0 and "FAILED" in table.output and "SUCCEEDED" in table.output


def test_export_best_architecture_applies_to_the_model(finished, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert invoke("experiment", "export", finished.id, "-t", "json", "-f", str(out)).exit_code == 0
    rows = json.loads(out.read_text())
    assert [r["status"] for r in rows].count("FAILED") == 1
    assert all(set(r["architecture"]) == {"conv1", "conv2", "shortcut"} for r in rows)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["status", "nope"], ["no experiment 'nope'"]),
        (
            ["trial", "ls", "--status", "SUCCEDED"],
            ["not a trial status", "did you mean 'SUCCEEDED'"],
        ),
        (["trial", "kill", "{id}", "99"], ["has no trial '99'"]),
        (["trial", "kill", "{id}", "0"], ["already ended (SUCCEEDED)"]),
        (
            ["experiment", "export", "{id}", "-t", "xml", "-f", "x"],
            ["--type must be 'csv' or 'json'"],
        ),
        (["experiment", "delete", "{id}"], ["needs --yes"]),
        (["log", "stdout", "{id}", "42"], ["has no trial '42'"]),
        (["resume", "{id}"], ["is DONE", "nothing to resume"]),
        (["create", "--config", "/nonexistent/c.yml"], ["c.yml: the file does not exist"]),
    ],
)
def test_bad_arguments_get_one_message_and_exit_2(finished, args, fragments) -> None:
    result = invoke(*[a.replace("{id}", finished.id) for a in args])
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in result.output
    assert "Traceback" not in result.output


def test_no_experiment_yet() -> None:
    result = invoke("status")
    assert result.exit_code == 2 and "no experiments in" in result.output


def test_log_commands(finished) -> None:
    result = invoke("log", "stderr", finished.id, "2", "--tail", "1")
    assert result.exit_code == 0
    assert result.output.strip() == "RuntimeError: trial 2 crashes on purpose"
    assert "experiment" in invoke("log", "manager", finished.id).output


def test_delete(finished) -> None:
    result = invoke("experiment", "delete", finished.id, "--yes")
    assert result.exit_code == 0 and not finished.dir.exists()


def test_reading_commands_do_not_import_torch(finished) -> None:
    calls = (["status", "--json"], ["trial", "ls"], ["experiment", "list", "--all"])
    assert torch_modules_after(*calls) == []


def test_reading_commands_import_no_tuner_module(finished) -> None:
    calls = (
        ["status", "--json"], ["status"], ["trial", "ls"], ["trial", "ls", "--json"],
        ["experiment", "list", "--all"],
        ["experiment", "export", finished.id, "--type", "csv", "-f", str(finished.dir / "e.csv")],
    )  # fmt: skip
    assert modules_after("tuners", *calls) == []


def test_commands_for_scripts_do_not_import_rich(finished) -> None:
    calls = (["status", "--json"], ["trial", "ls", "--json"], ["experiment", "list", "--json"])
    assert modules_after("rich", *calls) == []


def test_reading_commands_import_only_what_they_use(finished) -> None:
    # Their output for people is written without rich (plain.py writes rich's bytes), readers
    # take no lock, and the CLI does not load the trial-side reporting API.
    calls = (["status"], ["trial", "ls"], ["trial", "ls", "--sort", "best", "-n", "3"],
             ["top", "--once", "--all"], ["status", "--json"])  # fmt: skip
    for package in ("rich", "filelock"):
        assert modules_after(package, *calls) == [], package
    assert "nascli.reporting" not in modules_after("nascli", *calls)


def test_top_once_shows_the_experiment(finished) -> None:
    result = invoke("top", "--once", "--all")
    assert result.exit_code == 0
    assert finished.id in result.output and "DONE" in result.output


def test_create_refuses_more_gpus_than_the_machine_has(tmp_path: Path, monkeypatch) -> None:
    from tests.experiments import quick_config
    from tests.fake_gpus import install, path_with

    monkeypatch.setenv("PATH", path_with(install(tmp_path / "bin")))
    config = quick_config(tmp_path, trial={"gpuNum": 5})
    result = invoke("create", "--config", str(config), "--dry-run")
    assert result.exit_code == 2
    assert "trial.gpuNum: 5 GPUs per trial, but only 4 are usable" in result.output
    wide = quick_config(tmp_path, trial={"gpuNum": 1}, trialConcurrency=8)
    ok = invoke("create", "--config", str(wide), "--dry-run")
    assert ok.exit_code == 0, ok.output
    assert "3 at a time" in ok.output  # GPU 2 is busy: 3 usable GPUs x 1 trial each


def test_log_follow_of_an_ended_trial_prints_and_returns(finished) -> None:
    result = invoke("log", "stderr", finished.id, "2", "--follow")
    assert result.exit_code == 0
    assert "RuntimeError: trial 2 crashes on purpose" in result.output
