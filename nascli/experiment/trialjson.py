"""The JSON listings of trials, written from the stored rows as they are read: ``trial ls --json``
(``write_trials_json``) and ``experiment export --type json`` (``write_export_json``).

The bytes are exactly ``json.dumps(rows, indent=2)`` of the decoded rows (``report._row`` for
``trial ls``, ``report.export_json``'s shape for the export), without building those rows: each
trial is one template filled with pieces already serialised at their indentation. The JSON
columns go from their stored text to indented text in C where they are flat (a final result, the
intermediate values: ``jsonstream.stored_indented``), and a trial's parameters and architecture
are put together from pieces remembered per search-space key and entry (a key has few distinct
entries), so a listing of 10,000 trials decodes each parameter entry once per distinct value.
Memory stays flat: rows are written in chunks of ``CHUNK`` as they are read, and the memo is
bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from nascli import space as spaces
from nascli.experiment.architectures import Architectures, entry_architecture
from nascli.experiment.jsonstream import (
    SCALAR_TEXT,
    dumped_indented,
    dumps_indented,
    scalar_text,
    stored_indented,
)
from nascli.experiment.store import TRIAL_TEXT_COLUMNS, ExperimentStore, TrialQuery

__all__ = ["write_trials_json", "write_export_json", "ParameterPieces"]

#: The indentation of a row's fields' values (rows are items of a top-level array).
PAD = "    "
#: Rows written per ``write`` call.
CHUNK = 128

_C = {name: i for i, name in enumerate(TRIAL_TEXT_COLUMNS)}
_ID, _STATUS, _PARAMETER_ID, _ATTEMPT = _C["id"], _C["status"], _C["parameter_id"], _C["attempt"]
_PARAMETERS, _FINAL, _INTERMEDIATE = _C["parameters"], _C["final"], _C["intermediate"]
_EXIT, _REASON, _GPUS, _PID = _C["exit_code"], _C["reason"], _C["gpus"], _C["pid"]
_NODE, _STARTED, _ENDED = _C["node"], _C["started"], _C["ended"]


class ParameterPieces:
    """A trial's stored parameters text -> (its parameters, its architecture) as indented JSON
    at ``PAD``: what ``dumps_indented`` writes for the decoded parameters and for
    ``Architectures``' answer.

    The tuners' format (``{key: {"_value", "_idx"}}``, one entry per key of the space, as
    ``json.dumps`` wrote it) is cut into its entries' texts without decoding it: each entry's
    text ends at its first ``}`` (its values hold no object), and each ``(key, entry text)`` is
    decoded, named and serialised once, then remembered (bounded by ``MEMO``). A cut that is not
    an entry does not decode (it would end inside a string or a nested object), so anything
    else (other layouts, invalid entries, missing keys) goes the general way: decoded whole."""

    MEMO = 65536

    def __init__(self, space: spaces.SearchSpace):
        self.space = space
        self._keys = set(space)
        self._names = Architectures(space)
        self._memo: dict[str, tuple[str, str, str | None]] = {}
        inner = PAD + "  "
        self._open, self._join, self._close = "{\n" + inner, ",\n" + inner, "\n" + PAD + "}"

    def __call__(self, text: str) -> tuple[str, str]:
        pieces = self._cut(text)
        if pieces is None:
            parameters = json.loads(text)
            return dumps_indented(parameters, PAD), dumps_indented(self._names(parameters), PAD)
        named = sorted(pieces)  # the architecture lists its keys sorted
        return (
            self._open + self._join.join([p[1] for p in pieces]) + self._close,
            self._open + self._join.join([p[2] for p in named]) + self._close,  # type: ignore[misc]
        )

    def _cut(self, text: str) -> list[tuple[str, str, str | None]] | None:
        """Each entry's remembered pieces, in the text's order; None: not the tuners' format
        (or an entry not valid for its key)."""
        if text[:2] != '{"' or text[-1:] != "}":
            return None
        memo = self._memo
        pieces = []
        last = len(text) - 1
        pos = 1
        while True:
            # '"key": {entry}': the entry is an object and its first '}' its end (checked, the
            # first time that text is seen, by decoding it: any other cut does not decode).
            end = text.find("}", text.find('": {', pos)) + 1
            if end <= pos:
                return None
            known = memo.get(text[pos:end])
            if known is None:
                known = self._learn(text[pos:end])
            if known is None or known[2] is None:
                return None
            pieces.append(known)
            if end == last:
                break
            if text[end : end + 2] != ", ":
                return None
            pos = end + 2
        if len(pieces) != len(self._keys) or len({p[0] for p in pieces}) != len(pieces):
            return None  # a key missing or repeated
        return pieces

    def _learn(self, member: str) -> tuple[str, str, str | None] | None:
        """The pieces of one ``"key": {entry}`` text; None if it is not one member of the
        space's keys."""
        try:
            decoded = json.loads("{" + member + "}")
        except ValueError:  # not where the entry ends
            return None
        if len(decoded) != 1:
            return None
        ((key, entry),) = decoded.items()
        if key not in self._keys:
            return None
        inner = PAD + "  "
        valid, name = entry_architecture(self.space, key, entry)
        head = scalar_text(key) + ": "
        known = (
            key,
            head + dumps_indented(entry, inner),
            head + dumps_indented(name, inner) if valid else None,
        )
        if len(self._memo) >= self.MEMO:
            self._memo.clear()
        self._memo[member] = known
        return known


