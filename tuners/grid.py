"""``GridSearch``: every architecture of the search space exactly once."""

from __future__ import annotations

from typing import Any

from nascli import space as spaces
from tuners.base import Architecture, NoMoreTrialError, Tuner, TunerArgumentError

__all__ = ["GridSearchTuner"]


class GridSearchTuner(Tuner):
    """Proposes the architectures in a fixed lexicographic order, then raises
    ``NoMoreTrialError``. Refuses spaces larger than ``max_size`` architectures.

    Args:
        max_size: the largest space it accepts (default one million).
    """

    replayable = True

    def __init__(
        self, optimize_mode: str = "maximize", seed: int | None = None, max_size: int = 1_000_000
    ):
        super().__init__(optimize_mode, seed)
        if not isinstance(max_size, int) or max_size < 1:
            raise TunerArgumentError(
                f"classArgs.max_size must be a positive integer, got {max_size!r}"
            )
        self.max_size = max_size
        self._position = 0
        self._grid: list[Architecture] = []

    def update_search_space(self, search_space: Any) -> None:
        super().update_search_space(search_space)
        size = spaces.space_size(self.space)
        if size > self.max_size:
            raise TunerArgumentError(
                f"GridSearch: the search space has {size} architectures, more than max_size "
                f"({self.max_size}); use Random, Evolution or TPE, or raise classArgs.max_size"
            )
        self._grid = list(self.enumerate())

    def _propose(self, parameter_id: int) -> Architecture:
        while self._position < len(self._grid):
            arch = self._grid[self._position]
            self._position += 1
            if arch not in self.tried:  # e.g. imported results
                return arch
        raise NoMoreTrialError(f"GridSearch: all {len(self._grid)} architectures were proposed")

    def _save_own(self) -> Any:
        return {"position": self._position}

    def _load_own(self, state: Any) -> None:
        self._position = int(state["position"])
