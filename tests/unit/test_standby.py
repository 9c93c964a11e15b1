"""Launchers started ahead are started off the caller's thread: the manager's thread never waits
for a fork, and take / discard still see every launcher a prepare asked for."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from nascli.experiment.services.base import TrialSpec
from nascli.experiment.services.standby import Standby

_WAITING = "read nascli_go || exit 125\necho ran\n"


def spec(tmp_path: Path, trial_id: str) -> TrialSpec:
    trial_dir = tmp_path / trial_id
    return TrialSpec(trial_id, "true", tmp_path, trial_dir, trial_dir / "o", trial_dir / "e", {})


class SlowSpawns:
    """Spawn functions that start a waiting launcher once their gate opens."""

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self.spawned: list[str] = []
        self.popens: list[subprocess.Popen[bytes]] = []

    def __call__(self, trial_id: str):
        gate = self.gates.setdefault(trial_id, threading.Event())
        entered = self.entered.setdefault(trial_id, threading.Event())

        def spawn() -> tuple[subprocess.Popen[bytes], None]:
            entered.set()
            gate.wait(10)
            popen = subprocess.Popen(["/bin/sh", "-c", _WAITING], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)  # fmt: skip
            self.spawned.append(trial_id)
            self.popens.append(popen)
            return popen, None

        return spawn

    def end_all(self) -> None:
        for gate in self.gates.values():
            gate.set()
        for popen in self.popens:
            if popen.poll() is None:
                popen.kill()
            popen.wait()


@pytest.fixture
def spawns():
    """Slow spawns; every launcher they started is ended after the test, whatever happens."""
    made = SlowSpawns()
    yield made
    made.end_all()


def test_prepare_returns_before_the_launcher_starts_and_take_waits_for_it(spawns, tmp_path):
    standby = Standby()
    a = spec(tmp_path, "1")
    began = time.monotonic()
    standby.prepare(a, spawns("1"))
    assert time.monotonic() - began < 0.5 and spawns.spawned == []  # not started yet
    threading.Timer(0.3, spawns.gates["1"].set).start()
    taken = standby.take(a)  # waits for the launcher being started, then tells it to go
    assert taken is not None and spawns.spawned == ["1"]
    assert taken[0].stdout.read() == b"ran\n" and taken[0].wait(10) == 0


def test_a_launcher_still_queued_is_dropped_by_take_and_never_started(spawns, tmp_path):
    standby = Standby()
    standby.prepare(spec(tmp_path, "1"), spawns("1"))
    assert spawns.entered["1"].wait(10)  # the worker is busy with this one
    b = spec(tmp_path, "2")
    standby.prepare(b, spawns("2"))
    spawns.gates["2"].set()
    assert standby.take(b) is None  # the caller starts its own launcher
    spawns.gates["1"].set()
    standby.discard_all()
    assert spawns.spawned == ["1"]
    assert all(p.poll() is not None for p in spawns.popens)  # ended, having run nothing
    assert [p.returncode for p in spawns.popens] == [125]


def test_discard_of_a_launcher_being_started_returns_once_it_is_ended(spawns, tmp_path):
    standby = Standby()
    standby.prepare(spec(tmp_path, "1"), spawns("1"))
    assert spawns.entered["1"].wait(10)  # the worker is in the spawn now
    threading.Timer(0.3, spawns.gates["1"].set).start()
    standby.discard("1")
    assert spawns.spawned == ["1"] and spawns.popens[0].returncode == 125
    assert standby.take(spec(tmp_path, "1")) is None
