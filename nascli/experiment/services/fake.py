"""``FakeTrainingService``: trials run in-process, as Python functions on threads, for tests of
the manager that need no subprocess (as NNI v3 tests its engine): a hundred trials in a second.

A trial is a ``program(run) -> exit_code`` called on its own thread with a ``FakeRun``: the spec,
the trial's stdout and stderr files, and ``run.sleep(seconds)``, which returns early (False) once
the trial is cancelled. Programs report metrics through ``nascli.channel`` into
``run.spec.trial_dir`` as a real trial does. When the program returns, the exit marker is written
(as the local launcher's shell does) and the exit is put in the inbox of the service watching the
trial; a cancelled trial exits ``-SIGTERM``, like a process ended by the signal; a program that
raises exits 1 with the traceback in its stderr.

Trials live in a ``FakeCluster``, which outlives a service: a second service (a resumed manager)
given the same cluster re-attaches with ``adopt``, as a real manager adopts surviving processes.
The service honours the whole contract of ``base.py`` (``tests/service_contract.py``).
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nascli.channel import EXIT_FILE
from nascli.experiment.inbox import Inbox
from nascli.experiment.services.base import TrialExited, TrialProcess, TrialSpec

__all__ = ["FakeTrainingService", "FakeCluster", "FakeRun", "Program"]


@dataclass
class FakeRun:
    """What a fake trial's program gets."""

    spec: TrialSpec
    stdout: IO[str]
    stderr: IO[str]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def sleep(self, seconds: float) -> bool:
        """Sleep; False (early) when the trial was cancelled meanwhile."""
        return not self.cancelled.wait(seconds)


Program = Callable[[FakeRun], int]


@dataclass
class _Live:
    proc: TrialProcess
    run: FakeRun
    thread: threading.Thread
    watcher: FakeTrainingService | None


class FakeCluster:
    """The fake machine: every fake trial still running, whichever service started it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: dict[int, _Live] = {}
        self._pids = itertools.count(100_000)

    def next_pid(self) -> int:
        return next(self._pids)


class FakeTrainingService:
    """Runs ``program`` for every trial, in-process (see the module docstring)."""

    platform = "fake"

    def __init__(
        self, inbox: Inbox, program: Program, cluster: FakeCluster | None = None,
        host: str = "fake-node-0",
    ) -> None:  # fmt: skip
        self.inbox = inbox
        self.program = program
        self.cluster = cluster or FakeCluster()
        self.host = host
        self._watched: dict[str, TrialProcess] = {}

    def launch(self, spec: TrialSpec) -> TrialProcess:
        if not spec.code_dir.is_dir():
            raise FileNotFoundError(f"code directory {spec.code_dir} does not exist")
        out = open(spec.stdout, "a", encoding="utf-8")  # noqa: SIM115 - closed by the thread
        err = open(spec.stderr, "a", encoding="utf-8")  # noqa: SIM115
        pid = self.cluster.next_pid()
        proc = TrialProcess(spec.trial_id, pid, f"fake-{pid}", time.time(), self.host)
        run = FakeRun(spec, out, err)
        thread = threading.Thread(target=self._run, args=(pid, run), name=f"fake-{spec.trial_id}")
        with self.cluster.lock:
            self.cluster.live[pid] = _Live(proc, run, thread, self)
            self._watched[spec.trial_id] = proc
        thread.start()
        return proc

    def adopt(self, trial_id: str, pid: int, token: str | None, trial_dir: Path) -> bool:
        with self.cluster.lock:
            live = self.cluster.live.get(pid)
            if live is None or live.proc.trial_id != trial_id:
                return False
            if token not in (None, live.proc.token):
                return False
            live.watcher = self
            self._watched[trial_id] = TrialProcess(trial_id, pid, live.proc.token, None, self.host)
        return True

    def cancel(self, trial_id: str) -> None:
        proc = self._watched.get(trial_id)
        live = self.cluster.live.get(proc.pid) if proc else None
        if live is not None:
            live.run.cancelled.set()

    def running(self) -> dict[str, TrialProcess]:
        with self.cluster.lock:
            return dict(self._watched)

    def shutdown(self, grace: float) -> None:
        with self.cluster.lock:
            mine = [live for live in self.cluster.live.values() if live.watcher is self]
        for live in mine:
            live.run.cancelled.set()
        for live in mine:
            live.thread.join(grace + 5.0)

    def _run(self, pid: int, run: FakeRun) -> None:
        try:
            code = int(self.program(run))
        except Exception:  # noqa: BLE001 - a crashing program is a crashing trial
            run.stderr.write(traceback.format_exc())
            code = 1
        if run.cancelled.is_set():
            code = -signal.SIGTERM
        run.stdout.close()
        run.stderr.close()
        (run.spec.trial_dir / EXIT_FILE).write_text(f"{code}\n")
        with self.cluster.lock:
            live = self.cluster.live.pop(pid)
            watcher = live.watcher
            if watcher is not None:
                watcher._watched.pop(run.spec.trial_id, None)
        if watcher is not None:
            watcher.inbox.put(TrialExited(run.spec.trial_id, code, time.time()))
