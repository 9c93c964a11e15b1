"""``nascli``: the root command. Subcommands live in one module per command group.

``main`` (the console script) builds the typer app with the one command the command line
names, so ``nascli trial ls`` imports and converts to click only ``nascli.cli.trial``, not
every command module (typer turns each registered function's signature into click options on
every run), and ``nascli --version`` none; anything else (``--help``, an unknown or misspelt
command) gets the whole app, so help, suggestions and errors read as they always did. ``app``
is the whole app, built when first asked for (tests drive it with ``typer.testing.CliRunner``).
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import typer

from nascli import __version__
from nascli.cli.boundary import state, stdout_console

#: Command name -> (module under nascli.cli, attribute, a group of subcommands, hidden).
COMMANDS: dict[str, tuple[str, str, bool, bool]] = {
    "create": ("lifecycle", "create", False, False),
    "resume": ("lifecycle", "resume", False, False),
    "stop": ("lifecycle", "stop", False, False),
    "status": ("lifecycle", "status", False, False),
    "top": ("top", "top", False, False),
    "experiment": ("experiment", "app", True, False),
    "trial": ("trial", "app", True, False),
    "log": ("log", "app", True, False),
    "ss_gen": ("ss_gen", "ss_gen", False, False),
    "ss-gen": ("ss_gen", "ss_gen", False, True),
    "webui": ("webui", "webui", False, False),
}
_ROOT_OPTIONS = ("--debug",)  # root options that take no value and may precede the command


def _version(value: bool) -> None:
    if value:
        stdout_console.print(f"nascli {__version__}")
        raise typer.Exit()


def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """nascli: neural architecture search for PyTorch."""
    state.debug = debug


def build_app(names: list[str] | None = None) -> typer.Typer:
    """The root app with the commands ``names`` (all of them, in help order, when None)."""
    app = typer.Typer(
        name="nascli",
        help="Neural architecture search for PyTorch: experiments, trials, search spaces.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(root)
    for name in COMMANDS if names is None else names:
        module_name, attribute, group, hidden = COMMANDS[name]
        module = importlib.import_module(f"nascli.cli.{module_name}")
        target = getattr(module, attribute)
        if group:
            app.add_typer(target, name=name)
        else:
            app.command(name, hidden=hidden)(target)
    return app


def command_named(argv: list[str]) -> str | None:
    """The command ``argv`` (without the program name) runs, when it names one for certain:
    its first word after the root's flags is a known command."""
    for arg in argv:
        if arg in _ROOT_OPTIONS:
            continue
        return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    if name == "app":
        value = build_app()
        globals()["app"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    command = command_named(argv)
    # `--version` alone prints and exits while its option is parsed, before any command.
    names = [] if argv == ["--version"] else None if command is None else [command]
    try:
        build_app(names)()
    finally:
        # The interpreter's last garbage collection walks every object the CLI imported (~25 ms
        # of each command's wall time, a sixth of `nascli status`); the OS frees that memory
        # anyway. Files and the store are closed by then or by reference counting.
        gc.freeze()


if __name__ == "__main__":
    main()
