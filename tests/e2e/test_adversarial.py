"""The real ``nascli`` against hostile trials and hostile conditions (issue 12): every kind of
bad trial output, start-up races, a full disk, escaped descendants, a hostile working directory.

Each test asserts what a user relies on afterwards: the commands answer (exit 0 or one clear
error), nothing recorded is lost, nothing the experiment started is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nascli.experiment.store import ExperimentStore, list_experiment_dirs
from tests.experiments import TRIALS, quick_config
from tests.helpers import (
    PYTHON,
    REPO,
    nascli_command,
    pid_alive,
    processes_tagged_under,
    run_nascli,
    trial_processes,
    wait_for,
)

pytestmark = pytest.mark.slow

BATTERY = {  # modes -> the status the trial must end with
    "bad_lines,report": "SUCCEEDED",
    "long_line,report": "SUCCEEDED",
    "fifo": "FAILED",
    "devzero": "FAILED",
    "metrics_dir": "FAILED",
    "huge_stderr": "FAILED",
    "garbage_out": "FAILED",
    "exit_fifo,report": "SUCCEEDED",
    "escape,report": "SUCCEEDED",
    "report": "SUCCEEDED",
}




def hostile_config(tmp_path: Path, mode: str = "report", sleep: float = 0, **kw: Any) -> Path:
    command = f"HOSTILE_MODE={mode} HOSTILE_SLEEP={sleep} {PYTHON} hostile_trial.py"
    kw.setdefault("trialConcurrency", 1)
    kw.setdefault("maxTrialNum", 1)
    return quick_config(tmp_path, trial={"command": command, "codeDir": str(TRIALS)}, **kw)


def status(exp_id: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_nascli("status", exp_id, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def created_id(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()[1]


def escaped(home: Path) -> list[int]:
    return [int(x) for p in home.glob("*/trials/*/escaped.pids") for x in p.read_text().split()]


@pytest.fixture
def hostile_home(home: Path) -> Iterator[Path]:
    """``home`` (experiments stopped at the end) whose escapees are killed whatever happened."""
    yield home
    for pid in escaped(home) + processes_tagged_under(home):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# ------------------------------------------------------------------ bad trial output


def test_every_kind_of_bad_trial_output_is_recorded_and_survives_kill_and_resume(
    hostile_home: Path, tmp_path: Path
) -> None:
    modes = list(BATTERY)
    env = {"HOSTILE_MODES_BY_SEQ": ";".join(modes), "HOSTILE_SLEEP": "1.5",
           "HOSTILE_STDERR_MB": "300"}  # fmt: skip
    config = hostile_config(tmp_path, maxTrialNum=len(modes), trialConcurrency=2)
    text = config.read_text().replace("HOSTILE_MODE=report HOSTILE_SLEEP=0 ", "")
    config.write_text(text)
    exp_id = created_id(run_nascli("create", "--config", str(config), env=env))
    # kill -9 the manager while hostile trials run, then resume: nothing it read is fatal
    wait_for(lambda: status(exp_id)["trials"]["SUCCEEDED"] >= 1, what="a first result")
    os.kill(status(exp_id)["manager"]["pid"], signal.SIGKILL)
    time.sleep(0.5)
    resumed = run_nascli("resume", exp_id, env=env)
    assert resumed.returncode == 0, resumed.stderr
    final = wait_for(lambda: (s := status(exp_id))["status"] in ("DONE", "ERROR") and s, 180)
    assert final["status"] == "DONE", final
    rows = json.loads(run_nascli("trial", "ls", exp_id, "--json").stdout)
    by_mode = {modes[int(r["id"]) % len(modes)]: r for r in rows}
    assert {m: r["status"] for m, r in by_mode.items()} == BATTERY
    assert by_mode["huge_stderr"]["reason"].endswith("the last line of a huge stderr")
    table = run_nascli("trial", "ls", exp_id)
    assert table.returncode == 0 and "\x1b" not in table.stdout and "\\x1b[2J" in table.stdout
    assert not trial_processes(hostile_home / exp_id)
    assert not any(pid_alive(p) for p in escaped(hostile_home))
    for args in (["status", exp_id], ["experiment", "export", exp_id, "-t", "csv", "-f",
                                      str(tmp_path / "out.csv")]):  # fmt: skip
        result = run_nascli(*args)
        assert result.returncode == 0, result.stderr
    assert "Traceback" not in (hostile_home / exp_id / "manager.log").read_text()


# ------------------------------------------------------------------ start-up races


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.4])
def test_stop_right_after_create_wins(hostile_home: Path, tmp_path: Path, delay: float) -> None:
    config = hostile_config(tmp_path, "sleep,report", sleep=30)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    create = subprocess.Popen(
        [*nascli_command(), "create", "--config", str(config)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(delay)
        # until the experiment exists `stop` finds none (exit 2); once it does, stop wins
        stopped = wait_for(
            lambda: (r := run_nascli("stop", "--grace", "0.5")).returncode == 0 and r, 30
        )
        assert "STOPPED" in stopped.stdout, stopped.stdout + stopped.stderr
        out, err = create.communicate(timeout=30)
    finally:
        if create.poll() is None:
            create.kill()
            create.wait()
    assert "internal error" not in err and "no such table" not in err
    (exp_dir,) = list_experiment_dirs()
    time.sleep(1.5)  # a manager that started anyway would have written RUNNING by now
    assert ExperimentStore(exp_dir).experiment().status == "STOPPED"
    assert not trial_processes(exp_dir)


def test_creates_of_very_short_experiments_all_succeed(hostile_home: Path, tmp_path: Path) -> None:
    config = hostile_config(tmp_path, "report")
    for _ in range(5):
        result = run_nascli("create", "--config", str(config))
        assert result.returncode == 0, result.stdout + result.stderr
    for exp_dir in list_experiment_dirs():
        exp_id = exp_dir.name
        wait_for(lambda exp_id=exp_id: status(exp_id)["status"] == "DONE", 30)


# ------------------------------------------------------------------ a stuck manager, escapees


def test_stop_ends_a_manager_that_a_fifo_would_have_blocked(
    hostile_home: Path, tmp_path: Path
) -> None:
    config = hostile_config(tmp_path, "fifo", sleep=60)
    exp_id = created_id(run_nascli("create", "--config", str(config)))
    wait_for(lambda: list(hostile_home.glob(f"{exp_id}/trials/*/metrics.jsonl")))
    time.sleep(1.0)
    started = time.monotonic()
    result = run_nascli("stop", exp_id, "--grace", "0.5", timeout=60)
    assert result.returncode == 0 and "STOPPED" in result.stdout, result.stderr
    assert time.monotonic() - started < 15
    assert not trial_processes(hostile_home / exp_id)


def test_nascli_stop_ends_escaped_descendants_even_after_a_manager_kill(
    hostile_home: Path, tmp_path: Path
) -> None:
    config = hostile_config(tmp_path, "escape,sleep,report", sleep=60, maxTrialNum=2,
                            trialConcurrency=2)  # fmt: skip
    exp_id = created_id(run_nascli("create", "--config", str(config)))
    pids = wait_for(lambda: len(escaped(hostile_home)) >= 4 and escaped(hostile_home))
    os.kill(status(exp_id)["manager"]["pid"], signal.SIGKILL)
    time.sleep(0.3)
    deleted = run_nascli("experiment", "delete", exp_id, "--yes")
    assert deleted.returncode == 2 and "nascli stop" in deleted.stderr
    result = run_nascli("stop", exp_id, "--grace", "0.5")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "the escapees to end")
    assert run_nascli("experiment", "delete", exp_id, "--yes").returncode == 0


# ------------------------------------------------------------------ the working directory


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P (3.11) emulates the script")
def test_the_manager_imports_nothing_from_the_directory_create_runs_in(
    hostile_home: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "hostile-cwd"
    cwd.mkdir()
    marker = tmp_path / "imported"
    (cwd / "filelock.py").write_text("raise ImportError('the cwd filelock.py was imported')\n")
    (cwd / "statistics.py").write_text(f"open({str(marker)!r}, 'a').write('statistics\\n')\n")
    (cwd / "yaml.py").write_text(f"open({str(marker)!r}, 'a').write('yaml\\n')\n")
    config = hostile_config(tmp_path, "report", maxTrialNum=3)
    # `nascli` as installed: its console script does not put the cwd on sys.path (-P does the
    # same for `python -m`); the manager it starts must not either
    result = subprocess.run(
        [PYTHON, "-P", "-m", "nascli.cli.main", "create", "--config", str(config)], cwd=cwd,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    exp_id = created_id(result)
    wait_for(lambda: status(exp_id)["status"] == "DONE", 60)
    assert status(exp_id)["trials"]["SUCCEEDED"] == 3
    assert not marker.exists(), marker.read_text()


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """$NASCLI_HOME on a 16 MiB tmpfs of its own (needs root and a mount namespace that
    allows it)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip() or made.returncode}")
    monkeypatch.setenv("NASCLI_HOME", str(mount / "home"))
    try:
        yield mount
    finally:
        for exp_dir in list_experiment_dirs():
            subprocess.run([*nascli_command(), "stop", exp_dir.name, "--grace", "0.2"],
                           capture_output=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
        for pid in processes_tagged_under(mount):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(path: Path) -> None:
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * (256 << 10))
                f.flush()
    except OSError:
        pass


