"""Curvefitting: stop a trial whose learning curve is predicted to end well below the best
completed trial's (NNI's Curvefitting assessor, after Domhan et al., IJCAI 2015)."""

from __future__ import annotations

import math
from typing import Any

from nascli.assessor import AssessorArgumentError, AssessResult, ExplainingAssessor, decode, encode
from nascli.assessors.curves import extrapolate

__all__ = ["CurvefittingAssessor"]


class CurvefittingAssessor(ExplainingAssessor):
    """At step ``start_step`` and every ``gap`` steps after it, extrapolate the trial's curve to
    step ``epoch_num`` (``nascli.assessors.curves``) and stop the trial when the prediction is
    worse than ``threshold`` times the best final result of the completed trials.

    Goes on (Good) while no trial has completed, before ``start_step``, off the ``gap``, once the
    curve reached ``epoch_num`` (its real value is then known), and when the curve has fewer than
    3 finite points or cannot be extrapolated. The best is updated from the curve of the trial
    that completed (NNI updates it from the last *assessed* curve, whichever trial that was);
    a trial's final result is its last finite intermediate result. Failed, cancelled and
    early-stopped trials never set the best.

    The threshold is relative to the best's magnitude, so negative metrics work too: when
    maximizing the bar is ``best - (1 - threshold) * |best|`` (``best * threshold`` for a
    positive metric), when minimizing ``best + (threshold - 1) * |best|``.

    Args:
        epoch_num: the number of intermediate results a complete trial reports (NNI requires it;
            here by default the longest curve of the completed trials).
        start_step: the first step assessed (default 6, NNI's); at least 3.
        threshold: default 0.95 when maximizing (stop below 95 % of the best), 1.05 when
            minimizing; must be in (0, 1] when maximizing and >= 1 when minimizing.
        gap: assess every ``gap`` steps from ``start_step`` (default 1).
        optimize_mode: ``maximize`` (default) or ``minimize``.
    """

    def __init__(
        self,
        epoch_num: int | None = None,
        start_step: int = 6,
        threshold: float | None = None,
        gap: int = 1,
        optimize_mode: str = "maximize",
    ):
        problems: list[str] = []
        super().__init__(optimize_mode, problems)
        if epoch_num is not None and not _is_int(epoch_num, 1):
            problems.append(f"classArgs.epoch_num must be an integer >= 1, got {epoch_num!r}")
        if not _is_int(start_step, 3):
            problems.append(
                f"classArgs.start_step must be an integer >= 3 (a curve needs 3 points to be "
                f"extrapolated), got {start_step!r}"
            )
        elif epoch_num is not None and _is_int(epoch_num, 1) and start_step > epoch_num:
            problems.append(
                f"classArgs.start_step ({start_step}) must not exceed epoch_num ({epoch_num})"
            )
        if not _is_int(gap, 1):
            problems.append(f"classArgs.gap must be an integer >= 1, got {gap!r}")
        if threshold is None:
            threshold = 0.95 if self._maximize else 1.05
        elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            problems.append(f"classArgs.threshold must be a number, got {threshold!r}")
        elif self._maximize and not 0 < threshold <= 1:
            problems.append(
                f"classArgs.threshold must be in (0, 1] when maximizing (stop below that share "
                f"of the best), got {threshold!r}"
            )
        elif not self._maximize and threshold < 1:
            problems.append(
                f"classArgs.threshold must be >= 1 when minimizing (stop above that multiple "
                f"of the best; below 1 would stop trials predicted to beat it), got {threshold!r}"
            )
        if problems:
            raise AssessorArgumentError(problems)
        self.epoch_num = epoch_num
        self.start_step = start_step
        self.threshold = float(threshold)
        self.gap = gap
        self._best: float | None = None  # signed: larger is better
        self._longest = 0  # the longest completed curve (epoch_num's default)
        self._running: dict[str, list[float]] = {}  # signed curves of running trials

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        values = self.signed(trial_history)
        self._running[trial_job_id] = values
        step = len(values)
        target = self.epoch_num or self._longest
        if (
            self._best is None
            or step < self.start_step
            or (step - self.start_step) % self.gap
            or step >= target
        ):
            return AssessResult.Good
        predicted = extrapolate(values, target)
        if predicted is None:
            return AssessResult.Good
        margin = (1 - self.threshold) if self._maximize else (self.threshold - 1)
        bar = self._best - margin * abs(self._best)  # signed, so the same form in both modes
        if predicted >= bar:
            return AssessResult.Good
        return self.bad(
            trial_job_id,
            f"its curve is predicted to reach {self.shown(predicted)} at step {target}, worse "
            f"than {self.shown(bar)} ({self.threshold:g} x the best completed trial's "
            f"{self.shown(self._best)})",
        )

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        values = self._running.pop(trial_job_id, None)
        super().trial_end(trial_job_id, success)
        if not success or not values:
            return
        finite = [v for v in values if math.isfinite(v)]
        self._longest = max(self._longest, len(values))
        if finite and (self._best is None or finite[-1] > self._best):
            self._best = finite[-1]

    def save_checkpoint(self) -> dict[str, Any]:
        running = {k: [encode(v) for v in vs] for k, vs in self._running.items()}
        return {"best": self._best, "longest": self._longest, "running": running}

    def load_checkpoint(self, state: Any) -> None:
        self._best = state["best"]
        self._longest = int(state["longest"])
        self._running = {k: [decode(v) for v in vs] for k, vs in state["running"].items()}


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low
