"""Search-space, parameter and architecture documents (torch-free).

The three wire formats of nascli (DESIGN §4), shared by the trial side (``nascli.nas``), the
tuners and the experiment manager:

* **search space** ``{key: {"_type": "layer_choice", "_value": [names]}}`` and
  ``{key: {"_type": "input_choice", "_value": {"candidates": [...], "n_chosen": int | null}}}``;
* **parameters**, what a tuner proposes: ``{key: {"_value": name, "_idx": i}}`` for a layer choice,
  ``{key: {"_value": [names], "_idx": [i, ...]}}`` for an input choice (``_idex`` is read as
  ``_idx``: NNI's docs carried that typo);
* **architecture**, what users export and apply: ``{key: name | index | [names] | [indices] |
  [bools] | [floats]}``.

Every reader collects all problems of a document and raises one typed error listing them. A
*decision* is the normalised form of one key's choice: a list with one entry per candidate, of
bools (these candidates run) or floats (weights of a weighted sum).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nascli._text import did_you_mean, quoted_list
from nascli.errors import ArchitectureError, ParameterError, SearchSpaceError

__all__ = [
    "LayerChoiceSpec",
    "InputChoiceSpec",
    "ChoiceSpec",
    "SearchSpace",
    "Decision",
    "parse_search_space",
    "load_search_space",
    "search_space_to_json",
    "dump_search_space",
    "normalize_architecture",
    "load_architecture",
    "parse_parameters",
    "parameters_from_indices",
    "first_candidate_architecture",
    "human_readable",
    "human_architecture",
    "space_size",
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


def load_search_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a search-space JSON file."""
    return parse_search_space(_read_json(path, SearchSpaceError), str(path))


def search_space_to_json(space: Mapping[str, ChoiceSpec]) -> dict[str, Any]:
    """The JSON document of a search space (keys sorted, as ``ss_gen`` writes it)."""
    return {key: space[key].to_json() for key in sorted(space)}


def dump_search_space(space: Mapping[str, ChoiceSpec], path: str | os.PathLike[str]) -> None:
    """Write a search space as JSON atomically (a reader never sees half a file)."""
    write_json_atomic(path, search_space_to_json(space))


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write ``doc`` as indented, key-sorted JSON to ``path`` via a rename in the same folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


# --------------------------------------------------------------------------- architectures


def load_architecture(path: str | os.PathLike[str]) -> Any:
    """Read an architecture JSON file (validation happens against a search space later)."""
    return _read_json(path, ArchitectureError)


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


# --------------------------------------------------------------------------- parameters


def parse_parameters(
    space: Mapping[str, ChoiceSpec], parameters: Any, source: str = "parameters"
) -> dict[str, list[bool]]:
    """Validate a tuner's parameters against ``space`` and return one multi-hot per key.

    Raises:
        ParameterError: listing every problem (key sets differ, ``_idx`` out of range,
            ``_value`` not matching ``_idx``, an input chosen twice, wrong ``n_chosen`` count).
    """
    if not isinstance(parameters, Mapping):
        raise ParameterError(
            [f"parameters must be an object {{key: {{'_value', '_idx'}}}}, got {parameters!r}"],
            source,
        )
    problems: list[str] = []
    for key in parameters:
        if key not in space:
            problems.append(
                f"key {key!r} is not in the model's search space" + did_you_mean(key, space)
            )
    decisions: dict[str, list[bool]] = {}
    for key, spec in space.items():
        where = f"key {key!r}"
        if key not in parameters:
            problems.append(f"{where}: missing from the parameters")
            continue
        entry = parameters[key]
        if not isinstance(entry, Mapping) or not ({"_idx", "_idex"} & set(entry)):
            problems.append(f"{where}: must be an object with '_value' and '_idx', got {entry!r}")
            continue
        idx = entry.get("_idx", entry.get("_idex"))
        value = entry.get("_value")
        single = isinstance(spec, LayerChoiceSpec)
        indices = [idx] if single else idx
        values = [value] if single else value
        if not isinstance(indices, list) or not all(_is_int(i) for i in indices):
            kind = "an integer" if single else "a list of integers"
            problems.append(f"{where}: '_idx' must be {kind}, got {idx!r}")
            continue
        if value is not None and (not isinstance(values, list) or len(values) != len(indices)):
            problems.append(f"{where}: '_value' {value!r} does not match '_idx' {idx!r}")
            continue
        ok = True
        for pos, i in enumerate(indices):
            if not 0 <= i < spec.n_candidates:
                problems.append(f"{where}: '_idx' {i} is out of range 0..{spec.n_candidates - 1}")
                ok = False
            elif value is not None and values[pos] != spec.names[i]:
                problems.append(
                    f"{where}: '_value' {values[pos]!r} is not candidate {i} "
                    f"(which is {spec.names[i]!r})"
                )
                ok = False
        if len(set(indices)) != len(indices):
            problems.append(f"{where}: an input is selected twice in '_idx' {idx!r}")
            ok = False
        if not ok:
            continue
        mask = _checked_count(
            where, spec, [i in indices for i in range(spec.n_candidates)], problems
        )
        if mask is not None:
            decisions[key] = mask
    if problems:
        raise ParameterError(problems, source)
    return decisions


def parameters_from_indices(
    space: Mapping[str, ChoiceSpec], indices: Mapping[str, int | Sequence[int]]
) -> dict[str, dict[str, Any]]:
    """Build parameters (``{key: {"_value", "_idx"}}``) from chosen candidate indices.

    A layer choice takes one int; an input choice takes a sequence of ints (kept in the given
    order). Used by tuners so that every tuner emits the exact same format.
    """
    params: dict[str, dict[str, Any]] = {}
    for key, spec in space.items():
        chosen = indices[key]
        if isinstance(spec, LayerChoiceSpec):
            i = int(chosen)  # type: ignore[arg-type]
            params[key] = {"_value": spec.names[i], "_idx": i}
        else:
            idx = [int(i) for i in chosen]  # type: ignore[union-attr]
            params[key] = {"_value": [spec.candidates[i] for i in idx], "_idx": idx}
    return params


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


# --------------------------------------------------------------------------- export


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


# --------------------------------------------------------------------------- sampling


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


# --------------------------------------------------------------------------- decision steps


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


# --------------------------------------------------------------------------- helpers


def _read_json(path: str | os.PathLike[str], error: type[SearchSpaceError]) -> Any:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise error([f"cannot read the file: {exc.strerror or exc}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise error(
            [f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r}); "
             "JSON files must be UTF-8"], str(path),
        ) from None  # fmt: skip
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            [f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], str(path)
        ) from None
    except RecursionError:
        raise error(["nested too deeply to be a search space"], str(path)) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise error([f"not usable JSON: {exc}"], str(path)) from None


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
