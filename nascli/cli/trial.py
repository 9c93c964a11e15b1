"""``nascli trial ls | kill``."""

from __future__ import annotations

import sys

import typer

from nascli.cli import ID_HELP
from nascli.cli.boundary import cli_command, stderr_console, stdout_console, terminal_safe
from nascli.cli.views import streamed_trials_tables, trials_table
from nascli.experiment.trials import TrialStatus

app = typer.Typer(help="List and cancel trials.", no_args_is_help=True)

_STATUSES = tuple(status.value for status in TrialStatus)
_SORTS = ("launch", "newest", "best")


def _one_of(option: str, value: str, allowed: tuple[str, ...], what: str) -> str:
    from nascli._text import did_you_mean
    from nascli.errors import UsageError

    if value not in allowed:
        raise UsageError(
            f"{option}: {value!r} is not {what}{did_you_mean(value, allowed)} "
            f"(allowed: {', '.join(allowed)})"
        )
    return value


@app.command("ls")
@cli_command
def ls(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    status: str = typer.Option(
        None, "--status", "-s", help=f"Only trials in: {', '.join(_STATUSES)}."
    ),
    sort: str = typer.Option(
        None,
        "--sort",
        help="launch (launch order), newest (newest first) or best (best final metric first, "
        "by the tuner's optimize_mode). Default: newest for the table, launch for --json.",
    ),
    limit: int = typer.Option(
        None, "--limit", "-n", min=1, help="At most N trials (the table: a screenful)."
    ),
    all_: bool = typer.Option(False, "--all", "-a", help="Every trial (streamed as read)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON for scripts (every trial unless --limit)."
    ),
) -> None:
    """An experiment's trials: status, final metric, architecture, GPUs, duration.

    The table shows the newest screenful; --all streams every trial, --limit N shows N,
    --sort best the best first. --json prints every trial in launch order unless told
    otherwise, written as it is read."""
    from nascli.errors import UsageError
    from nascli.experiment.report import iter_trial_rows
    from nascli.experiment.store import open_experiment

    if status is not None:
        status = _one_of("--status", status.upper(), _STATUSES, "a trial status")
    if sort is not None:
        sort = _one_of("--sort", sort.lower(), _SORTS, "an order")
    if all_ and limit is not None:
        raise UsageError("--all and --limit contradict each other: give one of them")
    store = open_experiment(experiment_id)
    statuses = [status] if status else None
    if as_json:
        from nascli.experiment.trialjson import write_trials_json

        write_trials_json(store, sys.stdout, statuses, sort or "launch", limit)
        sys.stdout.write("\n")
        return
    sort = sort or "newest"
    counts = store.status_counts()
    total = counts[status] if status else sum(counts.values())
    if not total:
        stdout_console.print("no trials" + (f" with status {status}" if status else ""))
        return
    if all_:
        from nascli.experiment.report import trial_table_widths

        widths = trial_table_widths(store)
        for table in streamed_trials_tables(
            (terminal_safe(row) for row in iter_trial_rows(store, statuses, sort)), widths
        ):
            stdout_console.print(table)
        return
    shown = limit or max(5, stdout_console.height - 6)
    rows = terminal_safe(list(iter_trial_rows(store, statuses, sort, shown)))
    stdout_console.print(trials_table(rows))
    if total > shown:
        order = {"launch": "in launch order", "newest": "newest first", "best": "best first"}
        stderr_console.print(
            f"{shown} of {total} trials shown ({order[sort]}); --all for every one, "
            "--limit N for more, --sort best for the best",
            style="dim",
        )


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
