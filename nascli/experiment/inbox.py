"""The manager's inbox: everything the manager's thread waits for, in one ``select()``.

Two kinds of news reach the manager: process exits, seen through pidfds (Linux >= 5.3), and items
that other threads or signal handlers ``put`` (a stop request, the exit of a process watched
by a fallback thread). Both wake the same ``select()`` in the manager's own thread, so an exit
costs one wake-up and no hand-over between threads, which is what keeps a freed slot's refill at
about a millisecond.

Contract: ``watch_pid`` and ``wait`` are called from the manager's thread only (the callback of a
watched pid runs inside ``wait``); ``put`` may be called from any thread and from a signal handler
(it takes no lock: a ``deque`` append and a non-blocking write to a pipe).
"""

from __future__ import annotations

import collections
import os
import selectors
from collections.abc import Callable

__all__ = ["Inbox"]


class Inbox:
    def __init__(self) -> None:
        self._items: collections.deque[object] = collections.deque()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def put(self, item: object) -> None:
        """Deliver ``item`` to the next ``wait`` (any thread, or a signal handler)."""
        self._items.append(item)
        wake = self._wake_w
        if wake < 0:  # closed: nobody waits any more
            return
        try:
            os.write(wake, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already: the waiter will wake
            pass

    def watch_pid(self, pid: int, on_exit: Callable[[], None]) -> bool:
        """Call ``on_exit()`` (inside a later ``wait``) once process ``pid`` has ended; it
        usually ``put``s something. False where pidfds are unavailable or the process is gone
        already (the caller then watches it another way)."""
        try:
            pidfd = os.pidfd_open(pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return False
        self._selector.register(pidfd, selectors.EVENT_READ, on_exit)
        return True

    def wait(self, timeout: float | None) -> list[object]:
        """What arrived, waiting up to ``timeout`` seconds (None: until something does) when
        nothing is there yet. An empty list: the timeout passed, or a wake-up came whose item an
        earlier call already returned."""
        if not self._items:
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    self._drain_wakeups()
                    continue
                self._selector.unregister(key.fd)
                os.close(key.fd)
                key.data()
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (nobody waits here any more)."""
        return self._wake_w < 0

    def close(self) -> None:
        """Release the pipe and every pidfd still watched; later ``put``s are dropped."""
        wake, self._wake_w = self._wake_w, -1
        if wake < 0:
            return
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                os.close(key.fd)
        self._selector.close()
        os.close(self._wake_r)
        os.close(wake)
