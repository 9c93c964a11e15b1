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
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from nascli.experiment.services.base import TrialSpec

__all__ = ["Standby"]

_GO = b"go\n"
_EXIT_WAIT = 1.0  # seconds a discarded launcher gets to read its end of file before SIGKILL

Spawn = Callable[[], "tuple[subprocess.Popen[bytes], Path | None]"]


class Standby:
    """The prepared launchers of one service, by trial id (the manager's thread only)."""

    def __init__(self) -> None:
        self._ready: dict[str, tuple[TrialSpec, subprocess.Popen[bytes], Path | None]] = {}

    def prepare(self, spec: TrialSpec, spawn: Spawn) -> None:
        """Start ``spec``'s launcher through ``spawn`` (waiting for its go), unless one is
        ready already. An error starting it is not raised: ``launch`` starts one then."""
        if spec.trial_id in self._ready:
            return
        try:
            popen, cgroup = spawn()
        except (OSError, ValueError):
            return
        self._ready[spec.trial_id] = (spec, popen, cgroup)

    def take(self, spec: TrialSpec) -> tuple[subprocess.Popen[bytes], Path | None] | None:
        """The prepared launcher of ``spec`` and its cgroup, told to go; None when there is
        none usable (none prepared, prepared for another spec, or gone meanwhile: then
        discarded)."""
        entry = self._ready.pop(spec.trial_id, None)
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
        """End the launcher prepared for ``trial_id``, if any; its cgroup stays (empty) for
        the trial's later launch or the experiment's end to remove."""
        entry = self._ready.pop(trial_id, None)
        if entry is not None:
            _end(entry[1])

    def discard_all(self) -> None:
        for trial_id in list(self._ready):
            self.discard(trial_id)


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
