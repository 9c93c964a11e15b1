"""Process-group helpers: every command nascli starts runs in its own session/process group, so
that stopping it reaches its children and grandchildren too."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

    from nascli.experiment.store import ExperimentRecord

__all__ = [
    "group_alive", "terminate_group", "terminate_groups", "process_token", "process_alive",
    "manager_alive",
]  # fmt: skip


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running. Zombies do not count: a trial's
    orphaned children are reaped by PID 1, which in containers and VMs can take seconds (1.4 s
    measured on the project's machine) or never happen, and a stop or a slot refill must not
    wait for that."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _group_has_running_member(pgid)


def _group_has_running_member(pgid: int) -> bool:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust kill()
    for entry in entries:
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields and len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...; the
    name may hold spaces and parentheses), or None where there is no such process or /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def terminate_group(
    pgid: int, grace: float = 5.0, leader: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for it to end, then SIGKILL what is left.

    ``leader``: the group leader when it is our child; it is reaped before this returns, so no
    zombie is left behind.
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


def terminate_groups(pgids: list[int], grace: float = 5.0) -> None:
    """``terminate_group`` for several groups at once: one shared grace period, not one each."""
    live = []
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
            live.append(pgid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = [g for g in live if group_alive(g)]
        if live:
            time.sleep(0.02)
    for pgid in live:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def process_token(pid: int) -> str | None:
    """Something that tells this process apart from a later one reusing its pid: its start
    time in clock ticks since boot (Linux ``/proc``), or None where that is unavailable."""
    fields = _stat_fields(pid)  # field 22 of stat (starttime) is the 20th after the name
    return fields[19].decode() if fields and len(fields) > 19 else None


def process_alive(pid: int, token: str | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``token``, is still the process that had it). Zombies
    count as ended."""
    if pid <= 0:  # 0 and -N name process groups for kill(); no trial or manager has them
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields and fields[0] == b"Z":
        return False
    return token is None or process_token(pid) in (token, None)


def manager_alive(exp: ExperimentRecord) -> bool:
    """Whether the manager recorded in ``exp`` is still that running process."""
    return exp.manager_pid is not None and process_alive(exp.manager_pid, exp.manager_token)
