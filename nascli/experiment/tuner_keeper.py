"""The tuner keeper: every call the manager makes to its tuner, and the tuner's durability.

The manager asks (``ask``) and tells (``tell``) through the keeper, never the tuner itself. The
keeper validates each proposal once against the search space, counts parameter ids, and turns any
tuner problem into a ``TunerFailedError`` (the search ends; the manager goes on cancelling or
finishing trials). ``NoMoreTrialError`` passes through: the tuner is exhausted.

Durability, inside the manager's turn transaction (``save``): the tuner's checkpoint grows with
the history (2 ms and 65 KB per write at 1000 trials), so for a ``replayable`` tuner (every
built-in one: after ``load_checkpoint`` the same calls give the same results) a turn only appends
the calls it made (ask, tell, end) to the store's tuner log; the whole checkpoint is written
every ``CHECKPOINT_EVERY`` turns, at the end, and after anything unusual (a tuner error, no more
proposals). Other tuners are checkpointed every turn. ``restore`` loads the checkpoint and
replays the log through the tuner's public contract (``generate_parameters``,
``receive_trial_result``, ``trial_end`` and, should a replayed proposal differ from the logged
one, ``record_proposal``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nascli import space as spaces
from nascli.errors import NoMoreTrialError, TunerFailedError, UsageError
from nascli.experiment.config import TunerConfig
from nascli.experiment.prepare import build_tuner
from nascli.experiment.store import ExperimentStore
from tuners.base import Tuner

__all__ = ["TunerKeeper", "CHECKPOINT_EVERY"]

log = logging.getLogger("nascli.manager")

CHECKPOINT_EVERY = 32  # turns: how many turns' tuner calls are logged between checkpoints


class TunerKeeper:
    """Owns one experiment's tuner for its manager (see the module docstring)."""

    def __init__(self, store: ExperimentStore, tuner: Tuner, space: spaces.SearchSpace):
        self.store = store
        self.tuner = tuner
        self.space = space
        self.next_parameter_id = store.experiment().next_parameter_id
        self._calls: list[list[Any]] = []  # this turn's, for the tuner log
        self._dirty = False
        self._logged_turns = 0  # turns in the tuner log since the checkpoint
        self._checkpoint_due = True  # the next save writes the whole checkpoint

    @classmethod
    def restore(cls, store: ExperimentStore, config: TunerConfig) -> TunerKeeper:
        """The tuner built from the config, brought back to where the last manager left it."""
        space = spaces.load_search_space(store.search_space_file)
        keeper = cls(store, build_tuner(config, spaces.search_space_to_json(space)), space)
        state = store.experiment().tuner_state
        if state is not None:
            keeper.tuner.load_checkpoint(state)
        store.ensure_tuner_log()
        keeper._replay(store.tuner_calls())
        return keeper

    def ask(self) -> tuple[int, dict[str, Any]]:
        """The next parameter id and the tuner's proposal for it (validated).

        Raises:
            NoMoreTrialError: the tuner has nothing more to propose.
            TunerFailedError: it raised, or proposed parameters that do not fit the space.
        """
        parameter_id = self.next_parameter_id
        self._dirty = True
        try:
            parameters = self.tuner.generate_parameters(parameter_id)
            spaces.parse_parameters(self.space, parameters, "the tuner's proposal")
        except NoMoreTrialError:
            self._checkpoint_due = True
            raise
        except UsageError as exc:
            self._checkpoint_due = True
            raise TunerFailedError(f"the tuner proposed invalid parameters: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - a tuner bug ends the search, not the manager
            raise self._failed(exc) from exc
        self._calls.append(["ask", parameter_id, parameters])
        self.next_parameter_id = parameter_id + 1  # stored with the tuner checkpoint
        return parameter_id, parameters

    def tell(
        self, parameter_id: int, parameters: dict[str, Any], success: bool, final: Any,
        with_result: bool | None = None,
    ) -> None:
        """A trial of ``parameter_id`` ended: its final result (if it succeeded), then its end.

        Raises:
            TunerFailedError: the tuner raised.
        """
        self._dirty = True
        try:
            if success if with_result is None else with_result:
                self.tuner.receive_trial_result(parameter_id, parameters, final)
                self._calls.append(["tell", parameter_id, parameters, final])
            self.tuner.trial_end(parameter_id, success)
            self._calls.append(["end", parameter_id, success])
        except Exception as exc:  # noqa: BLE001 - a tuner bug ends the search, not the manager
            raise self._failed(exc) from exc

    def checkpoint_next(self) -> None:
        """Make the next ``save`` write the whole checkpoint (the log folded in), e.g. at the
        experiment's end or after anything unusual."""
        if self._logged_turns:
            self._checkpoint_due = self._dirty = True

    def save(self) -> TunerFailedError | None:
        """Inside the turn's transaction, if the tuner was asked or told anything: log this
        turn's calls, or write the whole checkpoint when one is due, with the proposal count
        that goes with it. A tuner whose state is not JSON fails here (returned, not raised, so
        the turn still commits what happened to its trials)."""
        if not self._dirty:
            return None
        self._dirty = False
        calls, self._calls = self._calls, []
        fields: dict[str, Any] = {"next_parameter_id": self.next_parameter_id}
        failure = None
        logged = self.tuner.replayable and not self._checkpoint_due
        if logged and self._logged_turns < CHECKPOINT_EVERY:
            self.store.append_tuner_calls(calls)
            self._logged_turns += 1
        else:
            try:
                fields["tuner_state_json"] = json.dumps(
                    self.tuner.save_checkpoint(), allow_nan=False, separators=(",", ":")
                )
            except Exception as exc:  # noqa: BLE001 - a tuner bug ends the search, not the manager
                failure = self._failed(exc)
            else:
                self.store.clear_tuner_calls()
                self._logged_turns = 0
                self._checkpoint_due = False
        self.store.update_experiment(**fields)
        return failure

    def _failed(self, exc: Exception) -> TunerFailedError:
        self._checkpoint_due = True
        log.exception("tuner failed")
        return TunerFailedError(f"the tuner failed: {type(exc).__name__}: {exc}")

    def _replay(self, calls: list[list[Any]]) -> None:
        """Bring the tuner restored from its checkpoint up to date with the calls logged after
        it (in order); the next save then writes a checkpoint."""
        for call in calls:
            kind, parameter_id = call[0], call[1]
            if kind == "ask":
                made = json.loads(json.dumps(self.tuner.generate_parameters(parameter_id)))
                if made != call[2]:
                    # Not expected of a replayable tuner; keep what the trial really runs.
                    log.warning("tuner replay: parameters %d differ from the log", parameter_id)
                    self.tuner.record_proposal(parameter_id, call[2])
            elif kind == "tell":
                self.tuner.receive_trial_result(parameter_id, call[2], call[3])
            else:
                self.tuner.trial_end(parameter_id, call[2])
        if calls:
            log.info("tuner restored from its checkpoint and %d logged call(s)", len(calls))
            self._dirty = True
