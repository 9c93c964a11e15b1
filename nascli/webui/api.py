"""The web UI's JSON API: a GET path and its query in, a status and a JSON-able body out.

Who calls: ``server.Handler`` for every ``/api/...`` request (the page and scripts alike).
Guarantees: read-only (stores are opened, read through ``nascli.experiment.report`` and closed;
nothing is written); the bodies are what the CLI's ``--json`` commands print for the same
experiment (``experiment list --all --json``, ``status --json``, ``trial ls --json``), except that
non-finite floats, which JSON cannot carry, become ``null``; every failure is an ``ApiError``
with an HTTP status and one message (unknown experiment or trial → 404, bad query → 400, a store
that cannot be read right now, e.g. deleted while shown → 503). Routes are listed in ``ROUTES``
and documented in docs/webui.md.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nascli import space as spaces
from nascli._files import open_regular
from nascli.errors import NasCliError
from nascli.experiment import report
from nascli.experiment.store import (
    ExperimentNotFoundError,
    ExperimentStore,
    experiment_path,
    nascli_home,
)
from nascli.experiment.trials import TrialStatus
from nascli.webui.cache import Encoded, StoreCache
from nascli.webui.runlog import RunLogIndex

__all__ = ["ApiError", "Encoded", "Raw", "WebApi", "ROUTES", "to_json"]

# Ids as the store makes them (and a little more); anything else, ``..`` and ``/`` included, is
# refused before it could reach a path.
log = logging.getLogger(__name__)

TRIAL_STATUSES = tuple(status.value for status in TrialStatus)  # as `trial ls --status` takes
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_IDS = 1000
_DEFAULT_TAIL = 64 * 1024

ROUTES = {
    "/api/experiments": "every experiment (as `experiment list --all --json`); ?running=1: only "
    "running ones (as `experiment list --json`)",
    "/api/experiments/{id}": "status, trial counts, budget, best trial (as `status --json`)",
    "/api/experiments/{id}/space": "the search space: per key its type, candidates, n_chosen",
    "/api/experiments/{id}/trials": "trials (as `trial ls --json`), in launch order or "
    "?sort=launch|newest|best; ?after=TRIAL (only those after it in that order), ?status=S[,S2], "
    "?ids=A,B, ?limit=N",
    "/api/experiments/{id}/trials/{trial}": "one trial: its row, every metric with its time, "
    "stdout/stderr tails (?tail=BYTES), directory",
    "/api/experiments/{id}/export?type=csv|json": "as `experiment export --type csv|json`",
    "/api/oneshot": "one-shot runs found under the --oneshot directories",
    "/api/oneshot/{run}": "one run log: choices, per-epoch metrics and weights, current export",
}


class ApiError(Exception):
    """A request that cannot be answered: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Raw:
    """A body that is not JSON (an export file)."""

    content_type: str
    text: str
    filename: str


