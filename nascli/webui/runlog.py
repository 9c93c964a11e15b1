"""Reading one-shot run logs (``oneshot.jsonl``) for the web UI's one-shot view.

The format (written by ``nascli.nas.oneshot.runlog`` when a trainer is given ``log_dir=`` or
``enable_visualization()`` is called; documented in docs/webui.md) is append-only JSON lines::

    {"kind": "start", "time": T, "trainer": "DartsTrainer", "num_epochs": N,
     "choices": {KEY: {"type": "layer_choice", "candidates": [NAME, ...]}
                      | {"type": "input_choice", "candidates": [NAME, ...], "n_chosen": K|null}}}
    {"kind": "epoch", "time": T, "epoch": I, "metrics": {NAME: float|null},
     "weights": {KEY: [float per candidate]}, "export": {ARCHITECTURE}}
    {"kind": "end", "time": T, "export": {ARCHITECTURE}}

Who calls: ``api.WebApi`` (``/api/oneshot``, ``/api/oneshot/{run}``). Guarantees: a log being
written (ending in a partial line), lines that are not JSON or not of a known kind, and a log
without its start line are read as far as they make sense (``bad_lines`` counts what was
skipped); reading never changes the file. Results are cached per file and re-read only when the
file's size or mtime changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nascli.experiment.store import nascli_home

__all__ = ["RUN_LOG_FILE", "read_run_log", "RunLogIndex"]

RUN_LOG_FILE = "oneshot.jsonl"
_SCAN_DEPTH = 3  # directories below an --oneshot root searched for run logs


def read_run_log(path: Path) -> dict[str, Any]:
    """One run log as the API returns it: trainer, choices, epochs (each ``epoch``, ``time``,
    ``metrics``, ``weights``), the latest ``export``, ``ended`` and ``bad_lines``."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    partial = lines.pop()  # b"" when the file ends with a newline; else a line being written
    run: dict[str, Any] = {
        "path": str(path.parent),
        "trainer": None,
        "num_epochs": None,
        "started": None,
        "updated": None,
        "choices": {},
        "epochs": [],
        "export": None,
        "ended": False,
        "bad_lines": 0,
        "writing": bool(partial.strip()),
    }
    for raw in lines:
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            run["bad_lines"] += 1
            continue
        if not isinstance(entry, dict) or not _take(run, entry):
            run["bad_lines"] += 1
    if not run["choices"]:  # no start line: the keys the weights name, candidates unnamed
        for epoch in run["epochs"]:
            for key, weights in epoch["weights"].items():
                run["choices"].setdefault(
                    key, {"type": None, "candidates": [str(i) for i in range(len(weights))]}
                )
    return run


def _take(run: dict[str, Any], entry: dict[str, Any]) -> bool:
    kind = entry.get("kind")
    when = entry.get("time")
    if isinstance(when, (int, float)):
        run["updated"] = when
    if kind == "start":  # a resumed run appends another start and goes on numbering epochs
        run["trainer"] = entry.get("trainer") if isinstance(entry.get("trainer"), str) else None
        epochs = entry.get("num_epochs")
        run["num_epochs"] = epochs if isinstance(epochs, int) else None
        if run["started"] is None and isinstance(when, (int, float)):
            run["started"] = when
        run["ended"] = False
        choices = entry.get("choices")
        run["choices"] = _choices(choices) if isinstance(choices, dict) else {}
        return True
    if kind == "epoch":
        metrics = entry.get("metrics")
        weights = entry.get("weights")
        run["epochs"].append(
            {
                "epoch": entry.get("epoch") if isinstance(entry.get("epoch"), int) else None,
                "time": when,
                "metrics": {
                    str(k): v if isinstance(v, (int, float)) else None
                    for k, v in (metrics.items() if isinstance(metrics, dict) else ())
                },
                "weights": {
                    str(k): [x if isinstance(x, (int, float)) else None for x in v]
                    for k, v in (weights.items() if isinstance(weights, dict) else ())
                    if isinstance(v, list)
                },
            }
        )
        if isinstance(entry.get("export"), dict):
            run["export"] = entry["export"]
        return True
    if kind == "end":
        run["ended"] = True
        if isinstance(entry.get("export"), dict):
            run["export"] = entry["export"]
        return True
    return False


def _choices(raw: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, spec in raw.items():
        if not isinstance(spec, dict):
            continue
        candidates = spec.get("candidates")
        entry: dict[str, Any] = {
            "type": spec.get("type") if isinstance(spec.get("type"), str) else None,
            "candidates": [str(c) for c in candidates] if isinstance(candidates, list) else [],
        }
        if "n_chosen" in spec:
            entry["n_chosen"] = spec["n_chosen"] if isinstance(spec["n_chosen"], int) else None
        out[str(key)] = entry
    return out


class RunLogIndex:
    """The run logs under some directories: each root that holds ``oneshot.jsonl`` is a run,
    else its subdirectories (``_SCAN_DEPTH`` levels) are searched. ``$NASCLI_HOME/oneshot`` (where
    a trainer logs after ``enable_visualization()`` without ``log_dir``) is always searched too,
    read at each scan. Runs are named by a hash of their directory, stable across restarts.
    Thread-safe."""

    def __init__(self, roots: Sequence[Path]):
        self.roots = [Path(r) for r in roots]
        self._cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def logs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in [*self.roots, nascli_home() / "oneshot"]:
            if not root.is_dir():
                continue
            for log in _find_logs(root):
                found[run_id(log.parent)] = log
        return found

    def summaries(self) -> list[dict[str, Any]]:
        out = []
        for rid, log in self.logs().items():
            try:
                run = self._read(log)
            except OSError:  # removed between the scan and the read
                continue
            out.append(
                {
                    "id": rid,
                    "path": run["path"],
                    "trainer": run["trainer"],
                    "num_epochs": run["num_epochs"],
                    "epochs_done": len(run["epochs"]),
                    "ended": run["ended"],
                    "started": run["started"],
                    "updated": run["updated"],
                    "choices": len(run["choices"]),
                }
            )
        return sorted(out, key=lambda r: (r["started"] or 0, r["path"]))

    def read(self, rid: str) -> dict[str, Any] | None:
        log = self.logs().get(rid)
        if log is None:
            return None
        return {"id": rid, **self._read(log)}

    def _read(self, log: Path) -> dict[str, Any]:
        st = log.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(log)
        if cached and cached[0] == stamp:
            return cached[1]
        run = read_run_log(log)
        with self._lock:
            self._cache[log] = (stamp, run)
        return run


def run_id(run_dir: Path) -> str:
    """A run's id in URLs: a short hash of its absolute directory."""
    return hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]


def _find_logs(root: Path) -> list[Path]:
    if (root / RUN_LOG_FILE).is_file():
        return [root / RUN_LOG_FILE]
    found = []
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).parts) - base_depth
        if RUN_LOG_FILE in filenames:
            found.append(Path(dirpath) / RUN_LOG_FILE)
        if depth >= _SCAN_DEPTH:
            dirnames.clear()
        dirnames.sort()
    return found
