"""The manager's link to the experiment's assessor (early stopping).

The manager calls one ``Assessment`` (in its own thread, inside the turn's transaction):

- ``start()`` once, before the loop: builds the assessor, restores its checkpoint and replays
  the calls logged after it (verdicts ignored), so its state is what it was before a crash;
- ``observe(trial_id, new_results)`` with each running trial's new intermediate results, right
  after they are stored: the assessor is asked once per result, in order; the first ``Bad``
  returns an ``EarlyStop`` (the manager records ``EARLY_STOPPED`` with its reason, commits,
  then signals the trial) and the trial is never assessed again;
- ``ended(trial_id, success, new_results)`` when a trial's end is recorded: results that came
  with the exit are assessed (verdicts change nothing: the trial is over), then
  ``trial_end(trial_id, success)``, for trials that reported any intermediate result;
- ``save()`` when the turn's transaction commits: the turn's calls are appended to the store's
  assessor log, and every ``CHECKPOINT_EVERY`` turns (and at the end, ``finish()``) the
  assessor's checkpoint replaces the log.

The assessor runs in a worker thread and every call is waited for at most ``timeout`` seconds.
An assessor that raises is treated as ``Good`` for that call: the trial keeps running, the
first error is logged (``manager.log``, events) and recorded for ``nascli status``. One that
does not answer in time is switched off for the rest of the run (its thread may be stuck in the
middle of a change): no trial is stopped early any more, and ``status`` says why. Without an
``assessor`` section every method does nothing.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nascli.assessor import AssessResult, as_verdict
from nascli.experiment.config import AssessorConfig
from nascli.experiment.store import ExperimentStore

__all__ = ["Assessment", "EarlyStop", "ASSESS_TIMEOUT", "CHECKPOINT_EVERY"]

log = logging.getLogger("nascli.manager")

ASSESS_TIMEOUT = 30.0  # seconds one call may take before the assessor is switched off
CHECKPOINT_EVERY = 32  # turns with assessor calls between two checkpoints


@dataclass(frozen=True)
class EarlyStop:
    """An assessor's ``Bad`` verdict: the trial, the step (number of intermediate results) it
    was judged at, and the reason recorded with ``EARLY_STOPPED``."""

    trial_id: str
    step: int
    reason: str


class _Hung(Exception):
    pass


class _Worker:
    """One daemon thread that runs the assessor's calls, so that a call can be given up on."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="nascli-assessor", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            fn, box, done = self._jobs.get()
            try:
                box.append((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box.append((False, exc))
            done.set()

    def call(self, fn: Callable[[], Any], timeout: float) -> Any:
        box: list[tuple[bool, Any]] = []
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(timeout):
            raise _Hung
        ok, value = box[0]
        if not ok:
            raise value
        return value


class Assessment:
    """See the module docstring. ``config`` is the experiment's ``assessor`` section (None: no
    early stopping)."""

    def __init__(
        self,
        config: AssessorConfig | None,
        store: ExperimentStore,
        timeout: float = ASSESS_TIMEOUT,
    ):
        self.config = config
        self.store = store
        self.timeout = timeout
        self.label = config.label if config is not None else None
        self.error: str | None = None  # the first error, as status shows it
        self.switched_off: str | None = None
        self.failures = 0  # calls that raised in this run
        self._assessor: Any = None
        self._worker: _Worker | None = None
        self._histories: dict[str, list[Any]] = {}
        self._stopped: set[str] = set()
        self._calls: list[list[Any]] = []
        self._turns_logged = 0
        self._checkpoint_due = False
        self._error_dirty = False

    @property
    def assessor(self) -> Any:
        """The assessor (None without an ``assessor`` section, or before ``start``)."""
        return self._assessor

    @property
    def active(self) -> bool:
        return self._assessor is not None and self.switched_off is None

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Build the assessor, restore its checkpoint and replay the logged calls.

        Raises:
            UsageError: the assessor cannot be built any more (e.g. its file was removed).
        """
        if self.config is None:
            return
        from nascli.experiment.prepare import build_assessor

        self._assessor = build_assessor(self.config)
        self._worker = _Worker()
        self.store.ensure_assessor_tables()
        self.error = self.store.assessor_error()
        state, calls = self.store.assessor_checkpoint()
        if state is not None:
            self._call(lambda: self._assessor.load_checkpoint(state), "load_checkpoint")
        histories: dict[str, list[Any]] = {}
        for call in calls:
            if not self.active:
                break
            kind, tid = call[0], call[1]
            if kind == "assess":
                if tid not in histories:
                    histories[tid] = self.store.intermediate_results(tid)
                history = histories[tid][: call[2]]
                self._call(lambda t=tid, h=history: self._assessor.assess_trial(t, h),
                           "assess_trial")  # fmt: skip
            else:
                self._call(lambda t=tid, s=call[2]: self._assessor.trial_end(t, s), "trial_end")
        # the replayed calls stay in the log until the next checkpoint, which includes them
        self._checkpoint_due = bool(calls)
        if calls:
            log.info("assessor restored from its checkpoint and %d logged call(s)", len(calls))

    # ------------------------------------------------------------------ the manager's calls

    def observe(self, trial_id: str, new_results: list[Any]) -> EarlyStop | None:
        """A running trial's new intermediate results (already in the store)."""
        if not self.active or not new_results or trial_id in self._stopped:
            return None
        history, first = self._history(trial_id, new_results)
        for step in range(first + 1, len(history) + 1):
            verdict = self._assess(trial_id, history[:step])
            if verdict is AssessResult.Bad:
                self._stopped.add(trial_id)
                return EarlyStop(trial_id, step, self._reason(trial_id, step))
            if not self.active:
                return None
        return None

    def verdict(self, record: Any, new: list[Any]) -> str | None:
        """The manager's ``collector.Assess`` hook: a running trial's new intermediate metric
        records; the reason it should stop, or None."""
        stop = self.observe(record.id, [r.value for r in new])
        return None if stop is None else stop.reason

    def ended(
        self, trial_id: str, success: bool, new_results: list[Any], stopped: bool = False
    ) -> None:
        """A trial's end is being recorded; ``new_results`` came with its exit. ``stopped``: it
        was early-stopped (perhaps by the manager run before a restart), so it is not assessed
        again."""
        if not self.active:
            return
        if new_results or trial_id in self._histories:
            history, first = self._history(trial_id, new_results)
        else:  # nothing new: what the store holds was assessed while it ran, if anything
            history = self.store.intermediate_results(trial_id)
            first = len(history)
        if not stopped and trial_id not in self._stopped:
            for step in range(first + 1, len(history) + 1):
                self._assess(trial_id, history[:step])
                if not self.active:
                    return
        self._histories.pop(trial_id, None)
        self._stopped.discard(trial_id)
        if history:
            self._calls.append(["end", trial_id, success])
            self._call(lambda: self._assessor.trial_end(trial_id, success), "trial_end")

    def save(self) -> None:
        """Inside the turn's transaction: log this turn's calls, or write a checkpoint when one
        is due; record a new error."""
        if self._error_dirty:
            self._error_dirty = False
            self.store.set_assessor_error(self.error)
        if self._assessor is None or not self._calls:
            return
        if self.switched_off is None and (
            self._checkpoint_due or self._turns_logged + 1 >= CHECKPOINT_EVERY
        ):
            state = self._call(self._assessor.save_checkpoint, "save_checkpoint")
            if state is not None:
                try:
                    text = json.dumps(state, allow_nan=False, separators=(",", ":"))
                except (TypeError, ValueError) as exc:
                    self._failed("save_checkpoint", exc)
                else:
                    self.store.save_assessor_state(text)
                    self._calls, self._turns_logged, self._checkpoint_due = [], 0, False
                    return
        self.store.append_assessor_calls(self._calls)
        self._calls = []
        self._turns_logged += 1
        self._checkpoint_due = False

    def finish(self) -> None:
        """The experiment ends: the next ``save`` writes a checkpoint (when there are calls)."""
        self._checkpoint_due = True

    # ------------------------------------------------------------------ internals

    def _history(self, trial_id: str, new_results: list[Any]) -> tuple[list[Any], int]:
        history = self._histories.get(trial_id)
        if history is None:
            # first seen in this run (a new trial, or one running when the manager restarted):
            # what the store holds already includes the new results
            history = self._histories[trial_id] = self.store.intermediate_results(trial_id)
            return history, max(0, len(history) - len(new_results))
        first = len(history)
        history.extend(new_results)
        return history, first

    def _assess(self, trial_id: str, history: list[Any]) -> AssessResult:
        self._calls.append(["assess", trial_id, len(history)])
        value = self._call(lambda: self._assessor.assess_trial(trial_id, list(history)),
                           "assess_trial")  # fmt: skip
        if value is None and self.switched_off is not None:
            return AssessResult.Good
        try:
            return as_verdict(value)
        except TypeError as exc:
            self._failed("assess_trial", exc)
            return AssessResult.Good

    def _reason(self, trial_id: str, step: int) -> str:
        why = None
        stop_reason = getattr(self._assessor, "stop_reason", None)
        if callable(stop_reason):
            why = self._call(lambda: stop_reason(trial_id), "stop_reason")
        return f"{self.label} at step {step}: {why or 'assess_trial returned Bad'}"

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run one assessor call in the worker; None when it raised or hung (recorded)."""
        assert self._worker is not None
        try:
            return self._worker.call(fn, self.timeout)
        except _Hung:
            self.switched_off = (
                f"{self.label}: {what} did not answer within {self.timeout:g} s; early stopping "
                "is off until the experiment is resumed"
            )
            log.error("assessor %s", self.switched_off)
            self._record(self.switched_off)
            return None
        except Exception as exc:  # noqa: BLE001 - an assessor bug must not end the experiment
            self._failed(what, exc)
            return None

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:  # logged and recorded once: an assessor may fail on every call
            message = f"{self.label}: {what} raised {type(exc).__name__}: {exc}"
            log.error("assessor %s (the trial goes on; later errors are counted, not logged)",
                      message, exc_info=exc)  # fmt: skip
            self._record(message)

    def _record(self, message: str) -> None:
        self.error = message
        self._error_dirty = True
        self.store.add_event("assessor_error", message)
