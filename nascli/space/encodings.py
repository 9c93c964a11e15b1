"""Encodings of a decision for search strategies: uniform sampling, and a decision as a
sequence of categorical steps for sequential policies (PPOTuner, ENAS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nascli.space.specs import ChoiceSpec, LayerChoiceSpec

__all__ = ["random_choice", "decision_steps", "choices_from_actions", "actions_from_choices"]


def random_choice(spec: ChoiceSpec, rng: Any) -> int | tuple[int, ...]:
    """One uniformly random decision for a key: an index (layer choice), or the sorted chosen
    input indices (each input independently with probability 1/2 for ``n_chosen: null``).
    ``rng`` is a ``random.Random``; the same state gives the same decision."""
    n = spec.n_candidates
    if isinstance(spec, LayerChoiceSpec):
        return rng.randrange(n)
    if spec.n_chosen is None:
        return tuple(i for i in range(n) if rng.random() < 0.5)
    return tuple(sorted(rng.sample(range(n), spec.n_chosen)))


def decision_steps(space: Mapping[str, ChoiceSpec]) -> list[tuple[str, int]]:
    """An architecture as a sequence of categorical steps ``(key, options)``, keys sorted: one
    step per layer choice; ``k`` steps for an input choice with ``n_chosen: k`` (each picks one
    more input; a sequential policy masks the inputs already picked); one take(1)/skip(0) step
    per input for ``n_chosen: null``. Used by sequential policies (PPOTuner, ENAS)."""
    steps: list[tuple[str, int]] = []
    for key in sorted(space):
        spec = space[key]
        if isinstance(spec, LayerChoiceSpec):
            steps.append((key, spec.n_candidates))
        elif spec.n_chosen is None:
            steps += [(key, 2)] * spec.n_candidates
        else:
            steps += [(key, spec.n_candidates)] * spec.n_chosen
    return steps


def choices_from_actions(
    space: Mapping[str, ChoiceSpec], actions: Sequence[int]
) -> dict[str, int | list[int]]:
    """``decision_steps`` actions -> ``{key: index}`` (layer choices) / ``{key: [indices]}``
    (input choices, sorted)."""
    taken: dict[str, list[int]] = {}
    for (key, _), action in zip(decision_steps(space), actions, strict=True):
        taken.setdefault(key, []).append(int(action))
    choices: dict[str, int | list[int]] = {}
    for key, acts in taken.items():
        spec = space[key]
        if isinstance(spec, LayerChoiceSpec):
            choices[key] = acts[0]
        elif spec.n_chosen is None:
            choices[key] = [i for i, a in enumerate(acts) if a == 1]
        else:
            choices[key] = sorted(acts)
    return choices


def actions_from_choices(
    space: Mapping[str, ChoiceSpec], choices: Mapping[str, int | Sequence[int]]
) -> list[int]:
    """The inverse of ``choices_from_actions`` (input picks in increasing order)."""
    actions: list[int] = []
    for key in sorted(space):
        spec, value = space[key], choices[key]
        if isinstance(spec, LayerChoiceSpec):
            actions.append(int(value))  # type: ignore[arg-type]
        elif spec.n_chosen is None:
            actions += [int(i in value) for i in range(spec.n_candidates)]  # type: ignore[operator]
        else:
            actions += sorted(value)  # type: ignore[arg-type]
    return actions


