"""``nascli top``: a live view of running experiments and their latest trials."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from nascli.cli.boundary import cli_command, stdout_console
from nascli.cli.views import status_view, trials_table

if TYPE_CHECKING:
    from rich.console import RenderableType


def _frame(include_ended: bool) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    from nascli.experiment.report import experiment_summary, trial_rows
    from nascli.experiment.store import ExperimentStore, list_experiment_dirs
    from nascli.experiment.trials import LIVE_EXPERIMENT

    parts: list[RenderableType] = []
    for exp_dir in list_experiment_dirs():
        store = ExperimentStore(exp_dir)
        try:
            summary = experiment_summary(store)
            if include_ended or summary["status"] in LIVE_EXPERIMENT:
                parts += [status_view(summary), trials_table(trial_rows(store), 10), Text("")]
        finally:
            store.close()
    return Group(*parts) if parts else Text("no running experiment (nascli top --all shows all)")


@cli_command
def top(
    interval: float = typer.Option(1.0, "--interval", "-t", min=0.1, help="Seconds per refresh."),
    once: bool = typer.Option(False, "--once", help="Print one frame and exit."),
    all_: bool = typer.Option(False, "--all", "-a", help="Include ended experiments."),
) -> None:
    """Live view of running experiments (Ctrl-C leaves)."""
    if once or not stdout_console.is_terminal:
        stdout_console.print(_frame(all_))
        return
    from rich.live import Live

    console = stdout_console.console
    with Live(_frame(all_), console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(_frame(all_), refresh=True)
        except KeyboardInterrupt:
            return
