"""Small text helpers shared by error messages."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest option, or ``""`` when none is close."""
    matches = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def quoted_list(options: Iterable[object], limit: int = 12) -> str:
    """Render options as ``['a', 'b', ...]`` capped at ``limit`` entries."""
    items = [repr(o) for o in options]
    if len(items) > limit:
        items = items[:limit] + [f"... ({len(items) - limit} more)"]
    return "[" + ", ".join(items) + "]"


def file_tail(path: str | os.PathLike[str], lines: int, label: str) -> str:
    """``"; last lines of LABEL:\n    ..."`` for the end of a log file; ``""`` when it is
    unreadable, and a note when it is empty (so messages say where to look)."""
    try:
        text = open(path, errors="replace").read().strip().splitlines()  # noqa: SIM115
    except OSError:
        return ""
    if not text:
        return f"; {label} was empty"
    tail = "\n".join("    " + line for line in text[-lines:])
    return f"; last lines of {label}:\n{tail}"
