"""The node side of the Ray training service: what one ``TrialRunner`` actor does for one trial.

The manager (the Ray driver, ``services/ray.py``) creates the actor with the trial's resources;
Ray places it on a node that holds them and unpacks the trial's ``codeDir`` there (``runtime_env``
``working_dir``), so no shared filesystem is needed. The runner:

- makes a node-local trial directory, writes the trial's input files the manager sent
  (``parameter.json``), and starts the unchanged trial command with the local service's launcher
  (own session and process group, cwd the unpacked code, exit marker after the command) and the
  trial environment, ``NASCLI_TRIAL_DIR`` / ``NASCLI_OUTPUT_DIR`` pointing at the node-local
  directory and ``CUDA_VISIBLE_DEVICES`` the GPUs Ray assigned (``""`` for a CPU-only trial, which
  Ray would otherwise leave unset, so that the trial would see every GPU of its node);
- answers ``poll(offsets)`` with what the trial directory's files gained past the manager's
  offsets (every regular file below it, symlinks skipped, at most ``MAX_POLL_BYTES`` per call),
  and, once the command ended, its group is gone and every byte has been handed out, the exit code;
- ends the trial's whole process group on ``stop(grace)``; and ends itself when nobody polled for
  ``orphan_timeout`` seconds after the command ended (its manager died and was not resumed), so
  that an orphaned runner does not hold its node's resources for ever.

Plain Python, no Ray import: ``services/ray.py`` wraps it in an actor, tests can drive it directly.
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

from nascli.channel import ENV_OUTPUT_DIR, ENV_TRIAL_DIR, EXIT_FILE, read_exit_marker
from nascli.experiment.processes import group_alive, terminate_group
from nascli.experiment.services.local import launcher_script

__all__ = ["TrialRunnerImpl", "MAX_POLL_BYTES"]

MAX_POLL_BYTES = 4 << 20  # per poll: a trial that floods its output cannot flood the manager


class TrialRunnerImpl:
    """One trial on this node.

    Args:
        trial_id: the trial's id (names the node-local directory).
        command: the trial command, run by ``/bin/sh`` as the local service runs it.
        inputs: the trial's input files (name -> bytes), written before the command starts.
        env: the whole environment of the command.
        gpu_ids: the GPUs assigned to the trial (empty: a CPU-only trial, GPUs hidden).
        code_dir: where the command runs (default: this process's cwd, Ray's ``working_dir``).
        base_dir: where node-local trial directories go (default: the system temp dir).
        orphan_timeout: seconds after the command ended with no poll before the runner ends.
    """

    def __init__(
        self,
        trial_id: str,
        command: str,
        inputs: dict[str, bytes],
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
        self._inputs = set(inputs)
        for name, data in inputs.items():
            (self.trial_dir / name).write_bytes(data)
        trial_env = dict(env)
        trial_env[ENV_TRIAL_DIR] = str(self.trial_dir)
        trial_env[ENV_OUTPUT_DIR] = str(self.trial_dir)
        trial_env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids or ())
        self.node = socket.gethostname()
        self.orphan_timeout = orphan_timeout
        self._last_poll = time.monotonic()
        self._ended = threading.Event()
        code = Path(code_dir or os.getcwd())
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
        """Where the trial runs: ``node``, ``pid`` of its group leader on that node."""
        return {"node": self.node, "pid": self.pid}

    def poll(self, offsets: dict[str, int]) -> dict[str, Any]:
        """``{"chunks": {relative path: new bytes}, "ended": bool, "exit_code", "end_time"}``:
        what each file gained past ``offsets`` (missing: 0). ``ended`` only once the command
        ended, its group is gone and this answer holds every remaining byte."""
        self._last_poll = time.monotonic()
        ended = self._ended.is_set()  # read before the files: no byte written after it is lost
        budget = MAX_POLL_BYTES
        chunks: dict[str, bytes] = {}
        complete = True
        for rel, size in self._files():
            offset = offsets.get(rel, 0)
            if size <= offset:
                continue
            if budget <= 0:
                complete = False
                break
            data = _read_from(self.trial_dir / rel, offset, budget)
            chunks[rel] = data
            budget -= len(data)
            if offset + len(data) < size:
                complete = False
        answer: dict[str, Any] = {"chunks": chunks, "ended": False, "exit_code": None,
                                  "end_time": None}  # fmt: skip
        if ended and complete:
            marker = read_exit_marker(self.trial_dir)
            answer.update(
                ended=True,
                exit_code=marker[0] if marker else self._popen.returncode,
                end_time=marker[1] if marker else time.time(),
            )
        return answer

    def stop(self, grace: float) -> None:
        """End the trial's whole process group: SIGTERM, ``grace`` seconds, SIGKILL."""
        terminate_group(self.pid, grace)
        self._ended.wait(grace + 5.0)

    def cleanup(self) -> None:
        """Remove the node-local trial directory (once the manager holds every byte)."""
        if group_alive(self.pid):
            terminate_group(self.pid, 1.0)
        shutil.rmtree(self.trial_dir, ignore_errors=True)

    def _files(self) -> list[tuple[str, int]]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.trial_dir):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, self.trial_dir)
                if rel in self._inputs or rel == EXIT_FILE or os.path.islink(path):
                    continue
                try:
                    found.append((rel, os.stat(path).st_size))
                except OSError:
                    continue
        return found

    def _watch(self) -> None:
        self._popen.wait()
        if group_alive(self.pid):
            terminate_group(self.pid, 2.0)  # what the trial left behind ends with it
        ended_at = time.monotonic()
        self._ended.set()
        while time.monotonic() - max(self._last_poll, ended_at) < self.orphan_timeout:
            time.sleep(min(1.0, self.orphan_timeout))
        # Nobody came for the results: give the node's resources back.
        self.cleanup()
        os._exit(0)


def _read_from(path: Path, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(limit)
    except OSError:
        return b""
