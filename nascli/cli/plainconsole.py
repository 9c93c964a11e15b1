"""What a rich ``Console`` would do with a stream, worked out without importing rich: whether
it writes SGR codes, its width and height, how it writes text in a style (``plain.py`` uses
this to write what rich writes).

``ConsoleState.detect`` reads, as rich's ``Console`` does, whether the stream is a terminal
(``TTY_COMPATIBLE``, ``FORCE_COLOR``, ``isatty``), a dumb one (``TERM``), whether colours are
off (``NO_COLOR``) and the width and height (``COLUMNS``/``LINES``, the size of fds 0, 1, 2,
else 80x25); it answers None where only rich knows (Jupyter, IDLE, a stream that is not
UTF-8, whose box characters rich replaces). ``styled_lines`` is ``Console.print(text,
style=...)`` for text rich would not read as markup.
"""

from __future__ import annotations

import builtins
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["ConsoleState", "STYLES", "cell_width", "styled_lines"]

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


def cell_width(text: str) -> int | None:
    """The cells ``text`` takes on a terminal, or None when rich would lay it out otherwise
    than as one line of that width (control characters, tabs, newlines)."""
    if text.isascii():
        return len(text) if text.isprintable() else None
    if not text.isprintable():
        return None
    from rich.cells import cell_len  # wide and zero-width characters: rich's own measure

    return cell_len(text)



def styled_lines(text: str, style: str, console: ConsoleState) -> str | None:
    """``Console.print(text, style=style)`` with ``soft_wrap`` (nothing wrapped or cropped), or
    None when rich would read part of ``text`` as markup (``[``) or an emoji code (``:``), or
    lay it out otherwise (control characters)."""
    if "[" in text or ":" in text or style not in STYLES:
        return None
    lines = text.split("\n")
    if any(cell_width(line) is None for line in lines):
        return None
    return "".join(console.paint(line, style) + "\n" for line in lines)
