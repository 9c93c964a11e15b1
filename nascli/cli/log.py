"""``nascli log stdout | stderr | manager``: an experiment's or a trial's output."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer

from nascli.cli import ID_HELP
from nascli.cli.boundary import cli_command

_CHUNK = 1 << 20
_TAIL_BYTES = 4 << 20  # `--tail N` reads at most this much of the end of the file

app = typer.Typer(help="Show a trial's stdout/stderr or the manager's log.", no_args_is_help=True)


def _show(path: Path, tail: int | None, follow: bool, still_running) -> None:  # noqa: ANN001
    from nascli._files import open_regular
    from nascli.errors import UsageError

    if not path.exists():
        raise UsageError(f"{path} does not exist (yet)")
    try:
        f = open_regular(path)  # a trial may have put a FIFO or a device there
    except OSError as exc:
        raise UsageError(f"cannot show {path}: {exc.strerror or exc}") from None
    with f:
        if tail is not None:  # the last lines, from the end of the file only
            f.seek(max(0, os.fstat(f.fileno()).st_size - _TAIL_BYTES))
            data = f.read(_TAIL_BYTES)
            data = b"\n".join(data.splitlines()[-tail:]) + (b"\n" if data else b"")
            sys.stdout.buffer.write(data)
        else:
            while chunk := f.read(_CHUNK):
                sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        while follow:
            chunk = f.read(_CHUNK)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            elif not still_running():
                return
            else:
                time.sleep(0.2)


def _trial_file(experiment_id: str | None, trial_id: str | None, which: str, tail, follow) -> None:  # noqa: ANN001
    from nascli.errors import UsageError
    from nascli.experiment.store import TrialQuery, open_experiment

    store = open_experiment(experiment_id)
    recent = [t.id for t in store.trials_page(TrialQuery("newest", limit=10))][::-1]  # not all
    if trial_id is None:
        if not recent:
            raise UsageError(f"experiment {store.id} has no trials yet")
        trial_id = recent[-1]
    elif store.trial(trial_id) is None:
        known = ", ".join(recent) or "none"
        raise UsageError(f"experiment {store.id} has no trial {trial_id!r} (recent: {known})")
    paths = store.trial_paths(trial_id)

    def running() -> bool:
        t = store.trial(trial_id)
        return t is not None and not t.terminal

    _show(getattr(paths, which), tail, follow, running)


_TAIL = typer.Option(None, "--tail", "-T", min=1, help="Only the last N lines.")
_FOLLOW = typer.Option(False, "--follow", "-F", help="Keep printing until the trial ends.")


@app.command("stdout")
@cli_command
def stdout(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    trial_id: str = typer.Argument(None, help="Trial id; the latest trial when omitted."),
    tail: int = _TAIL,
    follow: bool = _FOLLOW,
) -> None:
    """A trial's stdout."""
    _trial_file(experiment_id, trial_id, "stdout", tail, follow)


@app.command("stderr")
@cli_command
def stderr(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    trial_id: str = typer.Argument(None, help="Trial id; the latest trial when omitted."),
    tail: int = _TAIL,
    follow: bool = _FOLLOW,
) -> None:
    """A trial's stderr."""
    _trial_file(experiment_id, trial_id, "stderr", tail, follow)


@app.command("manager")
@cli_command
def manager(
    experiment_id: str = typer.Argument(None, help=ID_HELP),
    tail: int = _TAIL,
    follow: bool = _FOLLOW,
) -> None:
    """The manager's log."""
    from nascli.experiment.control import manager_alive
    from nascli.experiment.store import open_experiment

    store = open_experiment(experiment_id)
    _show(store.manager_log, tail, follow, lambda: manager_alive(store.experiment()))