def _trial_row(row: Sequence[Any], pieces: ParameterPieces) -> str:
    """One ``trial ls --json`` row (``report._row``'s keys, in its order)."""
    id_, status, parameter_id, attempt, exit_code, reason, pid, node, started, ended = (
        row[_ID], row[_STATUS], row[_PARAMETER_ID], row[_ATTEMPT], row[_EXIT], row[_REASON],
        row[_PID], row[_NODE], row[_STARTED], row[_ENDED],
    )  # fmt: skip
    s = SCALAR_TEXT  # by exact type: another type (a BLOB) raises, as json.dumps would
    parameters, named = pieces(row[_PARAMETERS])
    return (
        f'{{\n    "id": {s[type(id_)](id_)},\n    "status": {s[type(status)](status)},'
        f'\n    "parameter_id": {s[type(parameter_id)](parameter_id)},'
        f'\n    "attempt": {s[type(attempt)](attempt)},'
        f'\n    "parameters": {parameters},\n    "architecture": {named},'
        f'\n    "final": {stored_indented(row[_FINAL], PAD)},'
        f'\n    "intermediate": {dumped_indented(row[_INTERMEDIATE] or "[]", PAD)},'
        f'\n    "exit_code": {s[type(exit_code)](exit_code)},'
        f'\n    "reason": {s[type(reason)](reason)},'
        f'\n    "gpus": {stored_indented(row[_GPUS], PAD)},\n    "pid": {s[type(pid)](pid)},'
        f'\n    "node": {s[type(node)](node)},\n    "started": {s[type(started)](started)},'
        f'\n    "ended": {s[type(ended)](ended)}\n  }}'
    )


def _export_row(row: Sequence[Any], pieces: ParameterPieces) -> str:
    """One ``experiment export --type json`` row (``report.export_json``'s keys)."""
    id_, parameter_id, status, reason, started, ended = (
        row[_ID], row[_PARAMETER_ID], row[_STATUS], row[_REASON], row[_STARTED], row[_ENDED],
    )  # fmt: skip
    s = SCALAR_TEXT
    parameters, named = pieces(row[_PARAMETERS])
    return (
        f'{{\n    "id": {s[type(id_)](id_)},'
        f'\n    "parameter_id": {s[type(parameter_id)](parameter_id)},'
        f'\n    "status": {s[type(status)](status)},\n    "reason": {s[type(reason)](reason)},'
        f'\n    "parameter": {parameters},\n    "architecture": {named},'
        f'\n    "value": {stored_indented(row[_FINAL], PAD)},'
        f'\n    "intermediate": {dumped_indented(row[_INTERMEDIATE] or "[]", PAD)},'
        f'\n    "started": {s[type(started)](started)},\n    "ended": {s[type(ended)](ended)}'
        "\n  }"
    )


def _write(rows: Iterable[Sequence[Any]], render, pieces: ParameterPieces, out: TextIO) -> int:
    count = 0
    chunk: list[str] = []
    for row in rows:
        chunk.append(",\n  " if count else "[\n  ")
        chunk.append(render(row, pieces))
        count += 1
        if len(chunk) >= 2 * CHUNK:
            out.write("".join(chunk))
            chunk.clear()
    chunk.append("\n]" if count else "[]")
    out.write("".join(chunk))
    return count


def write_trials_json(
    store: ExperimentStore,
    out: TextIO,
    statuses: Sequence[str] | None = None,
    sort: str = "launch",
    limit: int | None = None,
    space: spaces.SearchSpace | None = None,
) -> int:
    """``trial ls --json``: what ``json.dumps(list(report.iter_trial_rows(store, statuses,
    sort, limit)), indent=2)`` prints, written as the trials are read. Returns the row count.

    Raises:
        UsageError: an unknown ``sort``.
    """
    from nascli.experiment.report import optimize_mode

    space = space if space is not None else spaces.load_search_space(store.search_space_file)
    maximize = optimize_mode(store.experiment().config) != "minimize"
    rows = store.trial_texts(TrialQuery(sort, statuses, limit, maximize=maximize))
    return _write(rows, _trial_row, ParameterPieces(space), out)


def write_export_json(
    store: ExperimentStore, out: TextIO, space: spaces.SearchSpace | None = None
) -> int:
    """``experiment export --type json``: every trial in launch order, in NNI's export shape
    plus status and timing (see ``report.export_json``). Returns the row count."""
    space = space if space is not None else spaces.load_search_space(store.search_space_file)
    return _write(store.trial_texts(), _export_row, ParameterPieces(space), out)
