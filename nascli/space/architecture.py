"""The architecture codec: what users export and apply, ``{key: name | index | [names] |
[indices] | [bools] | [floats]}`` (DESIGN §4), to and from one decision per key."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nascli._text import did_you_mean, quoted_list
from nascli.errors import ArchitectureError
from nascli.space.specs import (
    Choice,
    ChoiceSpec,
    Decision,
    LayerChoiceSpec,
    _allowed,
    _checked_count,
    _is_int,
    _is_number,
    _names_are_indices,
    _names_unique,
    to_multi_hot,
)

__all__ = [
    "normalize_architecture",
    "first_candidate_architecture",
    "human_readable",
    "human_architecture",
    "export_architecture",
]


def normalize_architecture(
    space: Mapping[str, ChoiceSpec],
    architecture: Mapping[str, Any],
    source: str = "architecture",
    strict: bool = True,
) -> dict[str, Decision]:
    """Turn an architecture document into one decision per key of ``space``.

    Each value may be a candidate name, an index, a list of names or indices, a multi-hot list of
    bools, a list of float weights (one per candidate), or a parameter entry
    (``{"_value", "_idx"}``). A list of ints is read as indices, never as a multi-hot mask.

    Args:
        strict: when False, keys of the document that the space does not have are ignored
            (missing keys are always an error).

    Raises:
        ArchitectureError: listing every problem (unknown and missing keys, unknown names,
            indices out of range, wrong counts for ``n_chosen``, wrong multi-hot lengths).
    """
    if not isinstance(architecture, Mapping):
        raise ArchitectureError(
            [
                f"the architecture must be a JSON object {{key: choice}}, "
                f"got {type(architecture).__name__}"
            ],
            source,
        )
    problems: list[str] = []
    decisions: dict[str, Decision] = {}
    if strict:
        for key in architecture:
            if key not in space:
                problems.append(
                    f"key {key!r} is not in the model's search space"
                    + did_you_mean(key, space)
                    + f" (keys: {quoted_list(sorted(space))})"
                )
    for key, spec in space.items():
        if key not in architecture:
            problems.append(f"key {key!r} is missing; {_allowed(spec)}")
            continue
        decision = _decision_from_value(key, spec, architecture[key], problems)
        if decision is not None:
            decisions[key] = decision
    if problems:
        raise ArchitectureError(problems, source)
    return decisions


def _decision_from_value(
    key: str, spec: ChoiceSpec, value: Any, problems: list[str]
) -> Decision | None:
    where = f"key {key!r}"
    n = spec.n_candidates
    if isinstance(value, Mapping):
        idx = value.get("_idx", value.get("_idex", value.get("_value")))
        value = idx
    if isinstance(value, bool) or value is None or isinstance(value, float):
        problems.append(f"{where}: got {value!r}; {_allowed(spec)}")
        return None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if items and all(isinstance(v, bool) for v in items):
        if len(items) != n:
            problems.append(
                f"{where}: a multi-hot list needs {n} entries (one per candidate), "
                f"got {len(items)}: {value!r}"
            )
            return None
        return _checked_count(where, spec, [bool(v) for v in items], problems)
    if items and all(_is_number(v) for v in items) and any(isinstance(v, float) for v in items):
        if len(items) != n:
            problems.append(
                f"{where}: a weight list needs {n} entries (one per candidate), "
                f"got {len(items)}: {value!r}"
            )
            return None
        if not all(math.isfinite(v) for v in items):
            problems.append(f"{where}: weights must be finite numbers, got {value!r}")
            return None
        if isinstance(spec, LayerChoiceSpec) and not any(items):
            problems.append(f"{where}: at least one weight must be non-zero, got {value!r}")
            return None
        return [float(v) for v in items]
    chosen: list[int] = []
    for item in items:
        index = _resolve_candidate(where, spec, item, problems)
        if index is None:
            return None
        if index in chosen:
            problems.append(f"{where}: candidate {item!r} is chosen twice in {value!r}")
            return None
        chosen.append(index)
    mask = [i in chosen for i in range(n)]
    return _checked_count(where, spec, mask, problems)


def _resolve_candidate(where: str, spec: ChoiceSpec, item: Any, problems: list[str]) -> int | None:
    n = spec.n_candidates
    if _is_int(item):
        if 0 <= item < n:
            return int(item)
        problems.append(f"{where}: index {item} is out of range; {_allowed(spec)}")
        return None
    if isinstance(item, str):
        matches = [i for i, name in enumerate(spec.names) if name == item]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            problems.append(
                f"{where}: name {item!r} is shared by candidates {matches}; give an index instead"
            )
            return None
        problems.append(
            f"{where}: unknown candidate {item!r}"
            + did_you_mean(item, spec.names)
            + f"; {_allowed(spec)}"
        )
        return None
    problems.append(f"{where}: got {item!r} ({type(item).__name__}); {_allowed(spec)}")
    return None


def first_candidate_architecture(space: Mapping[str, ChoiceSpec]) -> dict[str, list[bool]]:
    """Standalone mode's choice: candidate 0 of every layer choice, the first ``n_chosen``
    inputs of every input choice (all of them when ``n_chosen`` is None, as NNI did)."""
    decisions: dict[str, list[bool]] = {}
    for key, spec in space.items():
        n = spec.n_candidates
        if isinstance(spec, LayerChoiceSpec):
            k = 1
        else:
            k = n if spec.n_chosen is None else spec.n_chosen
        decisions[key] = [i < k for i in range(n)]
    return decisions


def human_readable(spec: ChoiceSpec, decision: Sequence[Any]) -> Any:
    """One key's decision in the export format.

    A 0/1 decision becomes the chosen candidate names when names are unique and meaningful
    (not ``"0", "1"``, not empty), else indices; a single choice is unwrapped. A decision with
    other weights stays a list of floats.
    """
    values = list(decision)
    if not all(v in (0, 1) for v in values):
        return [float(v) for v in values]
    chosen = [i for i, v in enumerate(values) if v]
    names = spec.names
    if _names_unique(names) and not _names_are_indices(names):
        picked: list[Any] = [names[i] for i in chosen]
    else:
        picked = chosen
    return picked[0] if len(picked) == 1 else picked


def human_architecture(
    space: Mapping[str, ChoiceSpec], decisions: Mapping[str, Sequence[Any]]
) -> dict[str, Any]:
    """The export format of a whole architecture, keys sorted."""
    return {key: human_readable(space[key], decisions[key]) for key in sorted(decisions)}




def export_architecture(
    space: Mapping[str, ChoiceSpec], chosen: Mapping[str, Choice]
) -> dict[str, Any]:
    """``Chosen`` in the export format (what one-shot trainers' ``export()`` returns and
    ``apply_fixed_architecture`` reads), keys sorted."""
    return human_architecture(space, to_multi_hot(space, chosen))
