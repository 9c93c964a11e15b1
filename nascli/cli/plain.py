"""What rich prints for the CLI's simple tables and styled lines, written without importing rich.

rich (its console, tables, text layout) is about a fifth of a reading command's start-up and
laying out a table costs more again; most of what ``trial ls`` and ``top --once`` print is a
table whose columns fit the terminal, where rich's layout is simple: every column as wide as
its widest cell, cells padded with spaces, no wrapping. ``Output.print`` (``boundary.py``)
writes those here and hands everything else to rich, so the bytes are the same either way:

- ``ConsoleState.detect`` reads, as rich's ``Console`` would for a stream, whether it is a
  terminal (``TTY_COMPATIBLE``, ``FORCE_COLOR``, ``isatty``), a dumb one (``TERM``), whether
  colours are off (``NO_COLOR``) and the width and height (``COLUMNS``/``LINES``, the size of
  fds 0, 1, 2, else 80x25). It answers None where only rich knows (Jupyter, IDLE, a stream
  that is not UTF-8, whose box characters rich replaces).
- ``PlainTable`` is a table of text cells, each plain or in one of a few styles (``STYLES``):
  ``render`` gives rich's bytes (boxes, padding, SGR codes) or None when rich would wrap or
  collapse something (the table is wider than the terminal, a cell is longer than a fixed
  width, holds a tab, newline or other control character); ``__rich__`` gives the same table
  as a rich ``Table``, which rich prints when ``render`` declines or inside other renderables.
- ``styled_lines`` writes a text in one style, as ``Console.print(text, style=...)`` does, or
  None when the text has what rich would read as markup or emoji codes.

``tests/unit/test_plain_tables.py`` checks these against rich itself over many tables and
console states.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO, Union

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "ConsoleState", "PlainTable", "PlainGrid", "PlainGroup", "Runs", "Cell", "STYLES",
    "styled_lines", "rich_text",
]  # fmt: skip

#: The styles cells and lines may have here, as the SGR parameters rich writes for them (the
#: standard colours render the same in rich's standard, 256-colour and true-colour systems).
STYLES = {
    "bold": ("1", False),
    "dim": ("2", False),
    "red": ("31", True),
    "green": ("32", True),
    "yellow": ("33", True),
    "magenta": ("35", True),
    "cyan": ("36", True),
}

#: A cell: its text, or (text, style name from ``STYLES``; "" for none).
Cell = Union[str, tuple[str, str]]  # noqa: UP007 - a runtime alias (Python 3.9 reads it)


@dataclass(frozen=True)
class ConsoleState:
    """What a rich ``Console`` would detect for one output stream."""

    styled: bool  # writes SGR codes (a terminal, not a dumb one)
    no_color: bool  # NO_COLOR: attributes (bold, dim) but no colours
    width: int
    height: int

    @classmethod
    def detect(cls, stream: TextIO, environ: Any = os.environ) -> ConsoleState | None:
        """The state for ``stream``, or None where rich decides in ways not copied here."""
        if hasattr(builtins, "get_ipython") or getattr(sys.stdin, "__module__", "").startswith(
            "idlelib"
        ):
            return None
        encoding = (getattr(stream, "encoding", "utf-8") or "utf-8").lower()
        if not encoding.startswith("utf"):
            return None  # rich swaps the box characters for ASCII ones
        terminal = _is_terminal(stream, environ)
        dumb = terminal and environ.get("TERM", "").lower() in ("dumb", "unknown")
        width, height = _size(environ, dumb)
        return cls(terminal and not dumb, environ.get("NO_COLOR", "") != "", width, height)

    def paint(self, text: str, style: str) -> str:
        """``text`` as rich writes one segment of it in ``style`` ("", or ``STYLES`` names
        separated by spaces: rich writes the attributes, then the colour)."""
        if not style or not text or not self.styled:
            return text
        codes = [STYLES[name] for name in style.split()]
        attributes = sorted(int(code) for code, is_color in codes if not is_color)
        colors = [code for code, is_color in codes if is_color and not self.no_color]
        sgr = ";".join([*map(str, attributes), *colors[-1:]])
        return f"\x1b[{sgr}m{text}\x1b[0m" if sgr else text


def _is_terminal(stream: TextIO, environ: Any) -> bool:
    tty_compatible = environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    isatty = getattr(stream, "isatty", None)
    try:
        return False if isatty is None else bool(isatty())
    except ValueError:  # a closed stream
        return False


def _digits(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _size(environ: Any, dumb: bool) -> tuple[int, int]:
    """rich's ``Console.size`` (Linux: no legacy Windows console)."""
    columns, lines = _digits(environ.get("COLUMNS")), _digits(environ.get("LINES"))
    if columns is not None and lines is not None:
        return columns, lines
    if dumb:
        return 80, 25
    width = height = None
    for fd in (0, 1, 2):
        try:
            width, height = os.get_terminal_size(fd)
        except (AttributeError, ValueError, OSError):
            continue
        break
    width = columns if columns is not None else width or 80
    height = lines if lines is not None else height or 25
    return width, height


