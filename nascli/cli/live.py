"""The live view of ``nascli create/resume --foreground`` on a terminal.

It is drawn by rich's refresh thread, never by the manager's: the manager runs its loop on the
main thread as when detached, and the view reads the experiment through its own connection to
the store (WAL: a reader neither blocks the manager nor waits for it). Each frame costs a few
indexed reads (the summary, the newest trials), not a read of every trial, and none at all
when nothing was committed since the last frame (SQLite's ``data_version``) and the running
trials' clocks have not moved a second.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nascli.cli.views import status_view, trials_table

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

log = logging.getLogger("nascli.manager")

#: Trials the view shows (the newest, in launch order).
LATEST = 15
#: Redraws per second (rich's refresh thread).
FRAMES_PER_SECOND = 2


class ForegroundView:
    """``with ForegroundView(exp_dir, console): Manager(store).run()`` shows the experiment
    live while the manager runs, and its final state once the block ends."""

    def __init__(self, exp_dir: str | Path, console: Console):
        from nascli.experiment.store import ExperimentStore

        self._store = ExperimentStore(exp_dir)
        self._console = console
        self._live: Any = None
        self._frame: RenderableType | None = None
        self._version: int | None = None
        self._drawn_at = 0.0

    def __enter__(self) -> ForegroundView:
        from rich.live import Live

        self._live = Live(
            console=self._console, get_renderable=self.frame, auto_refresh=True,
            refresh_per_second=FRAMES_PER_SECOND,
        )  # fmt: skip
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._version = None  # the last frame shows the final state
        try:
            self._live.stop()
        finally:
            self._store.close()

    def frame(self) -> RenderableType:
        """The current frame; rereads the store only if it changed (or a second passed). A
        failed read keeps the last frame (and is logged): the display never ends the run."""
        try:
            return self._read_frame()
        except Exception:  # noqa: BLE001 - e.g. a locked database: show the last frame
            log.exception("the live view could not read the experiment")
            if self._frame is None:
                from rich.text import Text

                return Text("(the live view could not read the experiment)")
            return self._frame

    def _read_frame(self) -> RenderableType:
        version = self._store.data_version()
        now = time.monotonic()
        if self._frame is None or version != self._version or now - self._drawn_at >= 1.0:
            from rich.console import Group

            from nascli.cli.boundary import terminal_safe
            from nascli.experiment.report import experiment_summary, iter_trial_rows

            summary = terminal_safe(experiment_summary(self._store))
            latest = list(iter_trial_rows(self._store, sort="newest", limit=LATEST))[::-1]
            self._frame = Group(status_view(summary), trials_table(terminal_safe(latest)))
            self._version, self._drawn_at = version, now
        return self._frame
