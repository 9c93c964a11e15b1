"""The assessor contract (NNI's ``nni.assessor``): deciding early whether a trial is worth
finishing.

An NNI assessor ports by changing its import to ``from nascli.assessor import Assessor,
AssessResult``. Lifecycle, as the experiment manager drives it (``nascli/experiment/
assessment.py``):

1. The assessor is built once from the config's ``assessor`` section (``classArgs`` are its
   constructor's keyword arguments), before any trial starts, and again on ``resume``.
2. ``assess_trial(trial_job_id, trial_history)`` each time a running trial reports a new
   intermediate result, once per result and in order: ``trial_history`` is the list of that
   trial's intermediate results so far (the exact values given to
   ``nascli.report_intermediate_result``: numbers, or dicts with a numeric ``default``). It
   returns ``AssessResult.Good`` (let it run) or ``AssessResult.Bad`` (stop it); ``True`` and
   ``False`` are accepted for them. On ``Bad`` the trial is recorded ``EARLY_STOPPED`` and its
   processes are stopped; it is never assessed again. Results that arrive with the trial's exit
   are assessed too (so the assessor has the whole curve), but a verdict on a trial that already
   ended changes nothing.
3. ``trial_end(trial_job_id, success)`` once per trial that reported at least one intermediate
   result, when it ended: ``success`` is True only for a trial that completed (SUCCEEDED);
   failed, cancelled and early-stopped trials end with False.
4. ``save_checkpoint()`` after the calls of some turns, returning JSON-serialisable state, or
   None (the default) when the assessor cannot save itself; ``load_checkpoint(state)`` on a fresh
   instance on ``resume``. The manager also logs every call made since the last checkpoint and
   replays them on ``resume`` (verdicts are ignored while replaying), so an assessor whose
   decisions depend only on the calls it received is in the same state after a crash and
   ``resume`` as without the crash; one that returns None is rebuilt by replaying every call.

Calls come from one thread, one at a time. An assessor that raises is treated as ``Good`` for
that call (the trial keeps running; the error is logged once and shown by ``nascli status``); one
that does not answer within the manager's time limit is switched off for the rest of the run.

Differences from NNI: ``save_checkpoint`` returns the state and ``load_checkpoint`` takes it (as
for nascli's tuners) instead of writing to a directory; ``assess_trial`` always receives the
trial id (``CustomizeAssessor.md`` shows it without one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any

from nascli.errors import UsageError

__all__ = [
    "Assessor",
    "AssessResult",
    "AssessorArgumentError",
    "scalar_history",
    "signed_history",
    "check_optimize_mode",
    "as_verdict",
    "ExplainingAssessor",
]


class AssessResult(Enum):
    """An assessor's verdict on a running trial."""

    Good = True
    Bad = False


class AssessorArgumentError(UsageError):
    """An assessor (its name, class or ``classArgs``) is invalid; ``problems`` lists every
    problem found, one line each."""

    def __init__(self, problems: str | Iterable[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class Assessor:
    """Base class of assessors; see the module docstring for when each method is called."""

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult | bool:
        """Whether the trial should go on (``Good``) or be stopped now (``Bad``)."""
        raise NotImplementedError

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """The trial ended; ``success`` is True only when it completed."""

    def save_checkpoint(self) -> Any:
        """JSON-serialisable state, or None when this assessor cannot save itself."""
        return None

    def load_checkpoint(self, state: Any) -> None:
        """Restore what ``save_checkpoint`` returned (on a freshly built instance)."""

    def stop_reason(self, trial_job_id: str) -> str | None:
        """Optional (not in NNI): why the last ``Bad`` verdict on this trial was given, e.g. the
        value it lost against; recorded with the trial's ``EARLY_STOPPED`` status."""
        return None


class ExplainingAssessor(Assessor):
    """What the built-in assessors share (a user's may build on it too): the metric's direction
    (``optimize_mode``), results signed so that larger is better, and the reason of each
    ``Bad`` verdict, kept until the trial ends.

    A subclass calls ``super().__init__(optimize_mode, problems)`` first (an invalid mode is
    appended to ``problems``), judges ``self.signed(trial_history)``, and returns
    ``self.bad(trial_job_id, why)`` to stop a trial; ``self.shown(v)`` writes a signed value
    as the metric reported it. A subclass's ``trial_end`` calls ``super().trial_end``.
    """

    def __init__(self, optimize_mode: str, problems: list[str]) -> None:
        self.optimize_mode = optimize_mode
        self._maximize = check_optimize_mode(optimize_mode, problems)
        self._why: dict[str, str] = {}

    def signed(self, trial_history: Sequence[Any]) -> list[float]:
        return signed_history(trial_history, self._maximize)

    def shown(self, signed: float) -> str:
        return show(signed if self._maximize else -1.0 * signed)

    def bad(self, trial_job_id: str, why: str) -> AssessResult:
        """Record ``why`` (``stop_reason``) and return ``Bad``."""
        self._why[trial_job_id] = why
        return AssessResult.Bad

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        self._why.pop(trial_job_id, None)

    def stop_reason(self, trial_job_id: str) -> str | None:
        return self._why.get(trial_job_id)


def as_verdict(value: Any) -> AssessResult:
    """An ``assess_trial`` return value as an ``AssessResult``. Raises ``TypeError`` for anything
    but an ``AssessResult`` or a bool (as NNI does)."""
    if isinstance(value, AssessResult):
        return value
    if isinstance(value, bool):
        return AssessResult.Good if value else AssessResult.Bad
    raise TypeError(f"assess_trial must return AssessResult.Good/Bad or a bool, got {value!r}")


def check_optimize_mode(value: Any, problems: list[str]) -> bool:
    """True for ``maximize``; appends a problem for anything but maximize/minimize."""
    if value not in ("maximize", "minimize"):
        problems.append(f"classArgs.optimize_mode must be 'maximize' or 'minimize', got {value!r}")
    return value != "minimize"


def _number(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value.get("default")
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def scalar_history(trial_history: Sequence[Any]) -> list[float]:
    """Intermediate results as floats (a dict's ``default``); anything that is not a number
    becomes NaN."""
    return [_number(v) for v in trial_history]


def signed_history(trial_history: Sequence[Any], maximize: bool) -> list[float]:
    """Intermediate results signed so that larger is better; NaN, infinities and non-numbers
    become ``-inf``, the worst value (a diverged loss or a broken metric is never a reason to
    keep a trial, and never raises the bar for others)."""
    sign = 1.0 if maximize else -1.0
    return [sign * v if math.isfinite(v) else -math.inf for v in scalar_history(trial_history)]


def encode(value: float) -> float | None:
    """A signed value for JSON (``-inf`` -> None)."""
    return value if math.isfinite(value) else None


def decode(value: float | None) -> float:
    return -math.inf if value is None else float(value)


def show(value: float) -> str:
    return f"{value:.6g}"
