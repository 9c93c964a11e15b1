"""The experiment store: the only code that knows where an experiment lives on disk.

Layout (DESIGN §5)::

    $NASCLI_HOME/<exp_id>/                 (NASCLI_HOME defaults to ~/nascli-experiments)
        experiment.sqlite                  tables experiment, trials, metrics, events (WAL)
        config.yml                         the config as given
        search_space.json                  the search space the tuner uses
        manager.log                        the manager's log (and anything it prints)
        manager.lock                       held by the one manager running the experiment
        trials/<trial_id>/                 parameter.json, metrics.jsonl, stdout, stderr, exit
                                           (the trial channel, ``channel.py``) + trial outputs

Who writes: the manager, through one ``ExperimentStore``; CLI commands that change an
experiment (``stop``, ``trial kill``) write only while no manager runs, or record a request the
manager honours. Readers (``status``, ``trial ls``) open their own connection and, thanks to WAL,
never block the manager nor wait for it. Every write is one transaction, so a ``kill -9`` leaves
the last committed state (SQLite ``synchronous=NORMAL``: safe against process crashes).

Experiments are found by scanning ``$NASCLI_HOME``; there is no separate index to go stale.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from nascli.errors import ExperimentBusyError, ExperimentNotFoundError
from nascli.experiment.trials import TERMINAL, ExperimentStatus

__all__ = [
    "ExperimentStore",
    "ExperimentRecord",
    "TrialRecord",
    "ExperimentBusyError",
    "ExperimentNotFoundError",
    "nascli_home",
    "create_experiment",
    "open_experiment",
    "experiment_path",
    "list_experiment_dirs",
    "delete_experiment",
    "EXPERIMENT_STATUSES",
    "TRIAL_STATUSES",
    "TERMINAL_TRIAL_STATUSES",
]

# The stored texts are the enums' values (``trials.py``); these tuples are kept for readers.
EXPERIMENT_STATUSES = tuple(s.value for s in ExperimentStatus)
# The statuses ``status_counts`` always lists (EARLY_STOPPED appears once a trial has it, so the
# counts of stores without early stopping read as they always did).
TRIAL_STATUSES = ("WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED")
TERMINAL_TRIAL_STATUSES = frozenset(s.value for s in TERMINAL)

_DB = "experiment.sqlite"
# 32 symbols (no l, o, 0, 1: ids are read and typed by people), so a random byte maps evenly.
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"

# The tuner calls made since the tuner checkpoint in the experiment row, one row per manager
# turn (see Manager: the checkpoint grows with the history, the calls of a turn do not).
_TUNER_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS tuner_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, calls TEXT NOT NULL);
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, author TEXT, status TEXT NOT NULL, reason TEXT,
    created REAL NOT NULL, started REAL, ended REAL, exec_seconds REAL NOT NULL DEFAULT 0,
    manager_pid INTEGER, manager_token TEXT, wait_reason TEXT, config TEXT NOT NULL,
    tuner_state TEXT, next_parameter_id INTEGER NOT NULL DEFAULT 0, stop_grace REAL
);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, parameter_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1, parameters TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0, gpus TEXT, pid INTEGER,
    pid_token TEXT, created REAL NOT NULL, started REAL, ended REAL, exit_code INTEGER,
    final TEXT, metrics_offset INTEGER NOT NULL DEFAULT 0, bad_metric_lines INTEGER NOT NULL
    DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id TEXT NOT NULL, sequence INTEGER NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (trial_id, sequence)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, trial_id TEXT, kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (status);
""" + _TUNER_LOG_SCHEMA


@dataclass(frozen=True)
class ExperimentRecord:
    id: str
    name: str
    author: str | None
    status: str
    reason: str | None
    created: float
    started: float | None
    ended: float | None
    exec_seconds: float
    manager_pid: int | None
    manager_token: str | None
    wait_reason: str | None
    config: dict[str, Any]
    tuner_state: Any
    next_parameter_id: int
    stop_grace: float | None


