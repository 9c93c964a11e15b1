"""Proposals ahead, for short trials: the next trial is proposed, committed and written to its
directory while every slot is busy, and started the moment an exit arrives, before that exit's
bookkeeping.

As Ray Tune keeps pending trials, this trades one result of tuner freshness for a slot that
never waits on the manager; it pays only when trials are short (the median of the recent ones
under ``below`` seconds, 1 s by default) and no GPUs are managed (a GPU set is only known once a
trial ends). Longer trials gain nothing, so their proposals are made when a slot frees, knowing
every result so far.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Callable

from nascli.experiment.store import TrialRecord

__all__ = ["ProposalsAhead", "AHEAD_BELOW"]

AHEAD_BELOW = 1.0  # seconds: trials shorter than this get the next proposal ready ahead


class ProposalsAhead:
    """The manager's bookkeeping of proposals made ahead. ``enabled`` is False when GPUs are
    managed; ``below`` 0 turns proposals ahead off."""

    def __init__(self, slots: int, below: float = AHEAD_BELOW, enabled: bool = True):
        self.slots = slots
        self.below = below
        self.enabled = enabled
        self._durations: collections.deque[float] = collections.deque(maxlen=8)
        self._ready: set[str] = set()  # pending trials whose directory and parameters are written

    def trial_ended(self, duration: float) -> None:
        self._durations.append(duration)

    def wanted(self, busy: int, pending: int, can_propose: bool) -> bool:
        """Whether to propose now: nothing pending, every slot busy, recent trials short."""
        return (
            self.enabled
            and can_propose
            and not pending
            and busy >= self.slots
            and len(self._durations) >= self.slots
            and statistics.median(self._durations) < self.below
        )

    def prepared(self, trial_id: str) -> None:
        """``trial_id`` (pending) has its directory and parameters written."""
        self._ready.add(trial_id)

    def forget(self, trial_id: str) -> None:
        self._ready.discard(trial_id)

    def take(
        self, pending: list[TrialRecord], exits: int, startable: Callable[[TrialRecord], bool]
    ) -> list[TrialRecord]:
        """Pop the prepared trials at the head of ``pending`` to start now, one per exit that
        just arrived; stops at the first one not ``startable`` (the turn then deals with it)."""
        taken = []
        while exits > 0 and pending and pending[0].id in self._ready and startable(pending[0]):
            trial = pending.pop(0)
            self._ready.discard(trial.id)
            taken.append(trial)
            exits -= 1
        return taken
