"""Helpers for tests that spawn the real ``nascli`` and trial processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
