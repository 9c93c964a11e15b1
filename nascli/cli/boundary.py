"""The CLI's error boundary: typed nascli errors become one red line on stderr and an exit code.

Every command is wrapped with ``@cli_command``. ``--debug`` (on the root command) adds the
traceback. Exit codes: 2 for usage errors (bad arguments, config, files), 1 for failures,
130 for Ctrl-C.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from nascli.errors import NasCliError

__all__ = ["cli_command", "state", "stderr_console", "stdout_console"]

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False


state = _State()
stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)
stdout_console = Console(highlight=False, soft_wrap=True)


def _fail(message: str, code: int) -> typer.Exit:
    if state.debug:
        stderr_console.print(Text(traceback.format_exc().rstrip(), style="dim"))
    stderr_console.print(Text.assemble(("error: ", "bold red"), message))
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
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary reports anything unexpected
            hint = "" if state.debug else " (run with --debug for the traceback)"
            raise _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", 1) from None

    return wrapper  # type: ignore[return-value]
