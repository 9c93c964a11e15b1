"""The search space and the internal form of a decision (torch-free).

* **search space** ``{key: {"_type": "layer_choice", "_value": [names]}}`` and
  ``{key: {"_type": "input_choice", "_value": {"candidates": [...], "n_chosen": int | null}}}``
  (DESIGN §4), parsed into one ``ChoiceSpec`` per key;
* **the internal decision form**, ``Chosen``: per key the chosen candidate indices, an ``int``
  for a layer choice, a sorted ``tuple`` for an input choice. Tuners, the manager and reports
  work in it; the wire formats (``parameters.py``, ``architecture.py``) are codecs at the edges.

Every reader collects all problems of a document and raises one typed error listing them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nascli._text import did_you_mean, quoted_list
from nascli.errors import SearchSpaceError

__all__ = [
    "LAYER_CHOICE",
    "INPUT_CHOICE",
    "LayerChoiceSpec",
    "InputChoiceSpec",
    "ChoiceSpec",
    "SearchSpace",
    "Choice",
    "Chosen",
    "Decision",
    "parse_search_space",
    "search_space_to_json",
    "space_size",
    "as_chosen",
    "to_multi_hot",
]

LAYER_CHOICE = "layer_choice"
INPUT_CHOICE = "input_choice"


@dataclass(frozen=True)
class LayerChoiceSpec:
    """A layer choice: pick one (or, in a weighted supernet, several) of ``names``."""

    names: tuple[str, ...]

    @property
    def n_candidates(self) -> int:
        return len(self.names)

    def to_json(self) -> dict[str, Any]:
        return {"_type": LAYER_CHOICE, "_value": list(self.names)}


@dataclass(frozen=True)
class InputChoiceSpec:
    """An input choice: pick ``n_chosen`` of ``candidates`` (any number when ``None``)."""

    candidates: tuple[str, ...]
    n_chosen: int | None

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    @property
    def names(self) -> tuple[str, ...]:
        return self.candidates

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": INPUT_CHOICE,
            "_value": {"candidates": list(self.candidates), "n_chosen": self.n_chosen},
        }


ChoiceSpec = LayerChoiceSpec | InputChoiceSpec
SearchSpace = dict[str, ChoiceSpec]
#: One key's chosen candidates: an index (layer choice) or sorted indices (input choice).
Choice = int | tuple[int, ...]
#: The internal form of a whole decision: the chosen candidates per key.
Chosen = dict[str, Choice]
#: One key's decision as mutators apply it: one entry per candidate, bools (these run) or float
#: weights (a weighted sum, one-shot trainers).
Decision = list[bool] | list[float]


# --------------------------------------------------------------------------- search space


def parse_search_space(doc: Any, source: str = "search space") -> SearchSpace:
    """Validate a decoded search-space JSON document and return it as specs, keys sorted.

    Raises:
        SearchSpaceError: listing every problem, each naming the key and the value found.
    """
    if not isinstance(doc, Mapping):
        raise SearchSpaceError(
            [f"the document must be a JSON object of choices, got {type(doc).__name__}"], source
        )
    problems: list[str] = []
    space: SearchSpace = {}
    for key in sorted(doc):
        spec = _parse_choice(key, doc[key], problems)
        if spec is not None:
            space[key] = spec
    if not doc:
        problems.append("the search space has no choices")
    if problems:
        raise SearchSpaceError(problems, source)
    return space


def _parse_choice(key: str, entry: Any, problems: list[str]) -> ChoiceSpec | None:
    where = f"key {key!r}"
    if not isinstance(entry, Mapping) or "_type" not in entry or "_value" not in entry:
        problems.append(f"{where}: must be an object with '_type' and '_value', got {entry!r}")
        return None
    kind, value = entry["_type"], entry["_value"]
    if kind == LAYER_CHOICE:
        if not _is_str_list(value) or not value:
            problems.append(
                f"{where}: layer_choice '_value' must be a non-empty list of candidate names, "
                f"got {value!r}"
            )
            return None
        return LayerChoiceSpec(tuple(value))
    if kind == INPUT_CHOICE:
        if not isinstance(value, Mapping) or "candidates" not in value:
            problems.append(
                f"{where}: input_choice '_value' must be an object with 'candidates' and "
                f"'n_chosen', got {value!r}"
            )
            return None
        candidates, n_chosen = value["candidates"], value.get("n_chosen")
        if not _is_str_list(candidates) or not candidates:
            problems.append(
                f"{where}: input_choice 'candidates' must be a non-empty list of strings, "
                f"got {candidates!r}"
            )
            return None
        if n_chosen is not None and (not _is_int(n_chosen) or not 0 <= n_chosen <= len(candidates)):
            problems.append(
                f"{where}: input_choice 'n_chosen' must be null or an integer from 0 to "
                f"{len(candidates)}, got {n_chosen!r}"
            )
            return None
        return InputChoiceSpec(tuple(candidates), n_chosen)
    problems.append(
        f"{where}: '_type' must be 'layer_choice' or 'input_choice', got {kind!r}"
        + did_you_mean(str(kind), [LAYER_CHOICE, INPUT_CHOICE])
    )
    return None


def search_space_to_json(space: Mapping[str, ChoiceSpec]) -> dict[str, Any]:
    """The JSON document of a search space (keys sorted, as ``ss_gen`` writes it)."""
    return {key: space[key].to_json() for key in sorted(space)}


def space_size(space: Mapping[str, ChoiceSpec]) -> int:
    """Number of distinct architectures in a search space."""
    total = 1
    for spec in space.values():
        if isinstance(spec, LayerChoiceSpec):
            total *= spec.n_candidates
        elif spec.n_chosen is None:
            total *= 2**spec.n_candidates
        else:
            total *= math.comb(spec.n_candidates, spec.n_chosen)
    return total


def as_chosen(
    space: Mapping[str, ChoiceSpec], picks: Mapping[str, int | Sequence[int]]
) -> Chosen:
    """Indices that code computed (an int-like per layer choice; any sequence of int-likes,
    e.g. a list or a tensor's ``tolist()``, per input choice) as ``Chosen``, keys of
    ``space``. Not a validator: picks read from users go through the codecs instead."""
    chosen: Chosen = {}
    for key, spec in space.items():
        picked = picks[key]
        if isinstance(spec, LayerChoiceSpec):
            chosen[key] = int(picked)  # type: ignore[arg-type]
        else:
            chosen[key] = tuple(sorted(int(i) for i in picked))  # type: ignore[union-attr]
    return chosen


def to_multi_hot(
    space: Mapping[str, ChoiceSpec], chosen: Mapping[str, Choice]
) -> dict[str, list[bool]]:
    """``Chosen`` as one multi-hot decision per key (the form mutators apply)."""
    decisions: dict[str, list[bool]] = {}
    for key, spec in space.items():
        picked = chosen[key]
        indices = {picked} if isinstance(picked, int) else set(picked)
        decisions[key] = [i in indices for i in range(spec.n_candidates)]
    return decisions


def _checked_count(
    where: str, spec: ChoiceSpec, mask: list[bool], problems: list[str]
) -> list[bool] | None:
    count = sum(mask)
    if isinstance(spec, LayerChoiceSpec) and count == 0:
        problems.append(f"{where}: a layer choice needs at least one candidate; {_allowed(spec)}")
        return None
    if isinstance(spec, InputChoiceSpec) and spec.n_chosen is not None and count != spec.n_chosen:
        problems.append(
            f"{where}: exactly {spec.n_chosen} input(s) must be chosen (n_chosen), got {count}"
        )
        return None
    return mask


def _allowed(spec: ChoiceSpec) -> str:
    n = spec.n_candidates
    if isinstance(spec, LayerChoiceSpec):
        names = "" if _names_are_indices(spec.names) else f" or a name of {quoted_list(spec.names)}"
        return f"allowed: an index 0..{n - 1}{names}, or a list of them"
    count = "any number of" if spec.n_chosen is None else f"exactly {spec.n_chosen}"
    names = f" or names of {quoted_list(spec.candidates)}" if _names_unique(spec.candidates) else ""
    return f"allowed: {count} indices from 0..{n - 1}{names}, or a multi-hot list of {n} bools"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _names_unique(names: Sequence[str]) -> bool:
    return len(set(names)) == len(names) and all(names)


def _names_are_indices(names: Sequence[str]) -> bool:
    return all(name.isdigit() for name in names)
