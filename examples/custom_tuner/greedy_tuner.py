"""A custom tuner: greedy local search. Loaded from a config as

    tuner:
      codeDir: examples/custom_tuner
      classFileName: greedy_tuner.py
      className: GreedyTuner
      classArgs: {optimize_mode: maximize, seed: 0, explore: 0.2}

Subclass ``tuners.Tuner`` and implement ``_propose``: the base class handles the search space,
parameters, results, seeds and checkpoints.
"""

from __future__ import annotations

from tuners import EvolutionTuner, TunerArgumentError


class GreedyTuner(EvolutionTuner):
    """Mutate the best architecture so far; with probability ``explore`` try a random one."""

    def __init__(
        self, optimize_mode: str = "maximize", seed: int | None = None, explore: float = 0.2
    ):
        super().__init__(optimize_mode, seed, population_size=1, sample_size=1)
        if not 0.0 <= explore <= 1.0:
            raise TunerArgumentError(f"classArgs.explore must be within [0, 1], got {explore!r}")
        self.explore = explore

    def _propose(self, parameter_id: int):
        if not self.history or self.rng.random() < self.explore:
            return self.sample_new()
        best = max(self.history, key=lambda item: item[1])[0]
        return self.sample_new(lambda: self.mutate(best), attempts=50)
