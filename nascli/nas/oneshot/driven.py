"""One-shot trainers driven by a user's mutator: NNI v1.9's ``mutator=`` argument.

Without ``mutator`` a trainer replaces the model's choices with its own modules. With one (the
model's choices already bound to it, e.g. ``DartsMutator(model)`` or a subclass), the choices
stay and keep asking the mutator, and the trainer steers the mutator instead:

- differentiable trainers (DARTS): ``bind_reset_before_forward`` calls ``mutator.reset()``
  before every forward of the model, as NNI's trainer did before each loss, so the decisions are
  fresh functions of the mutator's parameters; those parameters are the architecture parameters
  the trainer optimises;
- single-path trainers (ENAS, SPOS, random): ``sample_from_mutator`` draws the next path with
  ``mutator.reset()`` and ``mutator_slots`` lets the trainer set a path (to train or score it)
  by writing the mutator's decisions; ``MutatorController`` presents an ENAS-style mutator
  (``sample_log_prob``, ``sample_entropy``, ``sample_skip_penalty`` after ``reset()``) as the
  trainer's controller.

In every case ``export()`` is ``mutator.export()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.mutator import BaseMutator, Mutator

__all__ = [
    "check_mutator",
    "bind_reset_before_forward",
    "MutatorSlot",
    "mutator_slots",
    "sample_from_mutator",
    "MutatorController",
    "mutator_probabilities",
]


def check_mutator(trainer: str, mutator: Any, model: nn.Module) -> Mutator:
    """``mutator`` if it is a decision-cache ``Mutator`` built on ``model``."""
    if not isinstance(mutator, Mutator):
        raise UsageError(
            f"{trainer}: mutator must be a nascli.nas.Mutator built on the model (e.g. "
            f"DartsMutator(model)), got {type(mutator).__name__}"
        )
    if mutator.model is not model:
        raise UsageError(f"{trainer}: the mutator was built on another model than the trainer's")
    return mutator


def bind_reset_before_forward(model: nn.Module, mutator: Mutator) -> Any:
    """Call ``mutator.reset()`` before every forward of ``model``; returns the hook handle."""
    return model.register_forward_pre_hook(lambda module, args: mutator.reset())


def _indices(decision: Any) -> list[int]:
    values = decision.detach().cpu().reshape(-1).tolist() if torch.is_tensor(decision) else decision
    return [i for i, v in enumerate(values) if v]


class MutatorSlot:
    """Looks like a path-sampling module to a single-path trainer: ``sampled`` (an index or a
    list of indices) reads and writes the mutator's decision for ``key``."""

    def __init__(self, mutator: Mutator, key: str, n_candidates: int):
        self.mutator = mutator
        self.key = key
        self.n_candidates = n_candidates

    @property
    def sampled(self) -> list[int]:
        return _indices(self.mutator._cache[self.key])

    @sampled.setter
    def sampled(self, value: int | list[int]) -> None:
        picked = [value] if isinstance(value, int) else list(value)
        mask = torch.zeros(self.n_candidates, dtype=torch.bool)
        mask[picked] = True
        self.mutator._cache[self.key] = mask
        self.mutator._plans.pop(self.key, None)


def mutator_slots(mutator: Mutator, space: spaces.SearchSpace) -> list[tuple[str, MutatorSlot]]:
    if not mutator._cache:
        mutator.reset()
    return [(key, MutatorSlot(mutator, key, spec.n_candidates)) for key, spec in space.items()]


def _arch(space: spaces.SearchSpace, decisions: Mapping[str, Any]) -> spaces.Chosen:
    """A mutator's multi-hot decisions as ``Chosen`` (one candidate per layer choice)."""
    picks: dict[str, Any] = {}
    for key, spec in space.items():
        picked = _indices(decisions[key])
        if isinstance(spec, spaces.LayerChoiceSpec):
            if len(picked) != 1:
                raise UsageError(
                    f"the mutator chose {len(picked)} candidates of layer choice {key!r}; a "
                    "single-path trainer trains one (give a mutator that picks one)"
                )
            picked = picked[0]
        picks[key] = picked
    return spaces.as_chosen(space, picks)


def sample_from_mutator(mutator: Mutator, space: spaces.SearchSpace) -> spaces.Chosen:
    """``mutator.reset()``, then its decisions as a path (``Chosen``)."""
    mutator.reset()
    return _arch(space, mutator._cache)


class MutatorController(nn.Module):
    """An ENAS-style mutator as the trainer's controller: ``forward(generator, greedy)`` returns
    ``(arch, log_prob, entropy)`` like the built-in controller. A sample is ``mutator.reset()``
    (the mutator's own random stream; the generator is not used); greedy decoding is
    ``mutator.sample_final()``. ``skip_penalty`` holds the last sample's penalty (0 when the
    mutator has none)."""

    def __init__(self, mutator: Mutator, space: spaces.SearchSpace):
        super().__init__()
        self.mutator = mutator
        self.space = space
        self.skip_penalty: torch.Tensor = torch.zeros(())

    def forward(self, generator: torch.Generator | None = None, greedy: bool = False) -> Any:
        zero = torch.zeros(())
        if greedy:
            return _arch(self.space, self.mutator.sample_final()), zero, zero
        self.mutator.reset()
        log_prob = getattr(self.mutator, "sample_log_prob", zero)
        entropy = getattr(self.mutator, "sample_entropy", zero)
        self.skip_penalty = getattr(self.mutator, "sample_skip_penalty", zero)
        return _arch(self.space, self.mutator._cache), log_prob, entropy


def mutator_probabilities(mutator: BaseMutator) -> dict[str, list[float]]:
    """The mutator's own per-candidate probabilities (``probabilities()``, as ``DartsMutator``
    and ``EnasMutator`` have), else none (the run log then shows uniform ones)."""
    probabilities = getattr(mutator, "probabilities", None)
    return dict(probabilities()) if callable(probabilities) else {}
