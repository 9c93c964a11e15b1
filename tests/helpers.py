"""Helpers for tests that spawn the real ``nascli`` and trial processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nascli.experiment.processes import process_alive

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def nascli_command() -> list[str]:
    """The installed console script when it belongs to this interpreter, else ``-m``."""
    script = shutil.which("nascli")
    if script and Path(script).resolve().parent == Path(PYTHON).resolve().parent:
        return [script]
    return [PYTHON, "-m", "nascli.cli.main"]


def run_nascli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``nascli ARGS``; the run is killed (with its process group) after ``timeout``."""
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [*nascli_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def run_nascli_into_closed_pipe(
    *args: str, lines: int = 1, timeout: float = 120
) -> tuple[int, list[str], str]:
    """Run ``nascli ARGS`` with its output read by a reader that stops after ``lines`` lines
    (as ``| head``); returns the exit code, the lines read and stderr. The process is killed if
    it outlives ``timeout``."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [*nascli_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        read = [proc.stdout.readline() for _ in range(lines)]
        proc.stdout.close()
        err = proc.stderr.read()
        return proc.wait(timeout=timeout), read, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (ended, not yet reaped by whoever adopted it) does not."""
    return process_alive(pid)


def trial_processes(exp_dir: Path) -> list[int]:
    """Live processes started by the experiment's trials (found by the NASCLI_TRIAL_DIR their
    environment inherits; an independent check, not nascli's own tracking)."""
    return processes_tagged_under(Path(exp_dir) / "trials")


def processes_tagged_under(folder: Path) -> list[int]:
    """Live processes whose NASCLI_TRIAL_DIR lies under ``folder``."""
    tag = f"NASCLI_TRIAL_DIR={folder}{os.sep}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if any(v.startswith(tag) for v in env.split(b"\0")):
            found.append(int(entry))
    return found


def modules_after(package: str, *invocations: list[str]) -> list[str]:
    """The modules of ``package`` a fresh interpreter has imported after running these
    ``nascli`` invocations in-process (each must exit 0)."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nascli.cli.main import app\n"
        f"for args in {list(invocations)!r}:\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == {package!r}))\n"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout)  # noqa: S307 - our own printed list of strings


def torch_modules_after(*invocations: list[str]) -> list[str]:
    return modules_after("torch", *invocations)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """The first truthy value of ``predicate()`` (polled every 50 ms); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
