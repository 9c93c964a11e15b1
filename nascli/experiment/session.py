"""Holding an experiment for a manager's life: its lock, the signals that stop it, its log file.

Used by ``Manager.run``; separate so that the loop reads without this plumbing.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from nascli.errors import ExperimentBusyError
from nascli.experiment.store import ExperimentStore

__all__ = ["holding"]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