def _cell_width(text: str) -> int | None:
    """The cells ``text`` takes on a terminal, or None when rich would lay it out otherwise
    than as one line of that width (control characters, tabs, newlines)."""
    if text.isascii():
        return len(text) if text.isprintable() else None
    if not text.isprintable():
        return None
    from rich.cells import cell_len  # wide and zero-width characters: rich's own measure

    return cell_len(text)


def _split(cell: Cell) -> tuple[str, str]:
    return (cell, "") if isinstance(cell, str) else cell


@dataclass
class PlainTable:
    """A rich ``Table(show_edge=False, pad_edge=False)`` (heavy-headed box, one space of padding
    each side of a separator, bold headers) of text cells.

    ``widths``: fixed widths by column name (rich's ``width=``; others fit their cells);
    ``no_wrap``: the columns rich must not wrap (only matters where rich lays out the table).
    """

    columns: Sequence[str]
    rows: list[Sequence[Cell]]
    widths: dict[str, int] | None = None
    no_wrap: frozenset[str] = frozenset()
    show_header: bool = True

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        widths = self.widths or {}
        table = Table(show_edge=False, pad_edge=False, show_header=self.show_header)
        for name in self.columns:
            table.add_column(name, width=widths.get(name), no_wrap=name in self.no_wrap)
        for row in self.rows:
            table.add_row(*(Text(text, style=style) for text, style in map(_split, row)))
        return table

    def render(self, console: ConsoleState) -> str | None:
        """The table as rich prints it on ``console``, or None where rich must lay it out."""
        n = len(self.columns)
        grid = ([[(name, "bold") for name in self.columns]] if self.show_header else []) + [
            [_split(cell) for cell in row] for row in self.rows
        ]
        if not n or not grid or any(len(row) != n for row in grid):
            return None
        if self.show_header and any("[" in name or ":" in name for name in self.columns):
            return None  # rich reads header strings as markup and emoji codes
        measured = [[_cell_width(text) for text, _ in row] for row in grid]
        if any(w is None for row in measured for w in row):
            return None
        if any(style and style not in STYLES for row in grid for _, style in row):
            return None
        widths = self._widths(measured, console.width - (n - 1))  # type: ignore[arg-type]
        if widths is None:
            return None
        pads = _pads(n)
        laid = []
        for row in grid:
            cells = []
            for i, (text, style) in enumerate(row):
                lines = _wrap(text, widths[i] - pads[i], self.columns[i] in self.no_wrap)
                if lines is None:
                    return None
                cells.append((lines, style))
            laid.append(cells)
        paint = console.paint
        out = []
        for r, cells in enumerate(laid):
            header = self.show_header and r == 0
            height = max(1, *(len(lines) for lines, _ in cells))
            rendered = []
            for i, (lines, style) in enumerate(cells):
                pad_style = "bold" if header else ""
                left = paint(" ", pad_style) if i else ""
                right = paint(" ", pad_style) if i < n - 1 else ""
                column = [left + paint(line, style) + right for line in lines]
                blank = [paint(" " * widths[i], pad_style)] * (height - len(lines))
                rendered.append(blank + column if header else column + blank)  # rich: header
                # cells sit at the bottom of their row, body cells at the top
            for line_no in range(height):
                out.append(("┃" if header else "│").join(c[line_no] for c in rendered))
            if header:
                out.append("╇".join("━" * w for w in widths))
        return "".join(f"{line}\n" for line in out)

    def _widths(self, measured: list[list[int]], room: int) -> list[int] | None:
        """Each column's width with its padding, as rich's ``Table`` computes them for
        ``room`` cells (the console's width but the separators): every column as wide as its
        widest cell unless they do not fit; then the widest wrappable columns narrowed in
        turn, and if that is not enough all of them evenly."""
        n = len(self.columns)
        pads = _pads(n)
        fixed = self.widths or {}
        natural = []
        for i, name in enumerate(self.columns):
            if name in fixed:
                natural.append(fixed[name] + pads[i])
            else:
                natural.append(max(row[i] for row in measured) + pads[i])
        widths = [min(w, room) or 1 for w in natural]
        if sum(widths) > room:
            if not all(text.isascii() for row in self.rows for text, _ in map(_split, row)):
                return None  # wrapping wide characters: rich's job
            wrappable = [name not in fixed and name not in self.no_wrap for name in self.columns]
            widths = _narrow_widest(widths, wrappable, room)
            if sum(widths) > room:
                widths = _take(sum(widths) - room, [1] * n, widths, widths)
            widths = [min(natural[i], w) for i, w in enumerate(widths)]
        if any(w - pad < 0 for w, pad in zip(widths, pads, strict=True)):
            return None
        return widths


