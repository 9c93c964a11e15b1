"""A cache of encoded API bodies that knows when a store has changed.

Who calls: ``api.WebApi`` for its costly whole-experiment reads (status, the whole trial list,
the search space). Guarantees: a body is reused only while the experiment's store reports the
same ``ExperimentStore.version()`` (SQLite's ``data_version``, seen through one long-lived
watching store per experiment, so every commit by a manager or a CLI command is noticed) and,
for a ``volatile`` body, for ``max_age`` seconds at most; the version is read before the body,
so a commit during a read only costs one more read. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nascli.experiment.store import ExperimentNotFoundError, ExperimentStore

__all__ = ["Encoded", "StoreCache"]


@dataclass(frozen=True)
class Encoded:
    """A JSON body already encoded (from the cache). ``volatile``: it also depends on something
    outside the store (a manager's liveness), so the cache keeps it only ``max_age`` seconds."""

    data: bytes
    volatile: bool = False



class StoreCache:
    """Encoded bodies by (experiment, what), valid while the experiment's store has not changed:
    one long-lived watching ``ExperimentStore`` per experiment tells (``version()``). A few
    entries, least recently used dropped first. Thread-safe."""

    def __init__(self, entries: int = 24):
        self.entries = entries
        self._items: OrderedDict[Any, tuple[Any, float, Encoded]] = OrderedDict()
        self._watchers: dict[str, tuple[ExperimentStore, int]] = {}
        self._lock = threading.Lock()

    def version(self, exp_dir: Path) -> Any:
        """The store's current version (None: no store there)."""
        key = str(exp_dir)
        with self._lock:
            watcher = self._watchers.get(key)
            version = watcher[0].version() if watcher else None
            if version is None or version[0] != watcher[1]:  # new, deleted or replaced
                if watcher:
                    watcher[0].close()
                    del self._watchers[key]
                try:
                    store = ExperimentStore(exp_dir)
                except ExperimentNotFoundError:
                    return None
                version = store.version()
                if version is None:
                    store.close()
                    return None
                self._watchers[key] = (store, version[0])
            return version

    def get(self, key: Any, version: Any, max_age: float | None) -> Encoded | None:
        with self._lock:
            item = self._items.get(key)
            if version is None or item is None or item[0] != version:
                return None
            too_old = max_age is not None and time.monotonic() - item[1] > max_age
            if item[2].volatile and too_old:
                return None
            self._items.move_to_end(key)
            return item[2]

    def put(self, key: Any, version: Any, body: Encoded) -> None:
        if version is None:
            return
        with self._lock:
            self._items[key] = (version, time.monotonic(), body)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            for store, _ in self._watchers.values():
                store.close()
            self._watchers.clear()
