"""Process-group helpers: every command nascli starts runs in its own session/process group, so
that stopping it reaches its children and grandchildren too."""

from __future__ import annotations

import os
import signal
import subprocess
import time

__all__ = ["group_alive", "terminate_group"]


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still alive (zombies of ours count as gone only
    once reaped by their parent)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate_group(
    pgid: int, grace: float = 5.0, leader: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for it to end, then SIGKILL what is left.

    ``leader``: the group leader when it is our child, so that it is reaped while we wait (an
    unreaped zombie would keep the group looking alive).
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if leader is not None:
        leader.wait()
