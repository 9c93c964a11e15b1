"""The parameters codec: what tuners propose and trials read, ``{key: {"_value": name, "_idx": i}}``
for a layer choice, ``{key: {"_value": [names], "_idx": [i, ...]}}`` for an input choice
(``_idex``, a typo of NNI's docs, is read as ``_idx``), to and from ``Chosen``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nascli._text import did_you_mean
from nascli.errors import ParameterError
from nascli.space.specs import (
    Choice,
    ChoiceSpec,
    Chosen,
    LayerChoiceSpec,
    _checked_count,
    _is_int,
    to_multi_hot,
)

__all__ = ["decode_parameters", "parse_parameters", "parameters_from_indices"]


def parse_parameters(
    space: Mapping[str, ChoiceSpec], parameters: Any, source: str = "parameters"
) -> dict[str, list[bool]]:
    """Validate a tuner's parameters against ``space`` and return one multi-hot per key (the
    form a mutator applies): ``to_multi_hot(space, decode_parameters(...))``.

    Raises:
        ParameterError: as ``decode_parameters``.
    """
    return to_multi_hot(space, decode_parameters(space, parameters, source))


def decode_parameters(
    space: Mapping[str, ChoiceSpec], parameters: Any, source: str = "parameters"
) -> Chosen:
    """Validate a tuner's parameters against ``space`` and return them in the internal form
    (``Chosen``: an index per layer choice, sorted indices per input choice).

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
    chosen: Chosen = {}
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
            chosen[key] = indices[0] if single else tuple(sorted(indices))
    if problems:
        raise ParameterError(problems, source)
    return chosen


def parameters_from_indices(
    space: Mapping[str, ChoiceSpec], indices: Mapping[str, Choice | Sequence[int]]
) -> dict[str, dict[str, Any]]:
    """Encode chosen candidate indices (``Chosen``) as parameters (``{key: {"_value",
    "_idx"}}``).

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


