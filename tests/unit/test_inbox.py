"""The manager's inbox: exits seen through pidfds and items from other threads, one wait."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from nascli.experiment.inbox import Inbox


@pytest.fixture
def inbox():
    box = Inbox()
    yield box
    box.close()


def test_wait_times_out_empty(inbox: Inbox) -> None:
    start = time.monotonic()
    assert inbox.wait(0.05) == []
    assert time.monotonic() - start >= 0.04


def test_items_put_by_another_thread_wake_the_waiter(inbox: Inbox) -> None:
    threading.Timer(0.05, inbox.put, args=("a",)).start()
    start = time.monotonic()
    assert inbox.wait(10) == ["a"]
    assert time.monotonic() - start < 5


def test_items_already_there_are_returned_without_waiting(inbox: Inbox) -> None:
    inbox.put(1)
    inbox.put(2)
    assert inbox.wait(10) == [1, 2]
    assert inbox.wait(0) == []


def test_a_watched_process_exit_runs_its_callback_inside_wait(inbox: Inbox) -> None:
    child = subprocess.Popen(["sleep", "0.1"])
    seen: list[int] = []
    if not inbox.watch_pid(child.pid, lambda: inbox.put(("exit", child.wait()))):
        child.wait()
        pytest.skip("no pidfds on this kernel")
    items: list[object] = []
    deadline = time.monotonic() + 10
    while not items and time.monotonic() < deadline:
        items = inbox.wait(1)
    assert items == [("exit", 0)]
    assert seen == []


def test_watching_a_process_that_does_not_exist_says_so(inbox: Inbox) -> None:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid is free
    assert inbox.watch_pid(child.pid, lambda: None) is False


def test_put_from_a_signal_handler_wakes_the_waiter(inbox: Inbox) -> None:
    previous = signal.signal(signal.SIGUSR1, lambda *_: inbox.put("stop"))
    try:
        threading.Timer(0.05, os.kill, args=(os.getpid(), signal.SIGUSR1)).start()
        items: list[object] = []
        deadline = time.monotonic() + 10
        while not items and time.monotonic() < deadline:
            items = inbox.wait(5)
        assert items == ["stop"]
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_put_after_close_is_dropped_quietly() -> None:
    box = Inbox()
    box.close()
    box.put("late")  # a fallback thread reporting after the manager ended: no error
    box.close()
