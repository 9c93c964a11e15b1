"""``nascli create --foreground`` on a terminal: the live view (drawn off the manager's thread)
shows the experiment as it runs and its final state, and the experiment ends as detached."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import threading
from pathlib import Path

from tests.experiments import quick_config
from tests.helpers import REPO, nascli_command


def test_the_foreground_live_view_draws_the_run_on_a_terminal(home: Path, tmp_path: Path) -> None:
    config = quick_config(tmp_path, maxTrialNum=6)
    env = dict(os.environ, COLUMNS="150", LINES="40", QUICK_TRIAL_SLEEP="0.3")
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        try:
            while data := os.read(master, 65536):
                chunks.append(data)
        except OSError:  # the terminal closed
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.Popen(
        [*nascli_command(), "create", "--config", str(config), "--foreground"],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(10)
    os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert code == 0, screen
    assert "started in the foreground" in screen and " DONE" in screen
    assert "architecture" in screen and "SUCCEEDED" in screen  # the view's trials table
    assert "6 SUCCEEDED" in screen  # its last frame shows the final counts
    exp_dir = next(home.iterdir())
    log = (exp_dir / "manager.log").read_text()
    assert "live view could not read" not in log and "observer failed" not in log
