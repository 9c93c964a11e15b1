"""rich's rules for laying out a table's columns and cells, for ASCII text (``plain.py``):
how too wide a table is narrowed (``column_widths``' helpers ``narrow_widest`` and ``take``),
where text breaks into lines (``breaks``), and a cell's lines (``wrap_cell``). Checked against
rich's own functions and tables in ``tests/unit/test_plain_tables.py``.
"""

from __future__ import annotations

import re

from nascli.cli.plainconsole import cell_width

__all__ = ["pads", "take", "narrow_widest", "breaks", "wrap_cell"]

def pads(n: int) -> list[int]:
    """Each column's padding: a space inside each separator, none at the table's edges."""
    return [(i > 0) + (i < n - 1) for i in range(n)]


def take(total: int, shares: list[int], limits: list[int], widths: list[int]) -> list[int]:
    """``widths`` less ``total`` cells taken in proportion to ``shares`` (each column at most
    its limit; the rounding and order of rich's ``ratio_reduce``, so the same columns lose
    the odd cell)."""
    shares = [share if limit else 0 for share, limit in zip(shares, limits, strict=True)]
    left_shares, left = sum(shares), total
    result = []
    for share, limit, width in zip(shares, limits, widths, strict=True):
        if share and left_shares > 0:
            taken = min(limit, round(share * left / left_shares))
            left -= taken
            left_shares -= share
            width -= taken
        result.append(width)
    return result


def narrow_widest(widths: list[int], wrappable: list[bool], room: int) -> list[int]:
    """rich's collapse of a table too wide for ``room``: the widest wrappable columns give up
    width, down to the next widest, until the table fits or none is left to narrow."""
    excess = sum(widths) - room
    while any(wrappable) and sum(widths) and excess > 0:
        widest = max(w for w, ok in zip(widths, wrappable, strict=True) if ok)
        runner_up = max(
            (w for w, ok in zip(widths, wrappable, strict=True) if ok and w != widest), default=0
        )
        shares = [int(ok and w == widest) for w, ok in zip(widths, wrappable, strict=True)]
        if not any(shares) or widest == runner_up:
            break
        cut = min(excess, widest - runner_up)
        widths = take(excess, shares, [cut] * len(widths), widths)
        excess = sum(widths) - room
    return widths


_WORD = re.compile(r"\s*\S+\s*")


def breaks(text: str, width: int) -> list[int]:
    """Where rich breaks an ASCII ``text`` into lines of ``width`` (before a word, with the
    spaces after it, that would pass the width; a word longer than the width gets a line of
    its own, to be cut)."""
    breaks = []
    used = 0
    for word in _WORD.finditer(text):
        start, length = word.start(), len(word.group().rstrip())
        if width - used >= length:
            used += len(word.group())
        elif (length > width or used) and start:
            breaks.append(start)
            used = len(word.group())
        elif length > width:
            used = len(word.group())
    return breaks


def wrap_cell(text: str, width: int, no_wrap: bool) -> list[str] | None:
    """``text``'s lines in a cell ``width`` wide, each padded to it, as rich's ``Text`` wraps
    a cell (at spaces; a word longer than the width, or any line of a ``no_wrap`` column, cut
    with an ellipsis); None where that needs rich (wide characters that do not fit)."""
    if len(text) <= width and text.isascii():
        return [text.ljust(width)]
    if width == 0:  # rich renders nothing in no room: the row's blank lines fill the cell
        return []
    if not text.isascii():
        length = cell_width(text)
        if length is None or length > width:
            return None
        return [text + " " * (width - length)]
    if no_wrap:
        pieces = [text]
    else:
        cuts = [0, *breaks(text, width), len(text)]
        pieces = [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    lines = []
    for piece in pieces:
        if len(piece) > width and not no_wrap:  # trailing spaces past the width go first
            spaces = len(piece) - len(piece.rstrip())
            piece = piece[: len(piece) - min(spaces, len(piece) - width)]
        if len(piece) > width:
            piece = piece[: width - 1] + "…"
        lines.append(piece.ljust(width))
    return lines
