"""``nascli.cli.plain`` writes what rich writes: tables, styled lines and the console state,
checked against rich itself over many generated tables and environments."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console

from nascli.cli.plain import (
    STYLES,
    ConsoleState,
    PlainGrid,
    PlainGroup,
    PlainTable,
    Runs,
    styled_lines,
)
from nascli.cli.views import TRIAL_COLUMNS, status_view, trials_table

_WORDS = ["a", "cell0=skip", "skipin=[stem,cell1]", "SUCCEEDED", "x y", "  lead", "trail  ",
          "[bold]", ":smile:", "0.9767", "-", "寬字", "é", "attempt 2; early stop", "",
          "x" * 30, "cell0=sepconv5x5 cell1=dilconv3x3 cell2=maxpool"]  # fmt: skip


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _rich(renderable, state: ConsoleState, color_system: str | None = "standard", **kw) -> str:
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=state.styled, color_system=color_system if state.styled else None,
        no_color=state.no_color, width=state.width, height=state.height, highlight=False,
        soft_wrap=True,
    )  # fmt: skip
    console.print(renderable, **kw)
    return out.getvalue()


def _random_table(rng: random.Random) -> PlainTable:
    columns = [rng.choice(["trial", "status", "note", "架构", "gpus"]) + str(i)
               for i in range(rng.randint(1, 6))]  # fmt: skip
    widths = None
    if rng.random() < 0.4:
        widths = {c: rng.randint(1, 25) for c in columns if rng.random() < 0.7}
    rows = []
    for _ in range(rng.randint(0, 8)):
        row = []
        for _ in columns:
            text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 3)))
            style = rng.choice(["", "", *STYLES])
            row.append((text, style) if style else text)
        rows.append(row)
    no_wrap = frozenset(c for c in columns if rng.random() < 0.3)
    return PlainTable(columns, rows, widths, no_wrap, show_header=rng.random() < 0.8)


def test_tables_wider_than_the_terminal_wrap_as_rich_wraps_them() -> None:
    words = "cell0=dilconv3x3 cell1=skip cell2=conv5x5 skipin=[stem,cell2]"
    table = PlainTable(["trial", "status", "architecture", "note"],
                       [["9999", ("USER_CANCELED", "magenta"), words, "cancelled by the user"],
                        ["12", ("SUCCEEDED", "green"), "x" * 70, ""]],
                       no_wrap=frozenset(("trial", "status")))  # fmt: skip
    for width in (24, 40, 60, 80, 100, 120):
        for styled in (True, False):
            state = ConsoleState(styled, False, width, 25)
            ours = table.render(state)
            if ours is None:  # a column narrower than one cell: left to rich
                assert width < 30
                continue
            assert ours == _rich(table, state), width
    assert "cancelled by" in table.render(ConsoleState(False, False, 80, 25)).split("\n")[2]


def test_fixed_width_columns_narrowed_to_nothing_print_as_rich_prints_them() -> None:
    # trial ls --all on a narrow terminal: every column has a fixed width, rich narrows them
    # all evenly and a narrow one keeps only its padding (header cells included).
    widths = {"trial": 5, "status": 13, "final": 10, "architecture": 88, "gpus": 4,
              "duration": 9, "note": 40}  # fmt: skip
    rows = [["9999", ("USER_CANCELED", "magenta"), "-", "cell0=skip skipin=[stem,cell2]", "-",
             "1s", "cancelled by the user"], ["12", ("SUCCEEDED", "green"), "0.8489", "x", "0",
             "1m02s", ""]]  # fmt: skip
    for header in (True, False):
        table = PlainTable(TRIAL_COLUMNS, rows, widths, frozenset(("trial", "status")), header)
        for width in (100, 130, 160, 200):
            state = ConsoleState(True, False, width, 25)
            ours = table.render(state)
            if ours is None:  # columns narrower than their padding: left to rich
                assert width < 160
                continue
            assert ours == _rich(table, state), (header, width)


def test_what_only_rich_lays_out_goes_to_rich() -> None:
    state = ConsoleState(False, False, 30, 25)
    assert PlainTable(["a"], [["tab\there"]]).render(state) is None
    assert PlainTable(["a"], [["two\nlines"]]).render(state) is None
    assert PlainTable(["a", "b"], [["寬字" * 10, "y" * 20]]).render(state) is None  # wide, wrapped
    assert PlainTable(["[a]"], [["x"]]).render(state) is None  # a header rich reads as markup
    assert PlainTable(["a"], [[("x", "blink")]]).render(state) is None  # a style not known here


def test_trial_tables_match_rich_in_colour_and_in_a_pipe() -> None:
    rows = [
        {"id": str(i), "status": status, "final": final, "architecture": {"cell0": "skip",
         "skipin": ["stem", "cell1"]}, "gpus": gpus, "started": 10.0, "ended": 12.0 + i,
         "reason": reason, "attempt": attempt}
        for i, (status, final, gpus, reason, attempt) in enumerate([
            ("SUCCEEDED", {"default": 0.5}, None, None, 1),
            ("FAILED", None, [0, 1], "exit code 1: [boom]", 2),
            ("USER_CANCELED", None, None, "cancelled by the user", 1),
            ("RUNNING", None, [2], None, 1),
            ("NEW_STATUS", None, None, None, 1),
        ])
    ]  # fmt: skip
    table = trials_table(rows)
    assert list(table.columns) == list(TRIAL_COLUMNS)
    for state in (ConsoleState(True, False, 160, 40), ConsoleState(False, False, 160, 40),
                  ConsoleState(True, True, 160, 40)):  # fmt: skip
        ours = table.render(state)
        assert ours is not None
        assert ours == _rich(table, state)
    assert "\x1b[31mFAILED" in table.render(ConsoleState(True, False, 160, 40))


@pytest.mark.parametrize("text", ["19 of 10000 trials shown (newest first)", "a\n\nb", ""])
@pytest.mark.parametrize("styled", [True, False])
def test_styled_lines_match_rich(text: str, styled: bool) -> None:
    state = ConsoleState(styled, False, 30, 25)
    assert styled_lines(text, "dim", state) == _rich(text, state, style="dim")
    assert styled_lines("see [bold]x[/bold]", "dim", state) is None  # markup: rich's job
    assert styled_lines("a :smile:", "dim", state) is None  # an emoji code: rich's job


_ENVIRONMENTS = [
    {}, {"COLUMNS": "123"}, {"COLUMNS": "90", "LINES": "33"}, {"LINES": "12"},
    {"COLUMNS": "abc"}, {"TERM": "dumb"}, {"TERM": "dumb", "COLUMNS": "100"},
    {"TERM": "unknown", "COLUMNS": "100", "LINES": "10"}, {"NO_COLOR": "1"}, {"NO_COLOR": ""},
    {"FORCE_COLOR": "1"}, {"FORCE_COLOR": ""}, {"TTY_COMPATIBLE": "0"},
    {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color"}, {"COLORTERM": "truecolor"},
]  # fmt: skip


@pytest.mark.parametrize("environ", _ENVIRONMENTS)
@pytest.mark.parametrize("tty", [True, False])
def test_console_state_is_what_rich_detects(environ: dict[str, str], tty: bool) -> None:
    stream = _Stream(tty)
    state = ConsoleState.detect(stream, environ)
    console = Console(file=stream, _environ=environ, highlight=False, soft_wrap=True)
    assert state is not None
    assert state.styled == (console.color_system is not None)
    assert state.no_color == console.no_color
    assert (state.width, state.height) == tuple(console.size)
    table = PlainTable(["trial", "status"], [["1", ("RUNNING", "cyan")]])
    out = io.StringIO()
    Console(file=out, force_terminal=console.is_terminal, _environ=environ, width=console.width,
            highlight=False, soft_wrap=True).print(table)  # fmt: skip
    assert table.render(state) == out.getvalue()


def test_a_stream_that_is_not_utf8_is_left_to_rich() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    assert ConsoleState.detect(stream, {}) is None


def test_line_breaks_and_narrowing_follow_riches_own_arithmetic() -> None:
    from rich._ratio import ratio_reduce
    from rich._wrap import divide_line

    from nascli.cli.plainlayout import breaks, take

    rng = random.Random(1)
    for _ in range(3000):
        text = "".join(rng.choice("ab  c") for _ in range(rng.randint(0, 40)))
        width = rng.randint(0, 15)
        assert breaks(text, width) == divide_line(text, width, fold=False), (text, width)
        n = rng.randint(1, 6)
        widths = [rng.randint(1, 50) for _ in range(n)]
        shares = [rng.randint(0, 2) for _ in range(n)]
        limits, total = [rng.randint(0, 20) for _ in range(n)], rng.randint(0, 60)
        assert take(total, shares, limits, widths) == ratio_reduce(total, shares, limits, widths)


def _random_grid(rng: random.Random) -> PlainGrid:
    rows = []
    for label in rng.sample(["experiment", "status", "trials", "budget", "best", "dir"], 4):
        if rng.random() < 0.5:
            value: str | Runs = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 6)))
        else:
            runs = tuple((rng.choice(_WORDS[:8]), rng.choice(["", "dim", "red", "yellow"]))
                         for _ in range(rng.randint(1, 3)))  # fmt: skip
            value = Runs(rng.choice(["", "green", "cyan"]), runs)
        rows.append((label, value))
    warning = rng.choice([None, "the manager is not running; `nascli resume x` [continues]"])
    return PlainGrid(rows, warning)


def _random_parts(kind: str, rng: random.Random) -> list[object]:
    if kind == "table":
        return [_random_table(rng)]
    grid = _random_grid(rng)
    return [grid, PlainGroup([grid, PlainTable(["a"], [["x"]]), ""])]


@pytest.mark.parametrize("kind", ["table", "grid"])
@pytest.mark.parametrize("seed", range(12))
def test_renderables_render_as_rich_renders_them(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    written = 0
    for _ in range(60):
        state = ConsoleState(rng.random() < 0.5, rng.random() < 0.2, rng.randint(20, 220), 25)
        for part in _random_parts(kind, rng):
            ours = part.render(state)  # type: ignore[attr-defined]
            if ours is None:  # declined: rich lays it out
                continue
            written += 1
            for system in ("standard", "256", "truecolor"):
                assert ours == _rich(part, state, system), (part, state)
    assert written >= 10  # most generated ones are laid out here: the fast path is taken


def test_the_status_view_matches_rich_at_any_width() -> None:
    summary = {
        "id": "q74bighn", "name": "reading", "status": "RUNNING", "reason": "resumed",
        "started": 1.7e9, "ended": None, "exec_seconds": 22.0, "proposed": 60,
        "trials": {"WAITING": 0, "RUNNING": 2, "SUCCEEDED": 56, "FAILED": 3},
        "max_trial_num": 60, "trial_concurrency": 2, "max_exec_duration": 86_313_600,
        "tuner": "Random", "optimize_mode": "maximize",
        "assessor": {"name": "Medianstop", "error": "boom [x]"},
        "manager": {"pid": 42, "alive": True}, "waiting_for": "a free GPU",
        "best": {"id": "14", "metric": 0.9767, "architecture": {"cell0": "maxpool",
                 "skipin": ["stem", "cell1"]}},
        "directory": "/home/someone/nascli-experiments/q74bighn",
        "warning": "the manager is not running (it was killed or crashed)",
    }  # fmt: skip
    view = status_view(summary)
    for width in (40, 60, 80, 120, 200):
        for styled, no_color in ((True, False), (False, False), (True, True)):
            state = ConsoleState(styled, no_color, width, 25)
            ours = view.render(state)
            assert ours is not None, width
            assert ours == _rich(view, state), width
