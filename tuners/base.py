"""The tuner contract (NNI's), for NAS search spaces.

Lifecycle, as the experiment manager drives it:

1. ``update_search_space(search_space)`` once, with the search-space JSON document (DESIGN §4),
   before anything else (again on ``resume``, before ``load_checkpoint``).
2. ``generate_parameters(parameter_id)`` whenever a trial slot is free: returns parameters
   (``{key: {"_value", "_idx"}}``) that are always valid for the space. Several calls may come
   before any result (one per concurrent trial). Raises ``NoMoreTrialError`` when the tuner has
   nothing left to propose (e.g. grid exhausted); the manager then stops asking.
3. ``receive_trial_result(parameter_id, parameters, value)`` when a trial reports its final
   metric (a number, or a dict with a numeric ``default``).
4. ``trial_end(parameter_id, success)`` always, once per trial, after its result if any.
5. ``save_checkpoint()`` returns a JSON-serialisable state; ``load_checkpoint(state)`` on a fresh
   tuner (after ``update_search_space``) continues exactly where the saved one was: the same
   calls then give the same parameters.
6. ``import_data([{"parameter": params, "value": metric}, ...])`` feeds finished trials (e.g.
   from another experiment) as if they had been received.

Every tuner takes ``optimize_mode`` (``maximize`` | ``minimize``) and ``seed``; the same seed and
the same calls give the same sequence.
"""

from __future__ import annotations

import base64
import random
from array import array
from collections.abc import Mapping, Sequence
from itertools import combinations, product
from typing import Any

from nascli import space as spaces
from nascli.channel import metric_scalar as extract_scalar
from nascli.errors import NoMoreTrialError, TunerArgumentError

__all__ = ["Tuner", "NoMoreTrialError", "TunerArgumentError", "extract_scalar", "Architecture"]

# A tuner's internal architecture: ``space.Chosen`` (the one internal decision form) as a tuple
# in key order (hashable): per key an int (layer choice) or a sorted tuple of input indices.
Architecture = tuple[Any, ...]


