"""The CLI's tables and status lines as rich prints them, written without importing rich where
rich's layout follows rules copied here; rich prints the rest.

rich (its console, tables, text layout) is about a fifth of a reading command's start-up, and
laying out a table costs more again. ``Output.print`` (``boundary.py``) hands these renderables
to ``render``, which gives rich's bytes (boxes, padding, narrowed columns, wrapped cells,
ellipses, SGR codes) or None, and only then to rich, through ``__rich__`` (the same renderable
as rich objects, also what rich draws when one sits inside its own renderables):

- ``PlainTable``: a ``Table(show_edge=False, pad_edge=False)`` of text cells, each plain or in
  one of ``STYLES``; declined when a cell holds a tab, newline or other control character,
  wide characters must wrap, or a column is narrowed below its padding.
- ``PlainGrid``: ``status``' grid of bold labels and values (literal text or ``Runs`` in
  several styles), and its warning line; declined when a styled value must wrap.
- ``PlainGroup``: renderables one after another (``top``'s frame).

How the console is read is ``plainconsole.py``; rich's layout rules are ``plainlayout.py``.
``tests/unit/test_plain_tables.py`` checks all three against rich over generated tables, grids
and console states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from nascli.cli.plainconsole import STYLES, ConsoleState, cell_width, styled_lines
from nascli.cli.plainlayout import narrow_widest, pads, take, wrap_cell

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "ConsoleState", "PlainTable", "PlainGrid", "PlainGroup", "Runs", "Cell", "STYLES",
    "styled_lines", "rich_text",
]  # fmt: skip

#: A cell: its text, or (text, style name from ``STYLES``; "" for none).
Cell = str | tuple[str, str]


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
        measured = [[cell_width(text) for text, _ in row] for row in grid]
        if any(w is None for row in measured for w in row):
            return None
        if any(style and style not in STYLES for row in grid for _, style in row):
            return None
        widths = self._widths(measured, console.width - (n - 1))  # type: ignore[arg-type]
        if widths is None:
            return None
        padding = pads(n)
        laid = []
        for row in grid:
            cells = []
            for i, (text, style) in enumerate(row):
                lines = wrap_cell(text, widths[i] - padding[i], self.columns[i] in self.no_wrap)
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
        padding = pads(n)
        fixed = self.widths or {}
        natural = []
        for i, name in enumerate(self.columns):
            if name in fixed:
                natural.append(fixed[name] + padding[i])
            else:
                natural.append(max(row[i] for row in measured) + padding[i])
        widths = [min(w, room) or 1 for w in natural]
        if sum(widths) > room:
            if not all(text.isascii() for row in self.rows for text, _ in map(_split, row)):
                return None  # wrapping wide characters: rich's job
            wrappable = [name not in fixed and name not in self.no_wrap for name in self.columns]
            widths = narrow_widest(widths, wrappable, room)
            if sum(widths) > room:
                widths = take(sum(widths) - room, [1] * n, widths, widths)
            widths = [min(natural[i], w) for i, w in enumerate(widths)]
        if any(w - pad < 0 for w, pad in zip(widths, padding, strict=True)):
            return None
        return widths


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
        measured = [cell_width(text) for text in labels + values]
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
            widths = narrow_widest(widths, [True, True], room)
            if sum(widths) > room:
                widths = take(sum(widths) - room, [1, 1], widths, widths)
            widths = [min(natural[i], w) for i, w in enumerate(widths)]
        label_width, value_width = widths[0] - 2, widths[1]
        if label_width < 1 or value_width < 1:
            return None
        out = []
        for label, value in self.rows:
            heads = wrap_cell(label, label_width, False)
            if isinstance(value, Runs):
                if len(value.plain) > value_width or not value.plain.isascii():
                    return None  # several styles wrapped: rich's job
                lines = [value.paint(console, value_width)]
            else:
                wrapped = wrap_cell(value, value_width, False)
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
            if any(cell_width(line) is None for line in warning.split("\n")):
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
                if any(cell_width(line) is None for line in lines):
                    return None
                text: str | None = "".join(f"{line}\n" for line in lines)
            else:
                text = part.render(console)
            if text is None:
                return None
            out.append(text)
        return "".join(out)
