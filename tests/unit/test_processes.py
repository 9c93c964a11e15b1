"""Process-group helpers: what counts as a live trial group."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from nascli.experiment.processes import group_alive, terminate_groups


def test_a_running_group_is_alive_and_a_zombie_only_group_is_not() -> None:
    leader = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert group_alive(leader.pid)
        os.kill(leader.pid, signal.SIGKILL)
        # not reaped yet: a zombie, as a trial's orphans are until a slow PID 1 reaps them
        deadline = time.monotonic() + 5
        while group_alive(leader.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not group_alive(leader.pid)
        with open(f"/proc/{leader.pid}/stat") as f:
            assert f.read().split(")")[-1].split()[0] == "Z"
    finally:
        leader.kill()
        leader.wait()


def test_terminate_groups_returns_once_the_groups_are_gone() -> None:
    leaders = [subprocess.Popen(["sleep", "30"], start_new_session=True) for _ in range(2)]
    start = time.monotonic()
    terminate_groups([p.pid for p in leaders], grace=10)
    # not the 10 s grace: SIGTERM ended them (the unreaped leaders do not count as running)
    assert time.monotonic() - start < 5
    assert [p.wait(timeout=5) for p in leaders] == [-signal.SIGTERM, -signal.SIGTERM]
