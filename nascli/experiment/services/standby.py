"""Launchers started ahead: a local trial's ``/bin/sh`` launcher started while the slot it will
take is still busy, so that the trial starts the moment the slot frees.

Why: moving a process into a cgroup (the launcher joining its trial's, ``containment.py``)
waits for an RCU grace period whenever no other move happened in the last few milliseconds:
about 10 ms here, on every trial's way to its slot. With the ``exec`` of the shell it was a
quarter of a trivial trial's time. A launcher started ahead pays both while the previous trial
runs, then waits on a pipe; ``launch`` writes one line to it and the command starts.

Who calls what: the manager's starter calls the local service's ``prepare(spec)`` for a trial
proposed ahead (``ahead.py``: short trials, no GPUs managed) and ``discard(trial_id)`` when
that trial is cancelled before it starts; ``launch(spec)`` takes the prepared launcher when its
spec is equal (else it is discarded and a fresh one started). A prepared launcher runs nothing
of the trial and writes no marker until its go: if it is discarded, or the manager dies (the
pipe's end of file), it exits 125 having done nothing, and the trial, still WAITING in the
store, starts afresh later.

Launchers are started by a worker thread of the standby's own, never by the caller: under load
the child of a fork waits for a CPU before it execs (12 ms median with both cores busy here),
and the forking thread waits with it; the manager's thread meanwhile records exits and refills
slots. ``take`` or ``discard`` of a launcher still being started waits for it (no longer than
starting one would); one still queued is dropped (and ``take``'s caller starts its own).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from nascli.experiment.services.base import TrialSpec

__all__ = ["Standby"]

_GO = b"go\n"
_EXIT_WAIT = 1.0  # seconds a discarded launcher gets to read its end of file before SIGKILL

Spawn = Callable[[], "tuple[subprocess.Popen[bytes], Path | None]"]
Prepared = tuple[TrialSpec, "subprocess.Popen[bytes]", "Path | None"]


class Standby:
    """The prepared launchers of one service, by trial id. Its methods are called from the
    manager's thread; ``spawn`` functions run on the standby's worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: list[tuple[TrialSpec, Spawn]] = []  # to start, in order
        self._starting: str | None = None  # the trial whose launcher is being started
        self._ready: dict[str, Prepared] = {}
        self._worker: threading.Thread | None = None

    def prepare(self, spec: TrialSpec, spawn: Spawn) -> None:
        """Have ``spec``'s launcher started through ``spawn`` (waiting for its go), unless one
        is ready or on its way already. Returns at once. An error starting it is not raised:
        ``launch`` starts one then."""
        with self._lock:
            trial_id = spec.trial_id
            if (
                trial_id in self._ready
                or self._starting == trial_id
                or any(queued.trial_id == trial_id for queued, _ in self._queue)
            ):
                return
            self._queue.append((spec, spawn))
            if self._worker is None:
                self._worker = threading.Thread(target=self._start_queued, name="standby",
                                                daemon=True)  # fmt: skip
                self._worker.start()
            self._changed.notify_all()

    def take(self, spec: TrialSpec) -> tuple[subprocess.Popen[bytes], Path | None] | None:
        """The prepared launcher of ``spec`` and its cgroup, told to go; None when there is
        none usable (none prepared, prepared for another spec, or gone meanwhile: then
        discarded)."""
        entry = self._claim(spec.trial_id)
        if entry is None:
            return None
        prepared, popen, cgroup = entry
        if prepared != spec or popen.poll() is not None:
            _end(popen)
            return None
        try:
            assert popen.stdin is not None
            popen.stdin.write(_GO)
            popen.stdin.close()
        except OSError:  # it died between poll and write
            _end(popen)
            return None
        return popen, cgroup

    def discard(self, trial_id: str) -> None:
        """End the launcher prepared for ``trial_id``, if any (one being started: once it is);
        returns once it is ended. Its cgroup stays (empty) for the trial's later launch or
        the experiment's end to remove."""
        entry = self._claim(trial_id)
        if entry is not None:
            _end(entry[1])

    def discard_all(self) -> None:
        """End every prepared launcher, including one being started; returns once they are
        ended."""
        with self._lock:
            self._queue.clear()
            while self._starting is not None:
                self._changed.wait()
            entries, self._ready = list(self._ready.values()), {}
        for _, popen, _ in entries:
            _end(popen)

    def _claim(self, trial_id: str) -> Prepared | None:
        """Take ``trial_id``'s launcher out of the standby: dropped if still queued, waited for
        if being started, then the ready one (None when there is none)."""
        with self._lock:
            self._queue = [queued for queued in self._queue if queued[0].trial_id != trial_id]
            while self._starting == trial_id:
                self._changed.wait()
            return self._ready.pop(trial_id, None)

    def _start_queued(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._changed.wait()
                spec, spawn = self._queue.pop(0)
                self._starting = spec.trial_id
            started: tuple[subprocess.Popen[bytes], Path | None] | None
            try:
                started = spawn()
            except (OSError, ValueError):
                started = None
            with self._lock:
                self._starting = None
                if started is not None:
                    self._ready[spec.trial_id] = (spec, *started)
                self._changed.notify_all()


def _end(popen: subprocess.Popen[bytes]) -> None:
    """Close the launcher's pipe (it exits 125 at end of file) and reap it."""
    try:
        if popen.stdin is not None:
            popen.stdin.close()
    except OSError:
        pass
    try:
        popen.wait(_EXIT_WAIT)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()