class WebApi:
    """The routes of ``ROUTES`` over ``$NASCLI_HOME`` (read at each request, so experiments
    created or deleted while the server runs appear or disappear) and the one-shot runs under
    ``oneshot_roots``."""

    def __init__(self, oneshot_roots: Sequence[Path] = ()):
        self.runs = RunLogIndex(oneshot_roots)
        self.cache = StoreCache()

    def get(self, path: str, query: dict[str, list[str]]) -> Any:
        """The body for ``GET path?query`` (JSON-able, or ``Raw``); raises ``ApiError``."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["api"]:
            raise ApiError(404, f"no such API route: {path}")
        parts = parts[1:]
        if not parts:
            return {"routes": ROUTES}
        if parts[0] == "oneshot":
            return self._oneshot(parts[1:])
        if parts[0] != "experiments":
            raise ApiError(404, f"no such API route: {path} (routes: GET /api)")
        if len(parts) == 1:
            running = _flag(query, "running")
            return _guard("the experiment list", lambda: report.experiment_rows(not running))
        exp_id = _checked_id(parts[1], "experiment")
        rest = parts[2:]
        if not rest:
            # Whether the manager lives is not in the store: a summary that says it does is
            # trusted for a few seconds (a dead one comes back only through `resume`, a write).
            return self._cached(
                exp_id, "summary", report.experiment_summary, max_age=3.0,
                volatile=lambda body: bool(body.get("manager", {}).get("alive")),
            )  # fmt: skip
        if rest == ["space"]:
            return self._cached(exp_id, "space", _space_json)
        if rest == ["export"]:
            kind = _one(query, "type") or "json"
            if kind not in ("csv", "json"):
                raise ApiError(400, f"type must be 'csv' or 'json', got {kind!r}")
            write = report.export_csv if kind == "csv" else report.export_json
            text = self._with_store(exp_id, lambda store: _written(write, store))
            mime = "text/csv" if kind == "csv" else "application/json"
            return Raw(f"{mime}; charset=utf-8", text, f"{exp_id}.{kind}")
        if rest[0] == "trials" and len(rest) == 1:
            if not query:  # the whole list: the page's first read, costly at 10,000 trials
                return self._cached(exp_id, "trials", report.trial_rows)
            return self._with_store(exp_id, lambda store: _trials(store, query))
        if rest[0] == "trials" and len(rest) == 2:
            trial_id = _checked_id(rest[1], "trial")
            tail = _int(query, "tail", _DEFAULT_TAIL, 0, 16 * 1024 * 1024)
            return self._with_store(exp_id, lambda store: trial_detail(store, trial_id, tail))
        raise ApiError(404, f"no such API route: {path} (routes: GET /api)")

    def _with_store(self, exp_id: str, read: Callable[[ExperimentStore], Any]) -> Any:
        what = f"experiment {exp_id}"

        def run() -> Any:
            try:
                store = ExperimentStore(experiment_path(exp_id))
            except ExperimentNotFoundError:
                raise ApiError(404, f"no experiment {exp_id!r} in {nascli_home()}") from None
            try:
                return read(store)
            finally:
                store.close()

        return _guard(what, run)

    def _cached(
        self,
        exp_id: str,
        name: str,
        read: Callable[[ExperimentStore], Any],
        max_age: float | None = None,
        volatile: Callable[[Any], bool] = lambda body: False,
    ) -> Encoded:
        """``read``'s body, encoded, reused while the store has not changed (the version is read
        before the body, so a commit during the read makes the next request read again)."""
        what = f"experiment {exp_id}"
        version = _guard(what, lambda: self.cache.version(experiment_path(exp_id)))
        hit = self.cache.get((exp_id, name), version, max_age)
        if hit is not None:
            return hit
        data = self._with_store(exp_id, read)
        body = Encoded(to_json(data), volatile(data))
        self.cache.put((exp_id, name), version, body)
        return body

    def _oneshot(self, rest: list[str]) -> Any:
        if not rest:
            return _guard("the one-shot runs", self.runs.summaries)
        if len(rest) == 1:
            run_id = _checked_id(rest[0], "one-shot run")
            run = _guard(f"one-shot run {run_id}", lambda: self.runs.read(run_id))
            if run is None:
                raise ApiError(404, f"no one-shot run {run_id!r} (GET /api/oneshot lists them)")
            return run
        raise ApiError(404, "no such API route: /api/oneshot/" + "/".join(rest))


def _trials(store: ExperimentStore, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One part of the trial list, read through the store's indexed page query (the cost
    follows the rows returned, not the experiment's size)."""
    statuses = None
    if (raw_status := _one(query, "status")) is not None:
        statuses = [s.strip().upper() for s in raw_status.split(",") if s.strip()] or None
        for status in statuses or ():
            if status not in TRIAL_STATUSES:
                raise ApiError(
                    400, f"status must be one of {', '.join(TRIAL_STATUSES)}, got {status!r}"
                )
    sort = (_one(query, "sort") or "launch").lower()
    if sort not in report.TRIAL_SORTS:
        raise ApiError(400, f"sort must be one of {', '.join(report.TRIAL_SORTS)}, got {sort!r}")
    after = _one(query, "after")
    if after is not None:
        after = _checked_id(after, "trial", 400)
        if store.trial(after) is None:
            raise ApiError(404, f"experiment {store.id} has no trial {after!r}")
    ids = None
    if (raw_ids := _one(query, "ids")) is not None:
        ids = [_checked_id(i, "trial", 400) for i in raw_ids.split(",") if i]
        if len(ids) > _MAX_IDS:
            raise ApiError(400, f"ids: at most {_MAX_IDS} trial ids at once, got {len(ids)}")
    limit = _int(query, "limit", None, 1, 1_000_000)
    return list(report.iter_trial_rows(store, statuses, sort, limit, after, ids=ids))


