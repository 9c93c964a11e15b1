"""The CLI's error boundary: typed nascli errors become one red line on stderr and an exit code.

Every command is wrapped with ``@cli_command``. ``--debug`` (on the root command) adds the
traceback. Exit codes: 2 for usage errors (bad arguments, config, files), 1 for failures,
130 for Ctrl-C.

Text that came from users or trials (experiment names, trial stderr in a failure reason, values
in an error message) reaches the terminal through ``terminal_safe``: control characters such as
ESC are shown escaped (``\x1b``), so no experiment can clear the screen or retitle the window.
Plain lines written with ``Output.print`` and error messages get this automatically; views get it
by passing their data through ``terminal_safe`` first. ``--json`` output is JSON-escaped already.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from nascli.errors import NasCliError

if TYPE_CHECKING:
    from rich.console import Console

    from nascli.cli.plainconsole import ConsoleState

__all__ = [
    "Output", "cli_command", "state", "stderr_console", "stdout_console", "terminal_safe",
]  # fmt: skip

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(data: Any) -> Any:
    """``data`` (a string, or dicts / lists / tuples of them) with every control character that
    a terminal would act on shown escaped; other values as they are."""
    if isinstance(data, str):
        return _UNSAFE.sub(_escape, data)
    if isinstance(data, dict):
        return {k: terminal_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(terminal_safe(v) for v in data)
    return data

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False


state = _State()


class Output:
    """Where a command writes: plain text lines go straight to the stream, exactly as given (no
    markup, no wrapping); rich renderables (tables, styled text, live views) go through a rich
    ``Console`` made on first use. ``plain.PlainTable`` tables and lines in one style are
    written without rich where ``plain`` can write rich's bytes (a table that fits the
    terminal), through rich otherwise. So a command that only prints lines (``--json``, a piped
    ``create -f``) or tables that fit (``trial ls``) never imports rich, a fifth of the CLI's
    start-up."""

    def __init__(self, stderr: bool = False):
        self._stderr = stderr
        self._console: Console | None = None
        self._state: ConsoleState | None | bool = False  # False: not detected yet

    @property
    def stream(self) -> Any:
        return sys.stderr if self._stderr else sys.stdout

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    @property
    def state(self) -> ConsoleState | None:
        """What rich's console would detect for this stream (None: only rich knows); read
        once, as rich's console reads its environment once."""
        if self._state is False:
            from nascli.cli.plainconsole import ConsoleState

            self._state = ConsoleState.detect(self.stream)
        return self._state  # type: ignore[return-value]

    @property
    def height(self) -> int:
        """The terminal's height in lines, as rich's console reads it."""
        state = self.state
        return self.console.height if state is None else state.height

    @property
    def is_terminal(self) -> bool:
        """Whether a person watches (live views) or a pipe or file takes lines."""
        return self.stream.isatty()

    def print(self, renderable: Any, style: str | None = None) -> None:
        """Write; if the reader has gone (``nascli create -f | head``), drop this and all later
        output and carry on: losing the display must not end the experiment."""
        try:
            if isinstance(renderable, str):
                renderable = terminal_safe(renderable)
            if isinstance(renderable, str) and style is None:
                self._write(renderable + "\n")
                return
            text = self._plain(renderable, style)
            if text is not None:
                self._write(text)
            else:
                self.console.print(renderable, style=style)
        except BrokenPipeError:
            _discard(self.stream)


    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _plain(self, renderable: Any, style: str | None) -> str | None:
        """``renderable`` as rich would write it, where ``plain`` can; else None."""
        from nascli.cli.plain import PlainGrid, PlainGroup, PlainTable, styled_lines

        if self._console is not None:
            # rich's console was made (a live view, a fallback): it owns the stream's state.
            return None
        if isinstance(renderable, (PlainTable, PlainGrid, PlainGroup)) and style is None:
            state = self.state
            return None if state is None else renderable.render(state)
        if isinstance(renderable, str) and style is not None:
            state = self.state
            return None if state is None else styled_lines(renderable, style, state)
        return None


def _discard(stream: Any) -> None:
    """Point ``stream`` at /dev/null, so that what is still buffered or written later (and the
    flush at exit) goes nowhere instead of raising again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


stderr_console = Output(stderr=True)
stdout_console = Output()


def _fail(message: str, code: int) -> typer.Exit:
    from rich.text import Text

    if state.debug:
        stderr_console.print(Text(traceback.format_exc().rstrip(), style="dim"))
    stderr_console.print(Text.assemble(("error: ", "bold red"), terminal_safe(message)))
    return typer.Exit(code)


def cli_command(fn: F) -> F:
    """Run a command body inside the error boundary."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NasCliError as exc:
            raise _fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None
        except BrokenPipeError:
            # The reader stopped reading (`nascli log stdout ID | head`): end quietly, as a
            # command killed by SIGPIPE would, with Python's exit code for it.
            _discard(sys.stdout)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary reports anything unexpected
            hint = "" if state.debug else " (run with --debug for the traceback)"
            raise _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", 1) from None

    return wrapper  # type: ignore[return-value]
