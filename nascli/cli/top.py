"""``nascli top``: a live view of running experiments and their latest trials."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from nascli.cli.boundary import cli_command, stdout_console, terminal_safe
from nascli.cli.plain import PlainGroup
from nascli.cli.views import status_view, trials_table

_LATEST = 10


class TopFrames:
    """Builds ``top``'s frames. Each experiment costs a few indexed reads (its row, counts,
    best trial, latest trials), never a read of all its trials; an ended experiment is dropped
    after reading its row alone (without ``--all``), and one whose database files have not
    changed since the last frame is not read again (its part of the frame is reused; a resume
    changes the files)."""

    def __init__(self, include_ended: bool):
        self.include_ended = include_ended
        self._cache: dict[Path, tuple[tuple[int, ...], list[Any]]] = {}

    def frame(self) -> PlainGroup:
        from nascli.experiment.store import list_experiment_dirs

        parts: list[Any] = []
        for exp_dir in list_experiment_dirs():
            stamp = _stamp(exp_dir)
            cached = self._cache.get(exp_dir)
            if cached is not None and cached[0] == stamp:
                parts += cached[1]
                continue
            ended, mine = self._parts(exp_dir)
            if ended:  # a running one is read each frame: its manager may die unnoticed
                self._cache[exp_dir] = (stamp, mine)
            parts += mine
        return PlainGroup(parts or ["no running experiment (nascli top --all shows all)"])

    def _parts(self, exp_dir: Path) -> tuple[bool, list[Any]]:
        """Whether the experiment has ended, and its part of the frame."""
        from nascli.experiment.report import experiment_summary, iter_trial_rows
        from nascli.experiment.store import ExperimentStore
        from nascli.experiment.trials import LIVE_EXPERIMENT

        store = ExperimentStore(exp_dir)
        try:
            if not self.include_ended and store.experiment().status not in LIVE_EXPERIMENT:
                return True, []
            summary = experiment_summary(store)
            ended = summary["status"] not in LIVE_EXPERIMENT
            if ended and not self.include_ended:
                return True, []
            latest = terminal_safe(list(iter_trial_rows(store, sort="newest", limit=_LATEST)))
            view = status_view(terminal_safe(summary))
            return ended, [view, trials_table(latest[::-1]), ""]
        finally:
            store.close()


def _stamp(exp_dir: Path) -> tuple[int, ...]:
    """What changes when the experiment's database does (WAL: the -wal file takes the writes).
    A running experiment's manager also counts: its liveness shows in the frame."""
    stamp = []
    for name in ("experiment.sqlite", "experiment.sqlite-wal"):
        try:
            st = os.stat(exp_dir / name)
            stamp += [st.st_mtime_ns, st.st_size]
        except OSError:
            stamp += [0, 0]
    return tuple(stamp)


@cli_command
def top(
    interval: float = typer.Option(1.0, "--interval", "-t", min=0.1, help="Seconds per refresh."),
    once: bool = typer.Option(False, "--once", help="Print one frame and exit."),
    all_: bool = typer.Option(False, "--all", "-a", help="Include ended experiments."),
) -> None:
    """Live view of running experiments (Ctrl-C leaves)."""
    frames = TopFrames(all_)
    if once or not stdout_console.is_terminal:
        stdout_console.print(frames.frame())
        return
    from rich.live import Live

    console = stdout_console.console
    with Live(frames.frame(), console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(frames.frame(), refresh=True)
        except KeyboardInterrupt:
            return
