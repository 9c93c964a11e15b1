"""``nascli``: the root command. Subcommands live in one module per command group."""

from __future__ import annotations

import gc

import typer

from nascli import __version__
from nascli.cli import experiment, lifecycle, log, ss_gen, top, trial, webui
from nascli.cli.boundary import state, stdout_console

app = typer.Typer(
    name="nascli",
    help="Neural architecture search for PyTorch: experiments, trials, search spaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        stdout_console.print(f"nascli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """nascli: neural architecture search for PyTorch."""
    state.debug = debug


app.command("create")(lifecycle.create)
app.command("resume")(lifecycle.resume)
app.command("stop")(lifecycle.stop)
app.command("status")(lifecycle.status)
app.command("top")(top.top)
app.add_typer(experiment.app, name="experiment")
app.add_typer(trial.app, name="trial")
app.add_typer(log.app, name="log")
app.command("ss_gen")(ss_gen.ss_gen)
app.command("ss-gen", hidden=True)(ss_gen.ss_gen)
app.command("webui")(webui.webui)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # The interpreter's last garbage collection walks every object the CLI imported (~25 ms
        # of each command's wall time, a sixth of `nascli status`); the OS frees that memory
        # anyway. Files and the store are closed by then or by reference counting.
        gc.freeze()


if __name__ == "__main__":
    main()