def _pads(n: int) -> list[int]:
    """Each column's padding: a space inside each separator, none at the table's edges."""
    return [(i > 0) + (i < n - 1) for i in range(n)]


def _take(total: int, shares: list[int], limits: list[int], widths: list[int]) -> list[int]:
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


def _narrow_widest(widths: list[int], wrappable: list[bool], room: int) -> list[int]:
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
        widths = _take(excess, shares, [cut] * len(widths), widths)
        excess = sum(widths) - room
    return widths


_WORD = re.compile(r"\s*\S+\s*")


def _breaks(text: str, width: int) -> list[int]:
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


def _wrap(text: str, width: int, no_wrap: bool) -> list[str] | None:
    """``text``'s lines in a cell ``width`` wide, each padded to it, as rich's ``Text`` wraps
    a cell (at spaces; a word longer than the width, or any line of a ``no_wrap`` column, cut
    with an ellipsis); None where that needs rich (wide characters that do not fit)."""
    if len(text) <= width and text.isascii():
        return [text.ljust(width)]
    if width == 0:  # rich renders nothing in no room: the row's blank lines fill the cell
        return []
    if not text.isascii():
        length = _cell_width(text)
        if length is None or length > width:
            return None
        return [text + " " * (width - length)]
    if no_wrap:
        pieces = [text]
    else:
        cuts = [0, *_breaks(text, width), len(text)]
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


def styled_lines(text: str, style: str, console: ConsoleState) -> str | None:
    """``Console.print(text, style=style)`` with ``soft_wrap`` (nothing wrapped or cropped), or
    None when rich would read part of ``text`` as markup (``[``) or an emoji code (``:``), or
    lay it out otherwise (control characters)."""
    if "[" in text or ":" in text or style not in STYLES:
        return None
    lines = text.split("\n")
    if any(_cell_width(line) is None for line in lines):
        return None
    return "".join(console.paint(line, style) + "\n" for line in lines)


class Runs(NamedTuple):
    """Text in several styles (rich: a ``Text`` with ``base`` style and spans): ``runs`` are
    (text, style) pieces in order, a style of "" meaning the base style alone."""

    base: str
    runs: tuple[tuple[str, str], ...]

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.runs)

    def paint(self, console: ConsoleState, width: int) -> str:
        """One line ``width`` wide, as rich writes it: a segment per span and per stretch of
        base-styled text between spans (the padding belongs to the last such stretch)."""
        pieces: list[list[str]] = []  # [text, style]; adjacent base-only runs make one
        for text, style in self.runs:
            if not text:
                continue
            if not style and pieces and not pieces[-1][1]:
                pieces[-1][0] += text
            else:
                pieces.append([text, style])
        pad = " " * (width - len(self.plain))
        if pad:
            if pieces and not pieces[-1][1]:
                pieces[-1][0] += pad
            else:
                pieces.append([pad, ""])
        return "".join(
            console.paint(text, _combine(self.base, style) if style else self.base)
            for text, style in pieces
        )


