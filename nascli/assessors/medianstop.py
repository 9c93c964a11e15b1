"""Medianstop: NNI's median stopping rule (Golovin et al., "Google Vizier", KDD 2017)."""

from __future__ import annotations

import math
from typing import Any

from nascli.assessor import AssessorArgumentError, AssessResult, ExplainingAssessor, decode, encode

__all__ = ["MedianstopAssessor"]


class MedianstopAssessor(ExplainingAssessor):
    """Stop a trial at step S when its best result up to S is strictly worse than the median of
    the running averages at S of the completed trials that reached S.

    As NNI (and Vizier, Ray's ``MedianStoppingRule``), the references are the *running
    averages* of completed trials (Optuna's ``MedianPruner`` takes their raw values at S);
    the median is the lower one when maximizing and the upper one when minimizing (NNI's). Only
    trials that completed count: failed, cancelled and early-stopped ones never enter the
    references. With no completed trial that reached S, the trial goes on. Steps before
    ``start_step`` are never assessed.

    Non-finite results (NaN, inf, non-numbers) count as the worst value in the trial's own best
    and are left out of the references' running averages (a completed trial contributes no
    reference at a step before its first finite result).

    Args:
        optimize_mode: ``maximize`` (default) or ``minimize``, as the metric reported.
        start_step: the number of intermediate results a trial must have reported before it is
            assessed (default 0: from its first result).
    """

    def __init__(self, optimize_mode: str = "maximize", start_step: int = 0):
        problems: list[str] = []
        super().__init__(optimize_mode, problems)
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            problems.append(f"classArgs.start_step must be an integer >= 0, got {start_step!r}")
        if problems:
            raise AssessorArgumentError(problems)
        self.start_step = start_step
        self._running: dict[str, list[float]] = {}  # signed histories of running trials
        self._completed: dict[str, list[float | None]] = {}  # running averages (None: no value)

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        values = self.signed(trial_history)
        self._running[trial_job_id] = values
        step = len(values)
        if step == 0 or step < self.start_step:
            return AssessResult.Good
        references = sorted(
            avg
            for averages in self._completed.values()
            if len(averages) >= step and (avg := averages[step - 1]) is not None
        )
        if not references:
            return AssessResult.Good
        median = references[(len(references) - 1) // 2]
        best = max(values)
        if best >= median:
            return AssessResult.Good
        return self.bad(
            trial_job_id,
            f"its best result {self.shown(best)} is worse than {self.shown(median)}, the median "
            f"of the running averages at step {step} of {len(references)} completed trial(s)",
        )

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        values = self._running.pop(trial_job_id, None)
        super().trial_end(trial_job_id, success)
        if success and values:
            self._completed[trial_job_id] = _running_averages(values)

    def save_checkpoint(self) -> dict[str, Any]:
        return {
            "running": {k: [encode(v) for v in vs] for k, vs in self._running.items()},
            "completed": self._completed,
        }

    def load_checkpoint(self, state: Any) -> None:
        self._running = {k: [decode(v) for v in vs] for k, vs in state["running"].items()}
        self._completed = {k: list(vs) for k, vs in state["completed"].items()}


def _running_averages(values: list[float]) -> list[float | None]:
    averages: list[float | None] = []
    total, count = 0.0, 0
    for v in values:
        if math.isfinite(v):
            total += v
            count += 1
        averages.append(total / count if count else None)
    return averages
