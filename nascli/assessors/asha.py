"""ASHA: asynchronous successive halving (Li et al., MLSys 2020), as an assessor."""

from __future__ import annotations

import math
from typing import Any

from nascli.assessor import AssessorArgumentError, AssessResult, ExplainingAssessor, decode, encode

__all__ = ["AshaAssessor"]


class AshaAssessor(ExplainingAssessor):
    """Rungs at steps ``grace_period * reduction_factor**k`` (up to ``max_t``); a trial
    reaching a rung goes on only if its result at that step is not below the
    ``1 - 1/reduction_factor`` quantile of the results recorded at that rung by the trials that
    reached it before (so about the top ``1/reduction_factor`` go on); its result is then
    recorded there. The first trial at a rung always goes on. As Ray Tune's ``ASHAScheduler``
    (one bracket, linear-interpolated quantile, Ray's defaults) and Optuna's
    ``SuccessiveHalvingPruner``, trials are stopped and never paused, and every trial that
    reached a rung counts there, whatever happened to it later (a trial stopped at a rung is
    recorded at that rung only). It needs no completed trial, so it saves compute from the
    second trial on.

    A curve that jumps past several rungs at once (results read in a batch) is judged at each
    rung it crossed, with its result at that rung's step. Non-finite results count as the worst
    value.

    Args:
        reduction_factor: η, at least 2 (default 4, Ray's and Optuna's).
        grace_period: the first rung's step, at least 1 (default 1).
        max_t: no rung above this step (default: none; trials end when they end).
        optimize_mode: ``maximize`` (default) or ``minimize``.
    """

    def __init__(
        self,
        reduction_factor: float = 4,
        grace_period: int = 1,
        max_t: int | None = None,
        optimize_mode: str = "maximize",
    ):
        problems: list[str] = []
        super().__init__(optimize_mode, problems)
        if (
            isinstance(reduction_factor, bool)
            or not isinstance(reduction_factor, (int, float))
            or not reduction_factor >= 2
        ):
            problems.append(
                f"classArgs.reduction_factor must be a number >= 2, got {reduction_factor!r}"
            )
        if isinstance(grace_period, bool) or not isinstance(grace_period, int) or grace_period < 1:
            problems.append(f"classArgs.grace_period must be an integer >= 1, got {grace_period!r}")
        if max_t is not None and (
            isinstance(max_t, bool) or not isinstance(max_t, int) or max_t < 1
        ):
            problems.append(f"classArgs.max_t must be an integer >= 1, got {max_t!r}")
        elif max_t is not None and isinstance(grace_period, int) and max_t < grace_period:
            problems.append(
                f"classArgs.max_t ({max_t}) must be at least grace_period ({grace_period})"
            )
        if problems:
            raise AssessorArgumentError(problems)
        self.reduction_factor = float(reduction_factor)
        self.grace_period = grace_period
        self.max_t = max_t
        self._recorded: dict[int, dict[str, float]] = {}  # rung step -> trial -> signed value

    def rungs_up_to(self, step: int) -> list[int]:
        """The rung steps <= ``step`` (and <= ``max_t``), ascending."""
        rungs = []
        k = 0
        while True:
            rung = math.ceil(self.grace_period * self.reduction_factor**k - 1e-9)
            if rung > step or (self.max_t is not None and rung > self.max_t):
                return rungs
            if not rungs or rung > rungs[-1]:
                rungs.append(rung)
            k += 1

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        values = self.signed(trial_history)
        for rung in self.rungs_up_to(len(values)):
            recorded = self._recorded.setdefault(rung, {})
            if trial_job_id in recorded:
                continue
            value = values[rung - 1]
            cutoff = _quantile(sorted(recorded.values()), 1 - 1 / self.reduction_factor)
            recorded[trial_job_id] = value
            if cutoff is not None and value < cutoff:
                return self.bad(
                    trial_job_id,
                    f"its result {self.shown(value)} at rung {rung} is worse than "
                    f"{self.shown(cutoff)}, the {self._share()} cutoff of the "
                    f"{len(recorded) - 1} trial(s) that reached step {rung} before it",
                )
        return AssessResult.Good

    def _share(self) -> str:
        return f"top-{100 / self.reduction_factor:g}%"

    def save_checkpoint(self) -> dict[str, Any]:
        return {
            "recorded": [
                [rung, {t: encode(v) for t, v in trials.items()}]
                for rung, trials in self._recorded.items()
            ]
        }

    def load_checkpoint(self, state: Any) -> None:
        self._recorded = {
            int(rung): {t: decode(v) for t, v in trials.items()}
            for rung, trials in state["recorded"]
        }


def _quantile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of ascending ``ordered`` with linear interpolation (numpy's default);
    ``-inf`` entries stay the lowest; None when empty."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    frac = position - low
    a, b = ordered[low], ordered[high]
    if frac == 0 or a == b:
        return a
    if a == -math.inf:
        return -math.inf
    return a + (b - a) * frac
