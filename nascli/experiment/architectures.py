"""Trials' parameters as exported architectures (``{key: name | index | [names] | [indices]}``,
names where they are meaningful), for people and ``apply_fixed_architecture``.

``architecture`` names one trial's parameters; ``Architectures`` names the many trials of one
search space, each key's entry checked and named once (``entry_architecture``). Used by the
reading commands (``report.py``) and the JSON listings (``trialjson.py``).
"""

from __future__ import annotations

from typing import Any

from nascli import space as spaces
from nascli.errors import ParameterError

__all__ = ["architecture", "entry_architecture", "Architectures"]


def architecture(parameters: dict[str, Any], space: spaces.SearchSpace) -> dict[str, Any]:
    """Parameters as an exported architecture; parameters the space does not accept give each
    key's ``_value`` as it is."""
    try:
        decisions = spaces.parse_parameters(space, parameters)
    except ParameterError:
        return {key: value.get("_value") for key, value in sorted(parameters.items())}
    return spaces.human_architecture(space, decisions)


def entry_architecture(space: spaces.SearchSpace, key: str, entry: Any) -> tuple[bool, Any]:
    """One key's parameter entry named as ``architecture`` names it: ``(True, name)``, or
    ``(False, None)`` when the entry is not valid for ``key`` (then the trial's whole
    architecture is ``architecture``'s fallback)."""
    spec = space[key]
    try:
        decisions = spaces.parse_parameters({key: spec}, {key: entry})
    except ParameterError:
        return False, None
    return True, spaces.human_readable(spec, decisions[key])


class Architectures:
    """``architecture`` for the many trials of one search space, remembering each key's
    answer per parameter entry: a key has few distinct entries (its candidates), so each is
    checked and named once instead of once per trial. The memo is bounded (cleared when it
    grows past ``MEMO``), so memory stays flat."""

    MEMO = 65536

    def __init__(self, space: spaces.SearchSpace):
        self.space = space
        self._keys = set(space)
        self._memo: dict[tuple[str, str], tuple[bool, Any]] = {}

    def __call__(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(parameters, dict) or parameters.keys() != self._keys:
            return architecture(parameters, self.space)
        result = {}
        for key in sorted(parameters):
            entry = parameters[key]
            # repr: cheap, and tells apart what compares equal but is not (True, 1, 1.0)
            memo_key = (key, repr(entry))
            known = self._memo.get(memo_key)
            if known is None:
                known = entry_architecture(self.space, key, entry)
                if len(self._memo) >= self.MEMO:
                    self._memo.clear()
                self._memo[memo_key] = known
            if not known[0]:  # invalid for this key: the whole answer is the fallback
                return architecture(parameters, self.space)
            result[key] = known[1]
        return result
