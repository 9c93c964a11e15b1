"""The node side of the Ray training service: one ``TrialRunner`` actor per trial.

The manager (the Ray driver) creates the actor with the trial's resources; Ray places it on a
node that holds them and unpacks the experiment's ``trial.codeDir`` there (``runtime_env``
``working_dir``), so no shared filesystem is needed. The actor:

- makes a node-local trial directory, writes the parameter file the manager sent, and starts the
  unchanged trial command with the same launcher as the local service (own session and process
  group, cwd the unpacked code, exit marker after the command) and the same trial environment,
  with ``NASCLI_TRIAL_DIR`` / ``NASCLI_OUTPUT_DIR`` pointing at the node-local directory and
  ``CUDA_VISIBLE_DEVICES`` the GPUs Ray assigned (``""`` for a CPU-only trial, which Ray would
  otherwise leave unset and so show every GPU of the node);
- answers ``poll(offsets)`` with what the trial's files gained since the manager's offsets
  (metrics, stdout, stderr; at most ``MAX_CHUNK`` bytes per file per call) and the exit code once
  the command ended;
- ends the trial's whole process group on ``stop(grace)``, and on its own when the manager has not
  polled for ``orphan_timeout`` seconds after the command ended (the manager died and nobody
  resumed it), so an orphaned actor does not hold its resources for ever.

This module imports ``ray`` only inside the functions that need it, so that importing it (the
manager does, to build the actor class) costs nothing unless the Ray platform is used. Every node
needs the same ``nascli`` and ``ray`` (and Python) as the manager: Ray refuses mixed versions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nascli.experiment.channel import (
    ENV_OUTPUT_DIR,
    ENV_TRIAL_DIR,
    METRICS_FILE,
    PARAMETER_FILE,
    read_exit_marker,
)
from nascli.experiment.launcher import launcher_script
from nascli.experiment.processes import group_alive, terminate_group

__all__ = ["TrialRunnerImpl", "MAX_CHUNK", "STREAMED_FILES"]

MAX_CHUNK = 1 << 20  # bytes of one file per poll: a trial that floods stderr cannot flood us
STREAMED_FILES = (METRICS_FILE, "stdout", "stderr")


class TrialRunnerImpl:
    """What one ``TrialRunner`` actor does (the plain class, testable without Ray).

    Args:
        trial_id: the trial's id (names the node-local directory).
        command: the trial command, run by ``/bin/sh`` as the local service does.
        parameters: the bytes of the trial's ``parameter.json``.
        env: the trial environment the manager built (``NASCLI_*``).
        gpu_ids: the GPUs Ray assigned to this actor (empty: a CPU-only trial).
        code_dir: where the trial runs (the unpacked ``working_dir``; default the cwd).
        base_dir: where node-local trial directories go (default the system temp dir).
        orphan_timeout: seconds after the command ended without a poll before the runner ends.
    """

    def __init__(
        self,
        trial_id: str,
        command: str,
        parameters: bytes,
        env: dict[str, str],
        gpu_ids: list[str] | None = None,
        code_dir: str | None = None,
        base_dir: str | None = None,
        orphan_timeout: float = 600.0,
    ):
        self.trial_id = trial_id
        root = Path(base_dir or tempfile.gettempdir()) / "nascli-ray"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.trial_dir = Path(tempfile.mkdtemp(prefix=f"{trial_id}-", dir=root))
        (self.trial_dir / PARAMETER_FILE).write_bytes(parameters)
        code = Path(code_dir or os.getcwd())
        trial_env = dict(env)
        trial_env[ENV_TRIAL_DIR] = str(self.trial_dir)
        trial_env[ENV_OUTPUT_DIR] = str(self.trial_dir)
        trial_env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids or ())
        self.node = socket.gethostname()
        self.orphan_timeout = orphan_timeout
        self._last_poll = time.monotonic()
        self._ended_at: float | None = None
        with open(self.trial_dir / "stdout", "ab") as out, open(
            self.trial_dir / "stderr", "ab"
        ) as err:
            self._popen = subprocess.Popen(
                ["/bin/sh", "-c", launcher_script(command, code, self.trial_dir)],
                cwd=self.trial_dir,
                env=trial_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.pid = self._popen.pid
        threading.Thread(target=self._watch, daemon=True, name=f"watch-{trial_id}").start()

    def info(self) -> dict[str, Any]:
        """Where the trial runs: node name, pid of its process group leader, trial dir."""
        return {"node": self.node, "pid": self.pid, "trial_dir": str(self.trial_dir)}

    def poll(self, offsets: dict[str, int]) -> dict[str, Any]:
        """What each streamed file gained past ``offsets`` (bytes, at most ``MAX_CHUNK`` each)
        and, once the command ended and its group is gone, ``exit_code`` (None while running)
        and ``end_time``. The manager calls it until it has every byte of an ended trial."""
        self._last_poll = time.monotonic()
        ended = self._ended_at is not None
        chunks: dict[str, bytes] = {}
        complete = True
        for name in STREAMED_FILES:
            data = _read_from(self.trial_dir / name, offsets.get(name, 0))
            chunks[name] = data
            if len(data) == MAX_CHUNK:
                complete = False
        result: dict[str, Any] = {"chunks": chunks, "exit_code": None, "end_time": None}
        if ended and complete:
            marker = read_exit_marker(self.trial_dir)
            code = self._popen.returncode if marker is None else marker[0]
            result["exit_code"] = code
            result["end_time"] = marker[1] if marker else time.time()
            result["ended"] = True
        else:
            result["ended"] = False
        return result

    def stop(self, grace: float) -> None:
        """End the trial's whole process group: SIGTERM, ``grace`` seconds, SIGKILL."""
        terminate_group(self.pid, grace, leader=self._popen)

    def cleanup(self) -> None:
        """Remove the node-local trial directory (after the manager has every byte)."""
        if group_alive(self.pid):
            terminate_group(self.pid, 1.0, leader=self._popen)
        shutil.rmtree(self.trial_dir, ignore_errors=True)

    def _watch(self) -> None:
        self._popen.wait()
        if group_alive(self.pid):
            terminate_group(self.pid, 2.0)  # leftover children end with the trial
        self._ended_at = time.monotonic()
        while time.monotonic() - max(self._last_poll, self._ended_at) < self.orphan_timeout:
            time.sleep(min(5.0, self.orphan_timeout))
        # Nobody came for the results: give the resources back.
        self.cleanup()
        os._exit(0)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(MAX_CHUNK)
    except OSError:
        return b""
