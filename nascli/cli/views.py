"""Renderables for people: experiment status, trial tables, experiment lists.

Each function takes the plain data from ``nascli.experiment.report`` and returns a renderable;
nothing here reads the store or prints. rich is imported inside the functions that build rich
renderables, so the plain-text helpers (and the commands using only them) do not load it. The
trial tables are ``plain.PlainTable``: written without rich where they fit the terminal, and
through rich (the same bytes) where they do not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from nascli.channel import metric_number
from nascli.cli.plain import Cell, PlainGrid, PlainTable, Runs

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "status_view",
    "status_rows",
    "trial_cells",
    "TRIAL_COLUMNS",
    "trials_table",
    "streamed_trials_tables",
    "experiments_table",
    "format_time",
    "format_metric",
    "architecture_text",
]

_STATUS_STYLE = {
    "RUNNING": "cyan",
    "WAITING": "yellow",
    "SUCCEEDED": "green",
    "DONE": "green",
    "FAILED": "red",
    "ERROR": "red",
    "USER_CANCELED": "magenta",
    "EARLY_STOPPED": "yellow",
    "STOPPED": "magenta",
    "NO_MORE_TRIAL": "cyan",
}


def format_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def format_metric(value: Any) -> str:
    if value is None:
        return "-"
    value = metric_number(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def architecture_text(architecture: dict[str, Any]) -> str:
    """``{key: name | index | [names]}`` as ``key=name key2=[a,b]``."""
    parts = []
    for key, value in sorted(architecture.items()):
        if isinstance(value, list):
            value = "[" + ",".join(map(str, value)) + "]"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _status(text: str) -> Text:
    from rich.text import Text

    return Text(text, style=_STATUS_STYLE.get(text, ""))


def _literal(cell: Any) -> Any:
    """A cell as literal text: rich would read ``[...]`` in an architecture, a trial's reason
    or an experiment's name as markup and drop it."""
    from rich.text import Text

    return Text(cell) if isinstance(cell, str) else cell


def status_view(summary: dict[str, Any]) -> PlainGrid:
    """``status``: its lines as a grid of labels and values, and the warning if there is one."""
    return PlainGrid(status_rows(summary), summary.get("warning") or None)


def status_rows(summary: dict[str, Any]) -> list[tuple[str, str | Runs]]:
    """``status``'s lines as (label, value): what ``status_view`` lays out as a grid and the
    live view as plain lines. Values are literal text (never markup), styled where ``Runs``."""
    rows: list[tuple[str, str | Runs]] = []
    state = summary["status"]
    status = ((state, ""), (f"  ({summary['reason']})", "dim")) if summary.get("reason") else (
        (state, ""),)  # fmt: skip
    rows.append(("experiment", f"{summary['id']}  {summary['name']}"))
    rows.append(("status", Runs(_STATUS_STYLE.get(state, ""), status)))
    # Unstyled, as they have always printed (the counts were looked up by "N STATUS").
    counts = "  ".join(f"{n} {s}" for s, n in summary["trials"].items() if n)
    rows.append(("trials", counts or "none yet"))
    rows.append((
        "budget",
        f"{summary['proposed']}/{summary['max_trial_num']} proposed, "
        f"{summary['trial_concurrency']} at a time, "
        f"{format_duration(summary['exec_seconds'])} of "
        f"{format_duration(summary['max_exec_duration'])}",
    ))  # fmt: skip
    rows.append(("tuner", f"{summary['tuner']} ({summary['optimize_mode']})"))
    assessor = summary.get("assessor")
    if assessor:
        error = ((f"  error: {assessor['error']}", "red"),) if assessor.get("error") else ()
        rows.append(("assessor", Runs("", ((assessor["name"], ""), *error))))
    rows.append(("started", format_time(summary["started"])))
    if summary.get("ended"):
        rows.append(("ended", format_time(summary["ended"])))
    manager = summary["manager"]
    if manager["alive"]:
        rows.append(("manager", f"pid {manager['pid']}"))
    if summary.get("waiting_for"):
        rows.append(("waiting", Runs("yellow", ((summary["waiting_for"], ""),))))
    best = summary.get("best")
    if best:
        rows.append((
            "best",
            f"trial {best['id']}: {format_metric(best['metric'])}  "
            f"{architecture_text(best['architecture'])}",
        ))  # fmt: skip
    rows.append(("directory", summary["directory"]))
    return rows


TRIAL_COLUMNS = ("trial", "status", "final", "architecture", "gpus", "duration", "note")
_NO_WRAP = frozenset(("trial", "status"))


def trial_cells(row: dict[str, Any], now: float) -> list[Cell]:
    """One trial's cells (``TRIAL_COLUMNS``; the status as ``(text, style)``), its duration up
    to ``now`` while it runs."""
    started, ended = row["started"], row["ended"]
    duration = (ended or now) - started if started else None
    note = row["reason"] or ""
    if row.get("attempt", 1) > 1:
        note = f"attempt {row['attempt']}" + (f"; {note}" if note else "")
    return [
        row["id"],
        (row["status"], _STATUS_STYLE.get(row["status"], "")),
        format_metric(row["final"]),
        architecture_text(row["architecture"]),
        ",".join(map(str, row["gpus"])) if row["gpus"] else "-",
        format_duration(duration),
        note,
    ]


def trials_table(rows: list[dict[str, Any]], limit: int | None = None) -> PlainTable:
    """One table of ``rows`` (the last ``limit`` of them), columns sized to their contents."""
    shown = rows[-limit:] if limit else rows
    now = time.time()
    return PlainTable(TRIAL_COLUMNS, [trial_cells(row, now) for row in shown], no_wrap=_NO_WRAP)


def streamed_trials_tables(
    rows: Iterable[dict[str, Any]], widths: dict[str, int], chunk: int = 200
) -> Iterator[PlainTable]:
    """``rows`` as consecutive tables of ``chunk`` rows that print as one: every column has
    the fixed width given in ``widths`` (by column name; a longer cell wraps inside it) and only
    the first shows the header. Rows are read a chunk at a time, so any number print with
    flat memory, the first ones at once."""
    fixed = {name: max(len(name), widths.get(name, len(name))) for name in TRIAL_COLUMNS}

    def new_table(first: bool) -> PlainTable:
        return PlainTable(TRIAL_COLUMNS, [], fixed, _NO_WRAP, show_header=first)

    table, first = new_table(True), True
    now = time.time()
    for row in rows:
        table.rows.append(trial_cells(row, now))
        if len(table.rows) == chunk:
            yield table
            table, first = new_table(False), False
    if table.rows or first:
        yield table


def experiments_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for name in ("id", "name", "status", "trials", "started", "ended"):
        table.add_column(name)
    for row in rows:
        counts = row["trials"]
        done = counts.get("SUCCEEDED", 0)
        total = sum(counts.values())
        table.add_row(
            row["id"],
            _literal(row["name"]),
            _status(row["status"]),
            f"{done}/{total} succeeded",
            format_time(row["started"]),
            format_time(row["ended"]),
        )
    return table


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2)