def test_a_full_disk_ends_the_experiment_cleanly_and_says_so(
    small_disk: Path, tmp_path: Path
) -> None:
    config = hostile_config(tmp_path, "fill_disk", sleep=1.0, maxTrialNum=3)
    exp_id = created_id(run_nascli("create", "--config", str(config)))
    final = wait_for(lambda: (s := status(exp_id))["status"] in ("ERROR", "DONE", "STOPPED")
                     and s, 90)  # fmt: skip
    assert final["status"] == "ERROR" and "disk is full" in final["reason"], final
    assert final["trials"]["RUNNING"] == final["trials"]["WAITING"] == 0
    assert not final["manager"]["alive"]
    assert "Traceback" not in (small_disk / "home" / exp_id / "manager.log").read_text()
    assert not trial_processes(small_disk / "home" / exp_id)


def test_stop_and_create_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    config = hostile_config(tmp_path, "escape,sleep,report", sleep=60)
    exp_id = created_id(run_nascli("create", "--config", str(config)))
    home = small_disk / "home"
    wait_for(lambda: len(escaped(home)) >= 2, what="the trial's escapees")
    pids = escaped(home)
    fill(small_disk / "ballast")
    # stop signals first: it ends everything even though the disk is full
    result = run_nascli("stop", exp_id, "--grace", "0.5", timeout=60)
    assert "internal error" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    # (its manager may have met the full disk first, at its next write, and ended on its own)
    after = status(exp_id)
    assert after["status"] == "STOPPED" or (
        after["status"] == "ERROR" and "disk is full" in after["reason"]
    ), after
    assert not after["manager"]["alive"] and after["trials"]["RUNNING"] == 0
    assert not trial_processes(home / exp_id)
    wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "the escapees to end")
    # a create on the full disk fails with one clear message and leaves no directory behind
    before = sorted(p.name for p in home.iterdir())
    failed = run_nascli("create", "--config", str(hostile_config(tmp_path / "b", "report")))
    assert failed.returncode != 0 and "disk is full" in failed.stderr, failed.stderr
    assert "internal error" not in failed.stderr
    assert sorted(p.name for p in home.iterdir()) == before
