"""A manager's hold on its experiment, from taking it to letting it go: the lock, the signals
that stop it and its log file (``holding``); whether the start is still wanted
(``start_withdrawn``); the experiment recorded as started or resumed, with disk space held back
to record a full disk (``take_experiment``); the trials an earlier manager left
(``left_behind``); why a run that raised ends (``failure_reason``).

Used by ``Manager.run`` and ``Manager._start``, in this order; separate so that the loop reads
without this plumbing. Every function runs in the manager's thread, with the lock held (but
``holding``, which takes it).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nascli.channel import read_launch_marker
from nascli.errors import ExperimentBusyError
from nascli.experiment.containment import Containment, carries_tag
from nascli.experiment.processes import process_token
from nascli.experiment.store import ExperimentRecord, ExperimentStore, StoreFullError, TrialRecord
from nascli.experiment.trials import Ledger, TrialStatus

__all__ = ["holding", "start_withdrawn", "take_experiment", "left_behind", "failure_reason"]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
T = TrialStatus
_MARKER_WAIT = 2.0  # seconds a live launcher of an unrecorded trial gets to write its marker


@contextmanager
def holding(
    store: ExperimentStore, log: logging.Logger, on_stop_signal: Callable[[], None] | None
) -> Iterator[None]:
    """Hold the experiment's manager lock, log ``log`` to its ``manager.log`` and, unless
    ``on_stop_signal`` is None, call it on SIGTERM, SIGINT and SIGHUP; all undone on exit.

    Raises:
        ExperimentBusyError: another manager holds the experiment.
    """
    lock = store.take_manager_lock()
    if lock is None:
        exp = store.experiment()
        raise ExperimentBusyError(
            f"experiment {exp.id} is already running (manager pid {exp.manager_pid})"
        )
    signals = _STOP_SIGNALS if on_stop_signal is not None else ()
    previous = {sig: signal.signal(sig, lambda *_: on_stop_signal()) for sig in signals}
    handler = logging.FileHandler(store.manager_log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)
        log.removeHandler(handler)
        handler.close()
        lock.release()


def start_withdrawn(store: ExperimentStore, token: str | None, log: logging.Logger) -> bool:
    """Whether the start request ``token`` (``control.start_manager``'s; None: started without
    one) was withdrawn by a ``stop`` before this manager took the lock: then it must not run."""
    if token is None or store.start_requested(token):
        return False
    log.info("experiment %s: start withdrawn by a stop", store.id)
    return True


def take_experiment(
    store: ExperimentStore, ledger: Ledger, exp: ExperimentRecord, log: logging.Logger
) -> None:
    """Record the experiment (``exp``, as read before the tuner was restored) as started, or
    resumed, by this process; then hold back the space that records a full disk later."""
    with store.transaction():
        ledger.start_experiment(
            exp.started is not None, started=exp.started or time.time(),
            manager_pid=(pid := os.getpid()), manager_token=process_token(pid),
        )  # fmt: skip
    log.info("experiment %s %s, pid %d", exp.id, "resumed" if exp.started else "started", pid)
    store.ensure_reserve()


def left_behind(store: ExperimentStore, ledger: Ledger) -> Iterator[TrialRecord]:
    """The trials an earlier manager left unfinished, one at a time: WAITING (to start again),
    RUNNING and EARLY_STOPPED without an end (to adopt or ingest, ``RunningTrials.recover``).

    A WAITING trial with a launch marker was started by a manager that died before recording
    it: it is recorded RUNNING (with its launcher's pid while that process still carries the
    trial's tag) and comes out RUNNING, to be adopted, never run twice. A launcher that lives
    but has not written its marker yet (the manager died right after starting it) is given
    ``_MARKER_WAIT`` seconds to write it."""
    containment = Containment(store.dir)
    for trial in store.trials([T.WAITING.value, T.RUNNING.value, T.EARLY_STOPPED.value]):
        trial_dir = store.trial_paths(trial.id).dir
        launched = read_launch_marker(trial_dir)
        if trial.status == T.WAITING and launched is None:
            launched = _await_marker(containment, trial_dir)
        if trial.status == T.WAITING and launched is not None:
            pid = launched if carries_tag(launched, trial_dir) else None
            with store.transaction():
                ledger.launch(trial.id, pid, None, None, trial.gpus)
            trial = store.trial(trial.id)
        if trial.status == T.EARLY_STOPPED and trial.ended is not None:
            continue
        yield trial


def _await_marker(containment: Containment, trial_dir: Path) -> int | None:
    deadline = time.monotonic() + _MARKER_WAIT
    while (launched := read_launch_marker(trial_dir)) is None and time.monotonic() < deadline:
        # By its tag, not its cgroup: a launcher this early may not have joined that yet.
        if not containment.members(trial_dir):
            return read_launch_marker(trial_dir)
        time.sleep(0.01)
    return launched


def failure_reason(exc: BaseException, store: ExperimentStore, log: logging.Logger) -> str:
    """Why the run ends on ``exc`` (as recorded with the experiment's end), logged. A full disk
    frees the held-back space first, so that the end can be recorded."""
    if isinstance(exc, StoreFullError):
        why = f"the disk is full: {exc}"
        log.error("%s; ending the trials", why)
        store.release_reserve()
        return why
    log.exception("manager failed")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"manager failed: {type(exc).__name__}: {exc}"