class Tuner:
    """Base class of nascli tuners; subclasses implement ``_propose`` and may override hooks.

    Subclasses get, after ``update_search_space``: ``self.space`` (sorted specs), helpers to
    sample, encode and decode architectures, ``self.rng`` (a seeded ``random.Random``), and a
    record of what was proposed (``self.proposed``) and of finished results (``self.history``,
    rewards already signed so that larger is better).
    """

    #: True when, after ``load_checkpoint``, the same calls give the same results (every source
    #: of randomness is in the checkpoint). The experiment manager then writes such a tuner's
    #: checkpoint, which grows with the history, only every few turns and logs the calls in
    #: between, replaying them on resume. Every built-in tuner is (the contract tests check it).
    replayable: bool = False

    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None):
        if optimize_mode not in ("maximize", "minimize"):
            raise TunerArgumentError(
                f"classArgs.optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}"
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TunerArgumentError(f"classArgs.seed must be an integer, got {seed!r}")
        self.optimize_mode = optimize_mode
        self.seed = seed
        self.rng = random.Random(seed)
        self.space: spaces.SearchSpace = {}
        self.keys: list[str] = []
        self.proposed: dict[int, Architecture] = {}
        self.history: list[tuple[Architecture, float]] = []
        self.tried: set[Architecture] = set()
        self._choice_values: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ NNI contract

    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        """Set the search space (the JSON document). Raises ``SearchSpaceError`` when invalid."""
        self.space = spaces.parse_search_space(search_space, "the tuner's search space")
        self.keys = sorted(self.space)
        self._choice_values = {key: self._all_values(key) for key in self.keys}

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        """Propose the next architecture as parameters. Raises ``NoMoreTrialError``."""
        if not self.space:
            raise RuntimeError("update_search_space() must be called before generate_parameters()")
        arch = self._propose(parameter_id)
        self.proposed[parameter_id] = arch
        self.tried.add(arch)
        return self.to_parameters(arch)

    def generate_multiple_parameters(
        self, parameter_id_list: Sequence[int], **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Several proposals at once; stops early (shorter list) when the tuner runs out."""
        result = []
        for pid in parameter_id_list:
            try:
                result.append(self.generate_parameters(pid, **kwargs))
            except NoMoreTrialError:
                break
        return result

    def receive_trial_result(
        self, parameter_id: int, parameters: Mapping[str, Any], value: Any, **kwargs: Any
    ) -> None:
        """Record a finished trial's final metric."""
        arch = self.proposed.get(parameter_id) or self.from_parameters(parameters)
        reward = self._signed(extract_scalar(value))
        self.history.append((arch, reward))
        self.tried.add(arch)
        self._on_result(parameter_id, arch, reward)

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """A trial ended (always called once per trial)."""
        self.proposed.pop(parameter_id, None)

    def record_proposal(self, parameter_id: int, parameters: Mapping[str, Any]) -> None:
        """Take ``parameters`` as what ``generate_parameters(parameter_id)`` proposed: a trial
        runs them. The experiment manager calls it when replaying its tuner log on resume gives
        a proposal other than the one recorded (not expected of a ``replayable`` tuner), so the
        tuner goes on from what really runs."""
        arch = self.from_parameters(parameters)
        self.proposed[parameter_id] = arch
        self.tried.add(arch)

    def import_data(self, data: Sequence[Mapping[str, Any]]) -> None:
        """Feed finished trials: ``[{"parameter": parameters, "value": metric}, ...]``."""
        for i, entry in enumerate(data):
            arch = self.from_parameters(entry["parameter"])
            reward = self._signed(extract_scalar(entry["value"]))
            self.history.append((arch, reward))
            self.tried.add(arch)
            self._on_result(-1 - i, arch, reward)

    def save_checkpoint(self) -> dict[str, Any]:
        """The tuner's state as JSON-serialisable data."""
        state = {
            "rng": _rng_state_to_json(self.rng.getstate()),
            "proposed": [[pid, list(arch)] for pid, arch in self.proposed.items()],
            "history": [[list(arch), reward] for arch, reward in self.history],
            "tried": [list(arch) for arch in sorted(self.tried)],
            "own": self._save_own(),
        }
        return state

    def load_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Restore ``save_checkpoint()``'s state (after ``update_search_space``)."""
        self.rng.setstate(_rng_state_from_json(state["rng"]))
        self.proposed = {int(pid): _arch(a) for pid, a in state["proposed"]}
        self.history = [(_arch(a), float(r)) for a, r in state["history"]]
        self.tried = {_arch(a) for a in state["tried"]}
        self._load_own(state["own"])

    # ------------------------------------------------------------------ for subclasses

    def _propose(self, parameter_id: int) -> Architecture:
        raise NotImplementedError

    def _on_result(self, parameter_id: int, arch: Architecture, reward: float) -> None:
        """Hook: a result arrived (reward signed: larger is better)."""

    def _save_own(self) -> Any:
        return None

    def _load_own(self, state: Any) -> None:
        """Restore what ``_save_own`` returned."""

    def _signed(self, value: float) -> float:
        return value if self.optimize_mode == "maximize" else -value

    # ------------------------------------------------------------------ architectures

    def sample_uniform(self) -> Architecture:
        """A uniformly random architecture (per key)."""
        return tuple(self.sample_choice(key) for key in self.keys)

    def sample_choice(self, key: str) -> Any:
        return spaces.random_choice(self.space[key], self.rng)

    def sample_new(self, sampler: Any = None, attempts: int = 200) -> Architecture:
        """A sample not tried before (from ``sampler``, default uniform); after ``attempts``
        duplicates, any untried architecture found by enumeration, else ``NoMoreTrialError``."""
        sampler = sampler or self.sample_uniform
        for _ in range(attempts):
            arch = sampler()
            if arch not in self.tried:
                return arch
        if spaces.space_size(self.space) <= len(self.tried):
            raise NoMoreTrialError("every architecture of the search space has been proposed")
        for arch in self.enumerate():
            if arch not in self.tried:
                return arch
        raise NoMoreTrialError("every architecture of the search space has been proposed")

    def choice_values(self, key: str) -> list[Any]:
        """Every value one key can take, in a fixed order (computed once per search space)."""
        return self._choice_values[key]

    def _all_values(self, key: str) -> list[Any]:
        spec = self.space[key]
        n = spec.n_candidates
        if isinstance(spec, spaces.LayerChoiceSpec):
            return list(range(n))
        if spec.n_chosen is None:
            return [c for k in range(n + 1) for c in combinations(range(n), k)]
        return list(combinations(range(n), spec.n_chosen))

    def enumerate(self):
        """Every architecture, in lexicographic order of ``choice_values``."""
        return (tuple(values) for values in product(*(self.choice_values(k) for k in self.keys)))

    def to_parameters(self, arch: Architecture) -> dict[str, Any]:
        return spaces.parameters_from_indices(self.space, dict(zip(self.keys, arch, strict=True)))

    def from_parameters(self, parameters: Mapping[str, Any]) -> Architecture:
        """Decode parameters (validated) into this tuner's ``Architecture``."""
        chosen = spaces.decode_parameters(self.space, parameters)
        return tuple(chosen[key] for key in self.keys)


def _arch(values: Sequence[Any]) -> Architecture:
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def _rng_state_to_json(state: tuple[Any, ...]) -> list[Any]:
    # The Mersenne Twister's 625 words as one base64 string: a list of 625 numbers made the
    # JSON encoding of a checkpoint (written after every trial) three times slower.
    version, internal, gauss = state
    return [version, base64.b64encode(array("Q", internal).tobytes()).decode("ascii"), gauss]


def _rng_state_from_json(data: Sequence[Any]) -> tuple[Any, ...]:
    version, internal, gauss = data
    if isinstance(internal, str):
        internal = array("Q", base64.b64decode(internal)).tolist()
    return (version, tuple(internal), gauss)
