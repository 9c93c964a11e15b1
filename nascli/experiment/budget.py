"""The experiment's time budget (``maxExecDuration``): the time used over all of its runs.

The store keeps the time used (``exec_seconds``), so a resumed experiment counts on from where
it stopped. One ``Budget`` per manager, in the manager's thread: ``used()`` / ``left()`` /
``spent()`` read the clock, ``record()`` stores the time used (at most every ``RECORD_EVERY``
seconds; the manager calls it every tick, inside its turn's transaction).
"""

from __future__ import annotations

import time

from nascli.experiment.store import ExperimentStore

__all__ = ["Budget", "RECORD_EVERY"]

RECORD_EVERY = 5.0  # seconds between two records of the time used


class Budget:
    """``limit`` seconds in all, ``used_before`` of them by earlier runs."""

    def __init__(self, store: ExperimentStore, limit: float, used_before: float) -> None:
        self.store, self.limit = store, limit
        self.reason = f"maxExecDuration {limit} s reached"
        self._used_before, self._since = used_before, time.monotonic()
        self._recorded = 0.0

    def used(self) -> float:
        return self._used_before + (time.monotonic() - self._since)

    def left(self) -> float:
        return self.limit - self.used()

    def spent(self) -> bool:
        return self.used() >= self.limit

    def record(self) -> None:
        now = time.monotonic()
        if now - self._recorded >= RECORD_EVERY:
            self._recorded = now
            self.store.update_experiment(exec_seconds=self.used())
