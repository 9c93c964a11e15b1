"""The live view of ``nascli create/resume --foreground`` on a terminal.

It is drawn by rich's refresh thread, never by the manager's: the manager runs its loop on the
main thread as when detached, and the view reads the experiment through its own connection to
the store (WAL: a reader neither blocks the manager nor waits for it). The frames are read
incrementally and drawn from pre-rendered lines (``liveframes.py``): a frame costs nothing when
nothing was committed since the last one and no running trial's clock moved a second, and
otherwise a few indexed reads (never the ended trials again) and well under a millisecond of
drawing, so the view's share of the interpreter stays out of the experiment's way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

log = logging.getLogger("nascli.manager")

#: Redraws per second (rich's refresh thread).
FRAMES_PER_SECOND = 2


class ForegroundView:
    """``with ForegroundView(exp_dir, console): Manager(store).run()`` shows the experiment
    live while the manager runs, and its final state once the block ends."""

    def __init__(self, exp_dir: str | Path, console: Console):
        from nascli.cli.liveframes import LiveFrames
        from nascli.experiment.store import ExperimentStore

        self._store = ExperimentStore(exp_dir)
        self._console = console
        self._live: Any = None
        self._frames = LiveFrames(self._store, console)
        self._frame: RenderableType | None = None

    def __enter__(self) -> ForegroundView:
        from rich.live import Live

        self._live = Live(
            console=self._console, get_renderable=self.frame, auto_refresh=True,
            refresh_per_second=FRAMES_PER_SECOND,
        )  # fmt: skip
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._frames.invalidate()  # the last frame shows the final state
        try:
            self._live.stop()
        finally:
            self._store.close()

    def frame(self) -> RenderableType:
        """The current frame (``LiveFrames.frame``). A failed read keeps the last frame (and is
        logged): the display never ends the run."""
        try:
            self._frame = self._frames.frame()
        except Exception:  # noqa: BLE001 - e.g. a locked database: show the last frame
            log.exception("the live view could not read the experiment")
            if self._frame is None:
                from rich.text import Text

                return Text("(the live view could not read the experiment)")
        return self._frame