def _combine(*styles: str) -> str:
    return " ".join(s for s in styles if s)


@dataclass
class PlainGrid:
    """``status``'s lines: a rich ``Table.grid(padding=(0, 2))`` of a bold label column and a
    value column (str, or ``Runs``), then an optional yellow warning line (a rich ``Group``)."""

    rows: list[tuple[str, str | Runs]]
    warning: str | None = None

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for label, value in self.rows:
            grid.add_row(label, rich_text(value))
        parts: list[Any] = [grid]
        if self.warning:
            parts.append(Text(f"warning: {self.warning}", style="yellow"))
        return Group(*parts)

    def render(self, console: ConsoleState) -> str | None:
        """The lines as rich prints them on ``console``, or None where rich must lay them out."""
        if not self.rows or any("[" in label or ":" in label for label, _ in self.rows):
            return None  # rich reads the label strings as markup and emoji codes
        values = [v.plain if isinstance(v, Runs) else v for _, v in self.rows]
        labels = [label for label, _ in self.rows]
        measured = [_cell_width(text) for text in labels + values]
        if any(w is None for w in measured):
            return None
        if any(isinstance(v, Runs) and any(s and not _known(s) for _, s in v.runs)
               or isinstance(v, Runs) and v.base and not _known(v.base)
               for _, v in self.rows):  # fmt: skip
            return None
        natural = [max(measured[: len(labels)]) + 2, max(measured[len(labels) :])]  # type: ignore[type-var]
        room = console.width
        widths = [min(w, room) or 1 for w in natural]
        if sum(widths) > room:
            if not all(text.isascii() for text in labels + values):
                return None
            widths = _narrow_widest(widths, [True, True], room)
            if sum(widths) > room:
                widths = _take(sum(widths) - room, [1, 1], widths, widths)
            widths = [min(natural[i], w) for i, w in enumerate(widths)]
        label_width, value_width = widths[0] - 2, widths[1]
        if label_width < 1 or value_width < 1:
            return None
        out = []
        for label, value in self.rows:
            heads = _wrap(label, label_width, False)
            if isinstance(value, Runs):
                if len(value.plain) > value_width or not value.plain.isascii():
                    return None  # several styles wrapped: rich's job
                lines = [value.paint(console, value_width)]
            else:
                wrapped = _wrap(value, value_width, False)
                if wrapped is None:
                    return None
                lines = [console.paint(line, "") for line in wrapped]
            if heads is None:
                return None
            height = max(len(heads), len(lines))
            heads = [console.paint(h, "bold") + console.paint("  ", "bold") for h in heads]
            heads += [console.paint(" " * widths[0], "bold")] * (height - len(heads))
            lines += [" " * value_width] * (height - len(lines))
            out += [h + v for h, v in zip(heads, lines, strict=True)]
        if self.warning:
            warning = f"warning: {self.warning}"
            if any(_cell_width(line) is None for line in warning.split("\n")):
                return None
            out += [console.paint(line, "yellow") for line in warning.split("\n")]
        return "".join(f"{line}\n" for line in out)


def _known(style: str) -> bool:
    return all(name in STYLES for name in style.split())


def rich_text(value: str | Runs) -> Any:
    """``value`` as a rich ``Text`` (literal: no markup)."""
    from rich.text import Text

    if isinstance(value, str):
        return Text(value)
    text = Text(style=value.base)
    for piece, style in value.runs:
        text.append(piece, style=style or None)
    return text


@dataclass
class PlainGroup:
    """Renderables one after another (a rich ``Group``): ``PlainTable``, ``PlainGrid``, or a
    line of literal text (a ``str``: a rich ``Text``, not read as markup)."""

    parts: list[Any]

    def __rich__(self) -> Any:
        from rich.console import Group

        return Group(*(rich_text(part) if isinstance(part, str) else part for part in self.parts))

    def render(self, console: ConsoleState) -> str | None:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                lines = part.split("\n")
                if any(_cell_width(line) is None for line in lines):
                    return None
                text: str | None = "".join(f"{line}\n" for line in lines)
            else:
                text = part.render(console)
            if text is None:
                return None
            out.append(text)
        return "".join(out)
