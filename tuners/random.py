"""``Random``: uniform random architectures, never the same one twice."""

from __future__ import annotations

from tuners.base import Architecture, Tuner

__all__ = ["RandomTuner"]


class RandomTuner(Tuner):
    """Samples every decision uniformly (an input choice with ``n_chosen: null`` includes each
    input with probability 1/2). Architectures already proposed are skipped; once every one of
    the space has been proposed, raises ``NoMoreTrialError``."""

    replayable = True

    def _propose(self, parameter_id: int) -> Architecture:
        return self.sample_new()
