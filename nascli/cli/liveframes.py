"""The foreground live view's frames, read incrementally and drawn from pre-rendered lines.

``LiveFrames.frame()`` is called by the view's refresh thread (``live.py``), a few times a
second, while the manager runs the experiment on the main thread of the same process; what it
costs is taken from the experiment's run, so it does as little as it can:

- reading: nothing when the store has not changed (SQLite's ``data_version``) and no running
  trial's clock has moved a second; otherwise the summary (a few indexed reads) and, of the
  trials, only those launched since the last frame (the newest ``LATEST``) and those shown that
  had not ended (by id). Ended trials are never read again (but for a resync every
  ``RESYNC_SECONDS``, in case one changes after its end, e.g. on resume).
- drawing: each line is rendered to rich segments once and kept while it stays the same (an
  ended trial's line never changes); the frame hands rich those segments, not a table to lay
  out (laying out a 15-row rich table costs ~20 ms of the interpreter, drawing the segments
  well under 1 ms).

Lines: the ``status`` grid (label, value), a blank line, then the trials table, one line per
trial: columns as ``trial ls`` (``views.TRIAL_COLUMNS``), sized to the shown trials, cropped
with an ellipsis to the terminal's width.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nascli.cli.plain import rich_text
from nascli.cli.views import TRIAL_COLUMNS, status_rows, trial_cells

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.segment import Segment

    from nascli.experiment.store import ExperimentStore

__all__ = ["LiveFrames", "LATEST", "RESYNC_SECONDS"]

#: Trials the view shows (the newest, in launch order).
LATEST = 15
#: How often the shown trials are all read again.
RESYNC_SECONDS = 10.0
_LABEL_WIDTH = len("experiment") + 2
# Widths that do not jitter as trials come and go (the longest status, a duration).
_FIXED = {"status": len("USER_CANCELED"), "duration": len("99h59m59s")}
_SEPARATOR, _HEADER_SEPARATOR, _RULE = " │ ", " ┃ ", "━╇━"


class _Lines:
    """A renderable of lines already rendered to segments: drawing it is handing them over."""

    def __init__(self, lines: list[list[Segment]]):
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        newline = Segment.line()
        for line in self.lines:
            yield from line
            yield newline


class LiveFrames:
    """The live view of one experiment (its own store connection, opened by the caller)."""

    def __init__(self, store: ExperimentStore, console: Console):
        from nascli import space as spaces

        self._store = store
        self._console = console
        self._space = spaces.load_search_space(Path(store.search_space_file))
        self._rows: dict[str, dict[str, Any]] = {}  # shown trials by id, in launch order
        self._newest: str | None = None
        self._summary_lines: list[list[Segment]] = []
        self._summary: dict[str, Any] | None = None
        # An ended trial's (widths, console width, *cells) and its line.
        self._trial_lines: dict[str, tuple[tuple[Any, ...], list[Segment]]] = {}
        self._version: int | None = None
        self._read_at = 0.0
        self._resync_at = 0.0
        self._frame: _Lines | None = None

    def invalidate(self) -> None:
        """Make the next frame read the store again (the final frame, say)."""
        self._version = None

    def frame(self) -> _Lines:
        version = self._store.data_version()
        now = time.monotonic()
        running = any(row["ended"] is None and row["started"] for row in self._rows.values())
        stale = self._frame is None or version != self._version
        if not stale and not (running and now - self._read_at >= 1.0):
            return self._frame  # type: ignore[return-value]
        if stale:
            self._read(now)
        self._version, self._read_at = version, now
        self._frame = _Lines(self._summary_lines + [[]] + self._table_lines())
        return self._frame

    # ------------------------------------------------------------------ reading

    def _read(self, now: float) -> None:
        from nascli.cli.boundary import terminal_safe
        from nascli.experiment.report import experiment_summary, iter_trial_rows
        from nascli.experiment.store import TERMINAL_TRIAL_STATUSES

        summary = terminal_safe(experiment_summary(self._store, self._space))
        if summary != self._summary:
            self._summary = summary
            self._summary_lines = self._render_summary(summary)
        store, space = self._store, self._space
        if now - self._resync_at >= RESYNC_SECONDS:
            self._resync_at = now
            self._rows.clear()
            self._trial_lines.clear()
            self._newest = None
        ended = TERMINAL_TRIAL_STATUSES
        open_ids = [i for i, row in self._rows.items() if row["status"] not in ended]
        if open_ids:
            for row in iter_trial_rows(store, ids=open_ids, space=space):
                self._rows[row["id"]] = terminal_safe(row)
        new = list(iter_trial_rows(store, sort="newest", limit=LATEST, space=space,
                                   newer_than=self._newest))  # fmt: skip
        if self._newest is None:
            self._rows.clear()
        for row in reversed(new):  # oldest first: the dict keeps launch order
            self._rows[row["id"]] = terminal_safe(row)
        if new:
            self._newest = new[0]["id"]
        for old in list(self._rows)[:-LATEST]:
            del self._rows[old]
        for gone in set(self._trial_lines) - set(self._rows):
            del self._trial_lines[gone]

    # ------------------------------------------------------------------ drawing

    def _render_summary(self, summary: dict[str, Any]) -> list[list[Segment]]:
        from rich.segment import Segment
        from rich.style import Style
        from rich.text import Text

        bold = Style(bold=True)
        lines = []
        for label, value in status_rows(summary):
            text = rich_text(value)
            head = Segment(label.ljust(_LABEL_WIDTH), bold)
            lines.append(self._crop([head, *_segments(self._console, text)]))
        if summary.get("warning"):
            warning = Text(f"warning: {summary['warning']}", "yellow")
            lines.append(self._crop(_segments(self._console, warning)))
        return lines

    def _table_lines(self) -> list[list[Segment]]:
        from rich.segment import Segment
        from rich.style import Style

        if not self._rows:
            return [[Segment("no trials yet", Style(dim=True))]]
        now = time.time()
        cells = {}
        for trial_id, row in self._rows.items():
            kept = self._trial_lines.get(trial_id)  # an ended trial's cells do not change
            cells[trial_id] = kept[0][2:] if kept is not None else trial_cells(row, now)
        widths = self._widths(cells.values())
        bold = Style(bold=True)
        header = []
        for n, name in enumerate(TRIAL_COLUMNS):
            if n:
                header.append(Segment(_HEADER_SEPARATOR))
            header.append(Segment(name.ljust(widths[n]), bold))
        rule = _RULE.join("━" * w for w in widths)
        lines = [self._crop(header), self._crop([Segment(rule)])]
        for trial_id, row_cells in cells.items():
            ended = self._rows[trial_id]["ended"] is not None
            key = (tuple(widths), self._console.width, *row_cells)
            kept = self._trial_lines.get(trial_id)
            if kept is None or kept[0] != key:
                kept = (key, self._crop(self._row_segments(row_cells, widths)))
                if ended:  # a running trial's line changes with its clock: not kept
                    self._trial_lines[trial_id] = kept
            lines.append(kept[1])
        return lines

    def _widths(self, rows: Any) -> list[int]:
        widths = [_FIXED.get(name, len(name)) for name in TRIAL_COLUMNS]
        for row_cells in rows:
            for n, cell in enumerate(row_cells):
                widths[n] = max(widths[n], len(cell if isinstance(cell, str) else cell[0]))
        return widths

    def _row_segments(self, row_cells: list[Any], widths: list[int]) -> list[Segment]:
        from rich.segment import Segment
        from rich.text import Text

        segments = []
        for n, cell in enumerate(row_cells):
            if n:
                segments.append(Segment(_SEPARATOR))
            if isinstance(cell, tuple):  # (text, style): the status
                pad = widths[n] - len(cell[0])
                segments += _segments(self._console, Text(cell[0], style=cell[1]))
                segments.append(Segment(" " * pad))
            else:
                segments.append(Segment(str(cell).ljust(widths[n])))
        return segments

    def _crop(self, segments: list[Segment]) -> list[Segment]:
        """One line no wider than the terminal (an ellipsis where it was cut)."""
        from rich.segment import Segment

        width = self._console.width
        if Segment.get_line_length(segments) <= width:
            return segments
        cropped = Segment.adjust_line_length(segments, max(0, width - 1))
        return [*cropped, Segment("…")]


def _segments(console: Console, text: Any) -> list[Segment]:
    """A one-line ``Text``'s segments (its styles resolved by ``console``)."""
    return list(text.render(console, end=""))
