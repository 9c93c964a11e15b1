"""``nascli experiment list | show | export | delete``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nascli.cli import ID_HELP
from nascli.cli.boundary import cli_command, stdout_console, terminal_safe
from nascli.cli.lifecycle import report_broken
from nascli.cli.views import experiments_table

app = typer.Typer(help="List, inspect, export and delete experiments.", no_args_is_help=True)


@app.command("list")
@cli_command
def list_(
    all_: bool = typer.Option(False, "--all", "-a", help="Include ended experiments."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Experiments under $NASCLI_HOME (running ones; --all for every one)."""
    from nascli.experiment.report import experiment_rows

    broken: list = []
    rows = experiment_rows(include_ended=all_, broken=broken)
    report_broken(broken)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        stdout_console.print(
            "no running experiment" + ("" if all_ else " (--all lists ended ones)")
        )
    else:
        stdout_console.print(experiments_table(terminal_safe(rows)))


@app.command("show")
@cli_command
def show(experiment_id: str = typer.Argument(None, help=ID_HELP)) -> None:
    """The experiment's stored config (resolved, as JSON) and its directory."""
    from nascli.experiment.store import open_experiment

    store = open_experiment(experiment_id)
    exp = store.experiment()
    typer.echo(
        json.dumps(
            {"id": exp.id, "name": exp.name, "status": exp.status, "directory": str(store.dir),
             "config": exp.config},
            indent=2,
        )
    )  # fmt: skip


@app.command("export")
@cli_command
def export(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    kind: str = typer.Option(..., "--type", "-t", help="csv or json."),
    file: Path = typer.Option(..., "--file", "--filename", "-f", help="Where to write."),
) -> None:
    """Write every trial (parameters, architecture, metrics, status) to a CSV or JSON file."""
    from nascli.errors import UsageError
    from nascli.experiment.report import export_csv, export_json
    from nascli.experiment.store import open_experiment

    if kind not in ("csv", "json"):
        raise UsageError(f"--type must be 'csv' or 'json', got {kind!r}")
    store = open_experiment(experiment_id)
    write = export_csv if kind == "csv" else export_json
    try:
        # Rows are written as they are read: memory stays flat however many trials there are.
        with open(file, "w", newline="" if kind == "csv" else None) as out:
            count = write(store, out)
    except OSError as exc:
        raise UsageError(f"--file: cannot write {str(file)!r}: {exc.strerror or exc}") from None
    stdout_console.print(f"wrote {count} trial(s) of {store.id} to {file}")


@app.command("delete")
@cli_command
def delete(
    experiment_id: str = typer.Argument(..., help="Experiment id (a unique prefix is enough)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an experiment's directory (refused while it runs)."""
    from nascli.errors import UsageError
    from nascli.experiment.control import delete_experiment
    from nascli.experiment.store import open_experiment

    store = open_experiment(experiment_id)
    if not yes:
        if not stdout_console.is_terminal:
            raise UsageError(f"deleting {store.dir} needs --yes when not run interactively")
        if not typer.confirm(f"delete experiment {store.id} ({store.dir})?"):
            raise typer.Exit(1)
    path = delete_experiment(store)
    stdout_console.print(f"deleted {path}")
