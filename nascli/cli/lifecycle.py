"""``nascli create | resume | stop | status``: an experiment's life."""

from __future__ import annotations

from pathlib import Path

import typer

from nascli.cli import ID_HELP
from nascli.cli.boundary import cli_command, stderr_console, stdout_console, terminal_safe
from nascli.cli.views import architecture_text, format_metric, status_view


def _print_notes(notes: tuple[str, ...] | list[str]) -> None:
    if not notes:
        return
    from rich.text import Text

    for note in notes:
        stderr_console.print(Text.assemble(("note: ", "yellow"), note))


@cli_command
def create(
    config: Path = typer.Option(..., "--config", "-c", help="The experiment's YAML config."),
    foreground: bool = typer.Option(
        False, "--foreground", "-f", help="Run attached with a live view; Ctrl-C stops it."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check everything and print the plan; start nothing."
    ),
) -> None:
    """Check the config, search space, tuner and GPUs, then start an experiment."""
    from nascli.experiment.control import start_manager
    from nascli.experiment.prepare import prepare_experiment
    from nascli.experiment.store import create_experiment

    plan = prepare_experiment(config)
    cfg = plan.config
    _print_notes(plan.notes)
    if dry_run:
        stdout_console.print(
            f"config {cfg.path} is valid\n"
            f"  search space: {len(plan.search_space)} choices ({plan.search_space_origin})\n"
            f"  tuner: {cfg.tuner.label}\n"
            f"  trials: {cfg.max_trial_num} at most, {plan.slots} at a time, "
            f"command {cfg.trial.command!r} in {cfg.trial.code_dir}\n"
            f"  GPUs per trial: {'not managed' if cfg.trial.gpu_num is None else cfg.trial.gpu_num}"
        )
        return
    store = create_experiment(
        cfg.to_dict(), plan.config_text, plan.search_space, cfg.experiment_name, cfg.author_name
    )
    token = store.pending_start()
    if token is None:  # a `stop` came first
        _ended_already(store)
        return
    if foreground:
        stdout_console.print(f"experiment {store.id} started in the foreground (Ctrl-C stops it)")
        _run_foreground(store, token)
        return
    pid = start_manager(store, token=token)
    stdout_console.print(f"experiment {store.id} started (manager pid {pid})")
    if _ended_already(store):
        return
    stdout_console.print(
        f"  nascli status {store.id}      progress and best architecture\n"
        f"  nascli trial ls {store.id}    trials\n"
        f"  nascli top                    live view\n"
        f"  nascli webui                  web page (http://127.0.0.1:8080/experiments/{store.id})\n"
        f"  nascli stop {store.id}        stop it",
        style="dim",
    )


def _ended_already(store) -> bool:  # noqa: ANN001
    """Say so when the manager ended the experiment before ``create``/``resume`` returned (a
    very short experiment, or a ``stop`` that came first)."""
    exp = store.experiment()
    if exp.status in ("RUNNING", "NO_MORE_TRIAL"):
        return False
    stdout_console.print(
        f"experiment {exp.id} {exp.status} already" + (f": {exp.reason}" if exp.reason else "")
    )
    return True


def _run_foreground(store, token: str) -> None:  # noqa: ANN001
    from nascli.experiment.manager import Manager

    if stdout_console.is_terminal:
        from nascli.cli.live import ForegroundView

        # The view draws from its own thread and connection; the manager's thread only runs
        # the experiment (no observer), as when detached.
        with ForegroundView(store.dir, stdout_console.console):
            status = Manager(store, start_token=token).run()
    else:

        def report_ended(ended: list) -> None:
            # One plain line per ended trial: cheap, and readable in a log or a CI output.
            for t in ended:
                detail = format_metric(t.final) if t.final is not None else t.reason or ""
                stdout_console.print(f"trial {t.id} {t.status} {detail}")

        status = Manager(store, observer=report_ended, start_token=token).run()
    _print_outcome(store)
    if status == "ERROR":
        raise typer.Exit(1)


def _print_outcome(store) -> None:  # noqa: ANN001
    from nascli.experiment.report import best_trial

    exp = store.experiment()
    stdout_console.print(
        f"experiment {exp.id} {exp.status}" + (f": {exp.reason}" if exp.reason else "")
    )
    best = best_trial(store)
    if best:
        stdout_console.print(
            f"best: trial {best['id']} metric {format_metric(best['metric'])} "
            f"architecture {architecture_text(best['architecture'])}"
        )


@cli_command
def resume(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    foreground: bool = typer.Option(False, "--foreground", "-f", help="Run attached."),
) -> None:
    """Continue a stopped or crashed experiment: adopt its live trials, restore the tuner,
    finish the same budget."""
    from nascli.experiment.control import resume_experiment
    from nascli.experiment.store import open_experiment

    store = open_experiment(experiment_id)
    if foreground:
        from nascli.experiment.control import check_resumable

        check_resumable(store)
        stdout_console.print(f"experiment {store.id} resumed in the foreground")
        _run_foreground(store, store.request_start())
        return
    pid = resume_experiment(store)
    stdout_console.print(f"experiment {store.id} resumed (manager pid {pid})")
    _ended_already(store)


@cli_command
def stop(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    all_: bool = typer.Option(False, "--all", "-a", help="Stop every running experiment."),
    grace: float = typer.Option(
        5.0, "--grace", min=0.0, help="Seconds trials get to exit after SIGTERM before SIGKILL."
    ),
) -> None:
    """Stop an experiment: its manager and every trial process (children too)."""
    from nascli.errors import NasCliError
    from nascli.experiment.control import stop_experiment
    from nascli.experiment.store import ExperimentStore, open_experiment, scan_experiments
    from nascli.experiment.trials import LIVE_EXPERIMENT

    failed = 0
    if all_:
        dirs, broken = scan_experiments()
        report_broken(broken)
        stores = [ExperimentStore(d) for d in dirs]
        stores = [s for s in stores if s.experiment().status in LIVE_EXPERIMENT]
        if not stores:
            stdout_console.print("no running experiment")
            return
    else:
        stores = [open_experiment(experiment_id)]
    for store in stores:
        try:
            result = stop_experiment(store, grace=grace)
        except NasCliError as exc:
            if not all_:
                raise
            failed += 1  # stop the others anyway
            stderr_console.print(f"error: experiment {store.id}: {exc}")
            continue
        exp = store.experiment()
        stdout_console.print(
            f"experiment {exp.id} {exp.status}"
            + (
                f" ({result.cancelled_trials} running trial(s) cancelled)"
                if result.was_running
                else ""
            )
        )
    if failed:
        raise typer.Exit(1)


def report_broken(broken: list) -> None:  # noqa: ANN001 - [(Path, why)] from scan_experiments
    """One note per experiment directory that cannot be read (skipped by the command)."""
    _print_notes(tuple(f"skipped {path}: {why}" for path, why in broken))


@cli_command
def status(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """An experiment's status, trial counts, budget and best architecture so far."""
    from nascli.experiment.report import experiment_summary
    from nascli.experiment.store import open_experiment

    summary = experiment_summary(open_experiment(experiment_id))
    if as_json:
        import json

        typer.echo(json.dumps(summary, indent=2))
    else:
        stdout_console.print(status_view(terminal_safe(summary)))
