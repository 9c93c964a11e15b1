"""``nascli trial ls | kill``."""

from __future__ import annotations

import json

import typer

from nascli.cli.boundary import cli_command, stdout_console
from nascli.cli.lifecycle import ID_HELP
from nascli.cli.views import trials_table
from nascli.experiment.trials import TrialStatus

app = typer.Typer(help="List and cancel trials.", no_args_is_help=True)

_STATUSES = tuple(status.value for status in TrialStatus)


@app.command("ls")
@cli_command
def ls(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    status: str = typer.Option(
        None, "--status", "-s", help=f"Only trials in: {', '.join(_STATUSES)}."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """An experiment's trials: status, final metric, architecture, GPUs, duration."""
    from nascli._text import did_you_mean
    from nascli.errors import UsageError
    from nascli.experiment.report import trial_rows
    from nascli.experiment.store import open_experiment

    if status is not None:
        status = status.upper()
        if status not in _STATUSES:
            raise UsageError(
                f"--status: {status!r} is not a trial status{did_you_mean(status, _STATUSES)} "
                f"(allowed: {', '.join(_STATUSES)})"
            )
    rows = trial_rows(open_experiment(experiment_id), status)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        stdout_console.print("no trials" + (f" with status {status}" if status else ""))
    else:
        stdout_console.print(trials_table(rows))


@app.command("kill")
@cli_command
def kill(
    experiment_id: str = typer.Argument(..., help="Experiment id (a unique prefix is enough)."),
    trial_id: str = typer.Argument(..., help="Trial id (as `trial ls` shows)."),
    grace: float = typer.Option(5.0, "--grace", min=0.0, help="Seconds before SIGKILL."),
) -> None:
    """Cancel one trial: its whole process group, recorded USER_CANCELED."""
    from nascli.experiment.control import kill_trial
    from nascli.experiment.store import open_experiment

    store = open_experiment(experiment_id)
    final = kill_trial(store, trial_id, grace=grace)
    stdout_console.print(f"trial {trial_id} of {store.id}: {final}")
