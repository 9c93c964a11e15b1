"""Small text helpers shared by error messages."""

from __future__ import annotations

import difflib
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