@dataclass(frozen=True)
class TrialRecord:
    id: str
    seq: int
    parameter_id: int
    attempt: int
    parameters: dict[str, Any]
    status: str
    reason: str | None
    cancel_requested: bool
    gpus: list[int] | None
    pid: int | None
    pid_token: str | None
    created: float
    started: float | None
    ended: float | None
    exit_code: int | None
    final: Any
    metrics_offset: int
    bad_metric_lines: int

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_TRIAL_STATUSES


@dataclass(frozen=True)
class TrialPaths:
    """Where one trial's files are (the file names inside come from ``channel.py``)."""

    dir: Path
    stdout: Path
    stderr: Path


def nascli_home() -> Path:
    """``$NASCLI_HOME`` or ``~/nascli-experiments``."""
    return Path(os.environ.get("NASCLI_HOME") or Path.home() / "nascli-experiments").expanduser()


def _new_id() -> str:
    # os.urandom rather than the secrets module: ids need no more, and importing secrets (hmac,
    # hashlib) cost every nascli command ~5 ms.
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in os.urandom(8))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


class ExperimentStore:
    """One experiment's directory and database. Cheap to open; one connection per instance."""

    def __init__(self, exp_dir: str | os.PathLike[str]):
        self.dir = Path(exp_dir)
        if not (self.dir / _DB).is_file():
            raise ExperimentNotFoundError(f"{self.dir} is not a nascli experiment (no {_DB})")
        self._conn = sqlite3.connect(
            self.dir / _DB, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA synchronous = NORMAL")

    # ------------------------------------------------------------------ paths

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def config_file(self) -> Path:
        return self.dir / "config.yml"

    @property
    def search_space_file(self) -> Path:
        return self.dir / "search_space.json"

    @property
    def manager_log(self) -> Path:
        return self.dir / "manager.log"

    def trial_paths(self, trial_id: str) -> TrialPaths:
        trial_dir = self.dir / "trials" / trial_id
        return TrialPaths(trial_dir, trial_dir / "stdout", trial_dir / "stderr")

    def manager_lock(self) -> FileLock:
        """The lock the running manager holds for its whole life (released by the OS if the
        manager dies, even by ``kill -9``)."""
        return FileLock(str(self.dir / "manager.lock"))

    def take_manager_lock(self) -> FileLock | None:
        """The manager lock, held, if nobody holds it right now; None when someone does."""
        lock = self.manager_lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def manager_running(self) -> bool:
        """Whether some manager holds this experiment's lock right now."""
        lock = self.take_manager_lock()
        if lock is None:
            return True
        lock.release()
        return False

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the manager lock (for a CLI command changing an experiment no manager runs).

        Raises:
            ExperimentBusyError: a manager is running it.
        """
        lock = self.take_manager_lock()
        if lock is None:
            held = self.manager_lock().lock_file
            raise ExperimentBusyError(f"experiment {self.id} is running (its manager holds {held})")
        try:
            yield
        finally:
            lock.release()

    def close(self) -> None:
        self._conn.close()

    def version(self) -> tuple[int, int] | None:
        """A value that changes whenever another connection commits to this experiment's
        database (SQLite's ``data_version`` on this store's connection) or its database file is
        replaced; None once the file is gone. For long-lived readers that keep what they read
        (the web UI's cache) and must know when it is stale."""
        try:
            inode = os.stat(self.dir / _DB).st_ino
        except FileNotFoundError:
            return None
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return inode, int(version)

    # ------------------------------------------------------------------ experiment row

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def experiment(self) -> ExperimentRecord:
        row = self._conn.execute("SELECT * FROM experiment").fetchone()
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["tuner_state"] = _loads(data["tuner_state"])
        return ExperimentRecord(**data)

    def experiment_status(self) -> str:
        """The experiment's status alone (no decoding of its config and tuner state)."""
        return str(self._conn.execute("SELECT status FROM experiment").fetchone()[0])

    def update_experiment(self, **fields: Any) -> None:
        """Set experiment columns (``tuner_state`` is JSON-encoded here; ``tuner_state_json``
        is stored as given, already encoded). Not ``status``: ``trials.py`` changes that."""
        _check_columns(fields, _EXPERIMENT_COLUMNS, "experiment")
        if "tuner_state" in fields:
            fields["tuner_state"] = _dumps(fields["tuner_state"])
        if "tuner_state_json" in fields:
            fields["tuner_state"] = fields.pop("tuner_state_json")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._conn.execute(f"UPDATE experiment SET {sets}", list(fields.values()))

    # ------------------------------------------------------------------ trials

    def add_trial(
        self,
        trial_id: str,
        seq: int,
        parameter_id: int,
        parameters: dict[str, Any],
        attempt: int = 1,
    ) -> TrialRecord:
        """Insert a WAITING trial; returns its record (as a read would, without the read)."""
        created = time.time()
        self._conn.execute(
            "INSERT INTO trials (id, seq, parameter_id, attempt, parameters, status, created) "
            "VALUES (?, ?, ?, ?, ?, 'WAITING', ?)",
            (trial_id, seq, parameter_id, attempt, json.dumps(parameters), created),
        )
        return TrialRecord(
            id=trial_id, seq=seq, parameter_id=parameter_id, attempt=attempt,
            parameters=dict(parameters), status="WAITING", reason=None, cancel_requested=False,
            gpus=None, pid=None, pid_token=None, created=created, started=None, ended=None,
            exit_code=None, final=None, metrics_offset=0, bad_metric_lines=0,
        )  # fmt: skip

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        """Set trial columns (``gpus`` and ``final`` are JSON-encoded here). Not ``status``:
        ``trials.py`` changes that, through ``change_trial_status``."""
        _check_columns(fields, _TRIAL_COLUMNS, "trials")
        self._update_trial(trial_id, fields)

    def _update_trial(self, trial_id: str, fields: dict[str, Any], where: str = "", args=()) -> int:
        for key in ("gpus", "final"):
            if key in fields:
                fields[key] = _dumps(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)  # names checked against the schema
        cur = self._conn.execute(
            f"UPDATE trials SET {sets} WHERE id = ?{where}", [*fields.values(), trial_id, *args]
        )
        return cur.rowcount

    def change_trial_status(
        self, trial_id: str, sources: Collection[str], target: str, **fields: Any
    ) -> str | None:
        """Set the trial's status to ``target`` (and ``fields``) if it is one of ``sources``
        now, in one statement. Returns None when done, else the status it has (or ``"absent"``).
        Called by ``trials.py`` only, which checks the transition table."""
        _check_columns(fields, _TRIAL_COLUMNS, "trials")
        marks = ", ".join("?" for _ in sources)
        fields = {"status": target, **fields}
        if self._update_trial(trial_id, fields, f" AND status IN ({marks})", list(sources)):
            return None
        row = self._conn.execute("SELECT status FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return "absent" if row is None else str(row[0])

    def change_experiment_status(self, target: str, **fields: Any) -> None:
        """Set the experiment's status (and ``fields``). Called by ``trials.py`` only."""
        _check_columns(fields, _EXPERIMENT_COLUMNS, "experiment")
        sets = ", ".join(f"{k} = ?" for k in ("status", *fields))
        self._conn.execute(f"UPDATE experiment SET {sets}", [target, *fields.values()])

    def trial(self, trial_id: str) -> TrialRecord | None:
        row = self._conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return None if row is None else _trial(row)

    def trials(
        self,
        statuses: Sequence[str] | None = None,
        *,
        after_seq: int | None = None,
        limit: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[TrialRecord]:
        """Trials in launch order, optionally only those with one of ``statuses``, launched
        after the trial whose ``seq`` is ``after_seq``, with one of ``ids``, at most ``limit``."""
        where, args = _trial_filter(statuses, after_seq, ids)
        sql = f"SELECT * FROM trials{where} ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_trial(r) for r in self._conn.execute(sql, args)]

    def trial_seq(self, trial_id: str) -> int | None:
        """A trial's launch-order number (``seq``), None if the experiment has no such trial."""
        row = self._conn.execute("SELECT seq FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return None if row is None else int(row[0])

    def next_trial_seq(self) -> int:
        row = self._conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM trials").fetchone()
        return int(row[0])

    def status_counts(self) -> dict[str, int]:
        """Trials per status: every one of ``TRIAL_STATUSES``, and any other found."""
        counts = dict.fromkeys(TRIAL_STATUSES, 0)
        for status, n in self._conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            counts[status] = n
        return counts

    def cancel_requested(self, trial_id: str) -> bool:
        row = self._conn.execute(
            "SELECT cancel_requested FROM trials WHERE id = ?", (trial_id,)
        ).fetchone()
        return bool(row and row[0])

    def request_cancel(self, trial_id: str) -> None:
        """Record that the user cancels this trial (before any signal is sent, so its end is
        recorded as USER_CANCELED whatever exit code the signal produces)."""
        self._conn.execute("UPDATE trials SET cancel_requested = 1 WHERE id = ?", (trial_id,))

    # ------------------------------------------------------------------ metrics and events

    def add_metric(self, trial_id: str, sequence: int, kind: str, value: Any, when: float) -> bool:
        """Store one metric; a repeated ``(trial, sequence)`` is ignored. True if it was new."""
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO metrics (trial_id, sequence, type, value, time) "
            "VALUES (?, ?, ?, ?, ?)",
            (trial_id, sequence, kind, json.dumps(value), when),
        )
        return cur.rowcount == 1

    def metrics(
        self, trial_id: str | None = None, *, trials: Sequence[TrialRecord] | None = None
    ) -> list[tuple[str, int, str, Any, float]]:
        """``(trial_id, sequence, type, value, time)`` rows, per trial in report order: every
        trial's, ``trial_id``'s, or those of ``trials`` (records just read, e.g. one page)."""
        if trials is not None:
            wanted = [t.id for t in trials]
            rows = []
            for start in range(0, len(wanted), 500):  # below SQLite's bound-variable limit
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows += self._conn.execute(
                    f"SELECT * FROM metrics WHERE trial_id IN ({marks}) "
                    "ORDER BY trial_id, sequence",
                    chunk,
                ).fetchall()
        elif trial_id is None:
            rows = self._conn.execute("SELECT * FROM metrics ORDER BY trial_id, sequence")
        else:
            rows = self._conn.execute(
                "SELECT * FROM metrics WHERE trial_id = ? ORDER BY sequence", (trial_id,)
            )
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def add_event(self, kind: str, message: str, trial_id: str | None = None) -> None:
        self._conn.execute(
            "INSERT INTO events (time, trial_id, kind, message) VALUES (?, ?, ?, ?)",
            (time.time(), trial_id, kind, message),
        )

    # ------------------------------------------------------------------ tuner log

    def ensure_tuner_log(self) -> None:
        """Create the tuner log of an experiment made before it existed (writer only)."""
        self._conn.executescript(_TUNER_LOG_SCHEMA)

    def append_tuner_calls(self, calls: list[Any]) -> None:
        """Record one turn's tuner calls (JSON-serialisable lists), after the checkpoint."""
        self._conn.execute("INSERT INTO tuner_log (calls) VALUES (?)", (json.dumps(calls),))

    def tuner_calls(self) -> list[Any]:
        """Every call recorded since the checkpoint, in the order they were made."""
        rows = self._conn.execute("SELECT calls FROM tuner_log ORDER BY seq")
        return [call for (calls,) in rows for call in json.loads(calls)]

    def clear_tuner_calls(self) -> None:
        """Forget the log (a new checkpoint holds what it recorded)."""
        self._conn.execute("DELETE FROM tuner_log")

    def events(self, limit: int = 50) -> list[tuple[float, str | None, str, str]]:
        rows = self._conn.execute(
            "SELECT time, trial_id, kind, message FROM events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [tuple(r) for r in reversed(rows)]  # type: ignore[misc]


def _trial_filter(
    statuses: Sequence[str] | None, after_seq: int | None, ids: Sequence[str] | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if statuses:
        clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
        args += list(statuses)
    if after_seq is not None:
        clauses.append("seq > ?")
        args.append(int(after_seq))
    if ids is not None:
        clauses.append(f"id IN ({', '.join('?' for _ in ids)})" if ids else "0")
        args += list(ids)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


_TRIAL_COLUMNS = frozenset(TrialRecord.__dataclass_fields__) - {"id", "status"}
_EXPERIMENT_COLUMNS = (
    frozenset(ExperimentRecord.__dataclass_fields__) - {"id", "status"} | {"tuner_state_json"}
)


def _check_columns(fields: dict[str, Any], allowed: frozenset[str], table: str) -> None:
    # Column names go into the SQL text: only the schema's own names get there.
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not settable columns of {table}: {sorted(unknown)}")


def _trial(row: sqlite3.Row) -> TrialRecord:
    data = dict(row)
    data["parameters"] = json.loads(data["parameters"])
    data["gpus"] = _loads(data["gpus"])
    data["final"] = _loads(data["final"])
    data["cancel_requested"] = bool(data["cancel_requested"])
    return TrialRecord(**data)


# --------------------------------------------------------------------------- experiments


def create_experiment(
    config: dict[str, Any],
    config_text: str,
    search_space: dict[str, Any],
    name: str,
    author: str | None,
) -> ExperimentStore:
    """Make a new experiment directory with its database (status RUNNING, no trials yet)."""
    home = nascli_home()
    home.mkdir(parents=True, exist_ok=True)
    while True:
        exp_id = _new_id()
        exp_dir = home / exp_id
        try:
            exp_dir.mkdir()
            break
        except FileExistsError:
            continue
    (exp_dir / "trials").mkdir()
    (exp_dir / "config.yml").write_text(config_text)
    (exp_dir / "search_space.json").write_text(json.dumps(search_space, indent=2))
    conn = sqlite3.connect(exp_dir / _DB, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT INTO experiment (id, name, author, status, created, config) "
            "VALUES (?, ?, ?, 'RUNNING', ?, ?)",
            (exp_id, name, author, time.time(), json.dumps(config)),
        )
    finally:
        conn.close()
    return ExperimentStore(exp_dir)


def experiment_path(exp_id: str) -> Path:
    """The directory experiment ``exp_id`` (an exact id, no prefix) has under ``$NASCLI_HOME``,
    whether or not it exists. Refuses anything that is not a bare name (no separator, no
    ``.``/``..``), so the path stays inside the home."""
    if not exp_id or exp_id in (".", "..") or "/" in exp_id or "\\" in exp_id or "\0" in exp_id:
        raise ExperimentNotFoundError(f"{exp_id!r} is not an experiment id")
    return nascli_home() / exp_id


def list_experiment_dirs() -> list[Path]:
    """Every experiment under ``$NASCLI_HOME``, oldest first (by creation time)."""
    home = nascli_home()
    if not home.is_dir():
        return []
    found = [d for d in home.iterdir() if (d / _DB).is_file()]
    return sorted(found, key=lambda d: (_created(d), d.name))


def open_experiment(exp_id: str | None = None) -> ExperimentStore:
    """The experiment ``exp_id`` (a unique prefix is enough); the latest one when None.

    Raises:
        ExperimentNotFoundError: nothing matches, or the prefix is ambiguous.
    """
    dirs = list_experiment_dirs()
    if not dirs:
        raise ExperimentNotFoundError(
            f"no experiments in {nascli_home()} (start one with `nascli create --config F`)"
        )
    if exp_id is None:
        return ExperimentStore(dirs[-1])
    matches = [d for d in dirs if d.name == exp_id] or [
        d for d in dirs if d.name.startswith(exp_id)
    ]
    if not matches:
        known = ", ".join(d.name for d in dirs[-10:])
        raise ExperimentNotFoundError(
            f"no experiment {exp_id!r} in {nascli_home()} (known: {known})"
        )
    if len(matches) > 1:
        raise ExperimentNotFoundError(
            f"{exp_id!r} matches several experiments: {', '.join(d.name for d in matches)}"
        )
    return ExperimentStore(matches[0])


def _created(exp_dir: Path) -> float:
    try:
        conn = sqlite3.connect(exp_dir / _DB, timeout=5)
        try:
            return float(conn.execute("SELECT created FROM experiment").fetchone()[0])
        finally:
            conn.close()
    except (sqlite3.Error, TypeError):
        return 0.0


def delete_experiment(store: ExperimentStore) -> Path:
    """Remove an experiment's directory (refused while its manager runs). Returns the path."""
    with store.exclusive():
        store.close()
        shutil.rmtree(store.dir)
    return store.dir