def _written(write: Callable[[ExperimentStore, io.StringIO], int], store: ExperimentStore) -> str:
    out = io.StringIO()
    write(store, out)
    return out.getvalue()


def trial_detail(store: ExperimentStore, trial_id: str, tail: int) -> dict[str, Any]:
    """One trial's ``trial ls --json`` row plus every metric (with its time), the last ``tail``
    bytes of its stdout and stderr, and its directory."""
    rows = report.trial_rows(store, ids=[trial_id])
    if not rows:
        raise ApiError(404, f"experiment {store.id} has no trial {trial_id!r}")
    row = rows[0]
    row["metrics"] = [
        {"sequence": seq, "type": kind, "value": value, "time": when}
        for _, seq, kind, value, when in store.metrics(trial_id)
    ]
    paths = store.trial_paths(trial_id)
    row["stdout_tail"] = _tail(paths.stdout, tail)
    row["stderr_tail"] = _tail(paths.stderr, tail)
    row["directory"] = str(paths.dir)
    return row


def _space_json(store: ExperimentStore) -> dict[str, Any]:
    space = spaces.load_search_space(store.search_space_file)
    out: dict[str, Any] = {}
    for key, spec in space.items():
        if isinstance(spec, spaces.InputChoiceSpec):
            out[key] = {"type": spaces.INPUT_CHOICE, "candidates": list(spec.candidates),
                        "n_chosen": spec.n_chosen}  # fmt: skip
        else:
            out[key] = {"type": spaces.LAYER_CHOICE, "candidates": list(spec.names)}
    return out


def _tail(path: Path, limit: int) -> dict[str, Any]:
    """``{"text", "truncated", "size"}``: the file's last ``limit`` bytes, decoded leniently.
    A trial may have swapped the file for a FIFO, device or link: that reads as missing, never
    blocks the server."""
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            data = os.pread(f.fileno(), limit, max(0, size - limit))
    except OSError:  # missing, or not a regular file (UnsafeFileError)
        return {"text": "", "truncated": False, "size": 0, "missing": True}
    truncated = size > limit
    if truncated and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]
    return {"text": data.decode("utf-8", "replace"), "truncated": truncated, "size": size}


def _guard(what: str, read: Callable[[], Any]) -> Any:
    """Run one read; a store being deleted or written in an unreadable way becomes a 503."""
    try:
        return read()
    except ApiError:
        raise
    except ExperimentNotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    except report.TrialNotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    except (sqlite3.Error, OSError, ValueError, NasCliError) as exc:
        raise ApiError(503, f"{what} cannot be read right now: {exc}") from None
    except (TypeError, KeyError, AttributeError) as exc:  # rows of an unexpected shape
        log.warning("webui: reading %s failed", what, exc_info=True)
        raise ApiError(503, f"{what} cannot be read right now: {type(exc).__name__}") from None


def to_json(body: Any) -> bytes:
    """Compact JSON; NaN and ±inf (which JSON cannot carry) become null."""
    try:
        text = json.dumps(body, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(body), allow_nan=False, separators=(",", ":"))
    return text.encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _checked_id(value: str, what: str, status: int = 404) -> str:
    """``value`` if it is a well-formed id; else an ``ApiError`` (404 in a path: there is no
    such thing; 400 in a query)."""
    if not _ID.match(value):
        raise ApiError(
            status, f"{what} id {value[:80]!r} is not valid (letters, digits, '_' and '-' only)"
        )
    return value


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (_one(query, name) or "0").lower() in ("1", "true", "yes")


def _int(
    query: dict[str, list[str]], name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = _one(query, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value
