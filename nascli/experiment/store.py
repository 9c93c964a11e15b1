"""The experiment store: the only code that knows where an experiment lives on disk.

Layout (DESIGN §5)::

    $NASCLI_HOME/<exp_id>/                 (NASCLI_HOME defaults to ~/nascli-experiments)
        experiment.sqlite                  tables experiment, trials, metrics, events (WAL)
        config.yml                         the config as given
        search_space.json                  the search space the tuner uses
        manager.log                        the manager's log (and anything it prints)
        manager.lock                       held by the one manager running the experiment
        manager.start                      a pending start request (see ``request_start``)
        space.reserve                      disk space held back to record a full disk
        trials.cgroup                      the trials' cgroup, where there is one
                                           (``containment.py``)
        trials/<trial_id>/                 parameter.json, metrics.jsonl, stdout, stderr, exit
                                           (the trial channel, ``channel.py``) + trial outputs

Who writes: the manager, through one ``ExperimentStore``; CLI commands that change an
experiment (``stop``, ``trial kill``) write only while no manager runs, or record a request the
manager honours. Readers (``status``, ``trial ls``) open their own connection and, thanks to WAL,
never block the manager nor wait for it. Every write is one transaction, so a ``kill -9`` leaves
the last committed state (SQLite ``synchronous=NORMAL``: safe against process crashes).

Experiments are found by scanning ``$NASCLI_HOME``; there is no separate index to go stale.
``create_experiment`` is all or nothing: the directory is built under a hidden temporary name and
renamed into place complete, so no command ever sees half an experiment; a directory that is
broken anyway (copied in part, damaged) is reported by ``scan_experiments`` and skipped by every
listing. Everything here is private to the user (directories 0700, files 0600; see
``nascli._files`` for ``$NASCLI_UMASK``).

A full disk: every experiment holds ``RESERVE_BYTES`` in ``space.reserve``; a write that fails
for lack of space raises ``StoreFullError`` (the transaction rolled back, the database intact),
and ``release_reserve`` frees that space so the writer can record why it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nascli._files import dir_mode, file_mode, make_private_dir, write_private
from nascli.channel import INTERMEDIATE
from nascli.errors import ExperimentBusyError, ExperimentNotFoundError, NasCliError, UsageError
from nascli.experiment.trials import TERMINAL, ExperimentStatus

if TYPE_CHECKING:
    # Imported where a lock is taken (the manager, ``stop``, ``delete``): readers never lock,
    # and filelock is a sixth of a reading command's start-up.
    from filelock import FileLock

__all__ = [
    "ExperimentStore",
    "ExperimentRecord",
    "TrialRecord",
    "ExperimentBusyError",
    "ExperimentNotFoundError",
    "StoreFullError",
    "scan_experiments",
    "nascli_home",
    "create_experiment",
    "open_experiment",
    "experiment_path",
    "list_experiment_dirs",
    "delete_experiment",
    "EXPERIMENT_STATUSES",
    "TRIAL_STATUSES",
    "TERMINAL_TRIAL_STATUSES",
    "TRIAL_SORTS",
    "TRIAL_TEXT_COLUMNS",
    "TrialQuery",
    "ALL_TRIALS",
]

# The stored texts are the enums' values (``trials.py``); these tuples are kept for readers.
EXPERIMENT_STATUSES = tuple(s.value for s in ExperimentStatus)
# The statuses ``status_counts`` always lists (EARLY_STOPPED appears once a trial has it, so the
# counts of stores without early stopping read as they always did).
TRIAL_STATUSES = ("WAITING", "RUNNING", "SUCCEEDED", "FAILED", "EARLY_STOPPED", "USER_CANCELED")
TERMINAL_TRIAL_STATUSES = frozenset(s.value for s in TERMINAL)

_DB = "experiment.sqlite"
_START_REQUEST = "manager.start"
_RESERVE = "space.reserve"
RESERVE_BYTES = 1 << 20
# 32 symbols (no l, o, 0, 1: ids are read and typed by people), so a random byte maps evenly.
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"

# The tuner calls made since the tuner checkpoint in the experiment row, one row per manager
# turn (see Manager: the checkpoint grows with the history, the calls of a turn do not).
# The assessor's checkpoint and the calls made since (as for the tuner), and its last error.
_ASSESSOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS assessor (
    id INTEGER PRIMARY KEY CHECK (id = 0), state TEXT, error TEXT
);
INSERT OR IGNORE INTO assessor (id) VALUES (0);
CREATE TABLE IF NOT EXISTS assessor_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, calls TEXT NOT NULL
);
"""

_TUNER_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS tuner_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, calls TEXT NOT NULL);
"""

#: The number a trial's final result stands for, in SQL (``tuners.base.extract_scalar``: the
#: value, or its ``default`` entry); NULL for a trial without one. Only SUCCEEDED trials keep a
#: final result, so this is also "has a score".
_SCORE = (
    "(CASE json_type(final) WHEN 'object' THEN json_extract(final, '$.default') "
    "ELSE json_extract(final, '$') END)"
)

# What the reading commands need to answer without scanning every trial: the best trial (one
# index probe, either optimize mode: ``trials_score``) and best-first pages (the scored trials
# by score, either direction, then the unscored ones newest first: the two partial indexes).
# Made with new stores; stores made before them get them from ``ensure_read_indexes`` (the
# manager at start, or the first reader that can write); until then the same queries scan, and
# answer the same.
_READ_INDEXES = f"""
CREATE INDEX IF NOT EXISTS trials_score ON trials (status, {_SCORE}, seq);
CREATE INDEX IF NOT EXISTS trials_scored ON trials ({_SCORE}, seq) WHERE {_SCORE} IS NOT NULL;
CREATE INDEX IF NOT EXISTS trials_unscored ON trials (seq) WHERE {_SCORE} IS NULL;
"""
_READ_INDEX_NAMES = ("trials_score", "trials_scored", "trials_unscored")

#: ``trials_page`` orders: launch order, newest first, best final result first (then the trials
#: without one, newest first).
TRIAL_SORTS = ("launch", "newest", "best")

_SCHEMA = (
    """
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
    DEFAULT 0, node TEXT
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
"""
    + _TUNER_LOG_SCHEMA
    + _READ_INDEXES
    + _ASSESSOR_SCHEMA
)


class StoreFullError(NasCliError):
    """A write failed because the disk (or quota) is full; nothing of it was stored."""


def _is_full(exc: BaseException, where: Path) -> bool:
    """Whether ``exc`` comes from a full disk. SQLite reports some out-of-space writes (of its
    WAL index, say) as a generic I/O error: then the free space of ``where`` decides."""
    if isinstance(exc, OSError):
        return exc.errno in (28, 122)  # ENOSPC, EDQUOT
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            return True
        if (code is not None and code & 0xFF == sqlite3.SQLITE_IOERR) or "I/O error" in str(exc):
            try:
                info = os.statvfs(where)
            except OSError:
                return False
            return info.f_bavail * info.f_frsize < RESERVE_BYTES + (256 << 10)  # nearly full
    return False


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
    next_parameter_id: int
    stop_grace: float | None
    #: The tuner's checkpoint as stored (JSON text); ``tuner_state`` decodes it.
    tuner_state_json: str | None = field(default=None, repr=False)

    @property
    def tuner_state(self) -> Any:
        """The tuner's checkpoint (None: none yet), decoded when asked: it grows with the
        history, and the readers that never ask (``status``, the live views) do not pay for
        decoding it."""
        return _loads(self.tuner_state_json)


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
    node: str | None = None  # where it ran, for services with more than one machine

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_TRIAL_STATUSES


@dataclass(frozen=True)
class TrialQuery:
    """Which trials a listing reads and in what order (``trials_page``, ``trial_dicts``,
    ``trial_texts``).

    Attributes:
        sort: one of ``TRIAL_SORTS``; ``best`` by ``maximize``.
        statuses: only trials with one of these statuses (all when None or empty).
        limit: at most this many (all when None).
        after: a trial id: start just after it in this order (keyset paging: pass the last id
            of the previous page; unaffected by trials added meanwhile). An id of no trial
            gives nothing.
        ids: only the trials with one of these ids (none when empty).
        newer_than: only the trials launched after the trial with this id (the live views'
            new trials; an id of no trial gives nothing).
    """

    sort: str = "launch"
    statuses: Sequence[str] | None = None
    limit: int | None = None
    after: str | None = None
    maximize: bool = True
    ids: Sequence[str] | None = None
    newer_than: str | None = None


#: Every trial in launch order.
ALL_TRIALS = TrialQuery()


@dataclass(frozen=True)
class TrialPaths:
    """Where one trial's files are (the file names inside come from ``channel.py``)."""

    dir: Path
    stdout: Path
    stderr: Path


_PATHS_KEPT = 256


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
        self._paths: dict[str, TrialPaths] = {}  # recent trials' (the manager asks per trial)
        if not (self.dir / _DB).is_file():
            raise ExperimentNotFoundError(f"{self.dir} is not a nascli experiment (no {_DB})")
        try:
            self._conn = sqlite3.connect(
                self.dir / _DB, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._has_read_indexes: bool | None = None
            self.ensure_node_column()
        except sqlite3.OperationalError as exc:
            if _is_full(exc, self.dir):
                raise StoreFullError(f"{self.dir}: the disk is full ({exc})") from None
            raise NasCliError(f"cannot open experiment {self.dir}: {exc}") from None

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
        paths = self._paths.get(trial_id)
        if paths is None:
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            trial_dir = self.dir / "trials" / trial_id
            paths = TrialPaths(trial_dir, trial_dir / "stdout", trial_dir / "stderr")
            self._paths[trial_id] = paths
        return paths

    def manager_lock(self) -> FileLock:
        """The lock the running manager holds for its whole life (released by the OS if the
        manager dies, even by ``kill -9``)."""
        from filelock import FileLock

        return FileLock(str(self.dir / "manager.lock"), mode=file_mode())

    # ------------------------------------------------------------------ start requests

    def request_start(self) -> str:
        """Record that a manager is being started (before it is spawned); returns the token
        the manager passes to ``start_requested``. A ``stop`` meanwhile withdraws it. A new
        experiment is created with one (``create_experiment``): see ``pending_start``."""
        token = _new_id()
        write_private(self.dir / _START_REQUEST, token)
        return token

    def pending_start(self) -> str | None:
        """The token of the start request not yet taken or withdrawn, if any."""
        try:
            return (self.dir / _START_REQUEST).read_text().strip() or None
        except OSError:
            return None

    def start_requested(self, token: str) -> bool:
        """Whether the start with ``token`` is still wanted (call with the lock held)."""
        try:
            return (self.dir / _START_REQUEST).read_text().strip() == token
        except OSError:
            return False

    def withdraw_start(self) -> bool:
        """Withdraw any pending start request (taken by a manager, or cancelled by ``stop``:
        needs no free space). True if there was one."""
        try:
            (self.dir / _START_REQUEST).unlink()
            return True
        except FileNotFoundError:
            return False

    def start_pending(self) -> bool:
        return (self.dir / _START_REQUEST).exists()

    # ------------------------------------------------------------------ disk space

    def ensure_reserve(self) -> None:
        """Hold back ``RESERVE_BYTES`` (best effort: on a disk already full there is none)."""
        path = self.dir / _RESERVE
        try:
            if path.stat().st_size >= RESERVE_BYTES:
                return
        except OSError:
            pass
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, file_mode())
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError:
            pass

    def release_reserve(self) -> bool:
        """Free the held-back space (after a ``StoreFullError``). True if there was some."""
        try:
            (self.dir / _RESERVE).unlink()
            return True
        except OSError:
            return False

    def take_manager_lock(self) -> FileLock | None:
        """The manager lock, held, if nobody holds it right now; None when someone does."""
        from filelock import Timeout

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
        return inode, self.data_version()

    # ------------------------------------------------------------------ experiment row

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``).

        Raises:
            StoreFullError: the disk is full (the transaction was rolled back).
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
        except (sqlite3.OperationalError, OSError) as exc:
            if _is_full(exc, self.dir):
                raise StoreFullError(f"{self.dir}: the disk is full ({exc})") from exc
            raise

    def experiment(self) -> ExperimentRecord:
        row = self._conn.execute("SELECT * FROM experiment").fetchone()
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["tuner_state_json"] = data.pop("tuner_state")
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

    def try_update_experiment(self, wait: float, **fields: Any) -> bool:
        """``update_experiment`` in its own transaction, giving up (False) after ``wait``
        seconds of a busy database or on any write failure: for notes that must not hold up
        the caller (``stop``'s grace period)."""
        self._conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        try:
            with self.transaction():
                self.update_experiment(**fields)
            return True
        except (sqlite3.Error, NasCliError):
            return False
        finally:
            self._conn.execute("PRAGMA busy_timeout = 30000")

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
        row = self._conn.execute(
            f"SELECT {_TRIAL_SELECT} FROM trials WHERE id = ?", (trial_id,)
        ).fetchone()
        return None if row is None else _trial(row)

    def trials(self, statuses: Sequence[str] | None = None) -> list[TrialRecord]:
        """Trials in launch order, optionally only those with one of ``statuses``."""
        return list(self.trials_page(TrialQuery(statuses=statuses)))

    def next_trial_seq(self) -> int:
        row = self._conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM trials").fetchone()
        return int(row[0])

    def status_counts(self) -> dict[str, int]:
        """Trials per status: every one of ``TRIAL_STATUSES``, and any other found."""
        counts = dict.fromkeys(TRIAL_STATUSES, 0)
        for status, n in self._conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            counts[status] = n
        return counts

    def running_cancel_requests(self) -> list[str]:
        """Ids of RUNNING trials whose cancellation was requested (``nascli trial kill``)."""
        rows = self._conn.execute(
            "SELECT id FROM trials WHERE status = 'RUNNING' AND cancel_requested = 1"
        )
        return [row[0] for row in rows]

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

    def metrics(self, trial_id: str | None = None) -> list[tuple[str, int, str, Any, float]]:
        """``(trial_id, sequence, type, value, time)`` rows, per trial in report order: every
        trial's or ``trial_id``'s."""
        if trial_id is None:
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
        """Create the tuner log of an experiment made before it existed (writer only), and the
        reading indexes it may lack as well."""
        self._conn.executescript(_TUNER_LOG_SCHEMA)
        self.ensure_read_indexes()

    def ensure_node_column(self) -> None:
        """Add ``trials.node`` to a store made before it existed (once, when such a store is
        first opened; a store being created has no trials table yet)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(trials)")}
        if columns and "node" not in columns:
            try:
                self._conn.execute("ALTER TABLE trials ADD COLUMN node TEXT")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

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

    # ------------------------------------------------------------------ assessor

    def ensure_assessor_tables(self) -> None:
        """Create the assessor's tables in an experiment made before they existed (writer
        only)."""
        self._conn.executescript(_ASSESSOR_SCHEMA)

    def assessor_checkpoint(self) -> tuple[Any, list[Any]]:
        """The assessor's saved state (None: none saved) and the calls logged after it."""
        row = self._conn.execute("SELECT state FROM assessor").fetchone()
        rows = self._conn.execute("SELECT calls FROM assessor_log ORDER BY seq")
        calls = [call for (text,) in rows for call in json.loads(text)]
        return _loads(row[0] if row else None), calls

    def save_assessor_state(self, state_json: str) -> None:
        """A new checkpoint (JSON text): the calls logged before it are forgotten."""
        self._conn.execute("UPDATE assessor SET state = ?", (state_json,))
        self._conn.execute("DELETE FROM assessor_log")

    def append_assessor_calls(self, calls: list[Any]) -> None:
        """One turn's assessor calls (JSON-serialisable lists), after the checkpoint."""
        self._conn.execute("INSERT INTO assessor_log (calls) VALUES (?)", (json.dumps(calls),))

    def set_assessor_error(self, message: str | None) -> None:
        self._conn.execute("UPDATE assessor SET error = ?", (message,))

    def assessor_error(self) -> str | None:
        """The assessor's last recorded error (None for none, or an experiment made before
        assessors existed)."""
        try:
            row = self._conn.execute("SELECT error FROM assessor").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def intermediate_results(self, trial_id: str) -> list[Any]:
        """A trial's intermediate results, in report order."""
        rows = self._conn.execute(
            "SELECT value FROM metrics WHERE trial_id = ? AND type = ? ORDER BY sequence",
            (trial_id, INTERMEDIATE),
        )
        return [json.loads(value) for (value,) in rows]

    def events(self, limit: int = 50) -> list[tuple[float, str | None, str, str]]:
        rows = self._conn.execute(
            "SELECT time, trial_id, kind, message FROM events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [tuple(r) for r in reversed(rows)]  # type: ignore[misc]

    # ------------------------------------------------------------------ reading at scale

    def ensure_read_indexes(self) -> bool:
        """Create the reading indexes a store made by an older nascli lacks. Safe while a
        manager runs (one short write transaction); a read-only store is left as it is (its
        reads scan). True if the indexes are there afterwards."""
        if self._has_read_indexes is not None:
            return self._has_read_indexes
        found = self._conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN "
            f"({', '.join('?' for _ in _READ_INDEX_NAMES)})",
            _READ_INDEX_NAMES,
        ).fetchone()[0]
        if found < len(_READ_INDEX_NAMES):
            # A reader must not wait long for a busy writer: the queries work without them.
            self._conn.execute("PRAGMA busy_timeout = 200")
            try:
                self._conn.executescript(_READ_INDEXES)
            except sqlite3.OperationalError:  # read-only file or directory, or a busy writer
                self._has_read_indexes = False  # not tried again by this connection
                return False
            finally:
                self._conn.execute("PRAGMA busy_timeout = 30000")
        self._has_read_indexes = True
        return True

    def data_version(self) -> int:
        """A number that changes when another connection commits a change to the database
        (SQLite's ``data_version``): a cheap "anything new?" for views that poll."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def best_trial(self, maximize: bool = True) -> TrialRecord | None:
        """The SUCCEEDED trial with the best final result (the earliest launched of equals);
        two probes of the score index, however many trials there are."""
        self.ensure_read_indexes()
        pick = "MAX" if maximize else "MIN"
        (best,) = self._conn.execute(
            f"SELECT {pick}({_SCORE}) FROM trials WHERE status = 'SUCCEEDED'"
        ).fetchone()
        if best is None:
            return None
        row = self._conn.execute(
            f"SELECT {_TRIAL_SELECT} FROM trials WHERE status = 'SUCCEEDED' AND {_SCORE} = ? "
            "ORDER BY seq LIMIT 1",
            (best,),
        ).fetchone()
        return None if row is None else _trial(row)

    def trials_page(self, query: TrialQuery = ALL_TRIALS) -> Iterator[TrialRecord]:
        """The trials ``query`` selects, in its order, read as they are iterated (memory stays
        flat however many there are).

        Raises:
            UsageError: an unknown ``query.sort``.
        """
        return (_trial(r) for r in self._page(query, False))

    def trial_dicts(
        self, query: TrialQuery = ALL_TRIALS, intermediate: bool = True
    ) -> Iterator[dict[str, Any]]:
        """``trials_page`` as plain dicts, for listings that serialise every trial (cheaper
        than records): the ``TrialRecord`` fields decoded, and with ``intermediate`` the
        trial's intermediate values in report order (read in the same query)."""
        rows = self._page(query, intermediate)
        if not intermediate:
            return (_decoded(r) for r in rows)
        return ({**_decoded(r), "intermediate": json.loads(r[_TRIAL_FIELDS] or "[]")} for r in rows)

    def trial_texts(self, query: TrialQuery = ALL_TRIALS) -> Iterable[Sequence[Any]]:
        """``trials_page``'s trials undecoded, for writers that re-encode every trial (the JSON
        listings): rows indexed as ``TRIAL_TEXT_COLUMNS``, the JSON columns (``parameters``,
        ``gpus``, ``final``) as their stored JSON text (or None), ``intermediate`` the trial's
        intermediate values as one JSON array text (None for none)."""
        return self._page(query, True)

    def _page(self, query: TrialQuery, intermediate: bool) -> Iterable[sqlite3.Row]:
        sort, statuses, limit, after, maximize, ids, newer_than = (
            query.sort, query.statuses, query.limit, query.after, query.maximize, query.ids,
            query.newer_than,
        )  # fmt: skip
        if sort not in TRIAL_SORTS:
            raise UsageError(f"sort must be one of {', '.join(TRIAL_SORTS)}, got {sort!r}")
        where: list[str] = []
        args: list[Any] = []
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args += list(statuses)
        if ids is not None:
            # One bound JSON array, however many ids (no bound-variable limit); by primary key.
            where.append("id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps([str(i) for i in ids]))
        if newer_than is not None:  # an id of no trial: nothing
            where.append("seq > (SELECT seq FROM trials WHERE id = ?)")
            args.append(newer_than)
        columns = _TRIAL_SELECT
        if intermediate:
            # The values are stored as JSON text: joined, they make a JSON array, parsed once.
            columns += (
                ", (SELECT '[' || group_concat(value, ',') || ']' FROM metrics "
                "WHERE trial_id = trials.id AND type != 'FINAL') AS intermediate"
            )
        mark = None
        if after is not None:
            mark = self._conn.execute(
                f"SELECT seq, {_SCORE} FROM trials WHERE id = ?", (after,)
            ).fetchone()
            if mark is None:
                return ()
        if sort == "best":
            self.ensure_read_indexes()
            return self._best_first(columns, where, args, limit, mark, maximize)
        if mark is not None:
            where.append("seq > ?" if sort == "launch" else "seq < ?")
            args.append(mark[0])
        order = "seq" if sort == "launch" else "seq DESC"
        return self._conn.execute(_select(columns, where, order, limit), [*args, *_limit(limit)])

    def _best_first(
        self,
        columns: str,
        where: list[str],
        args: list[Any],
        limit: int | None,
        mark: tuple[int, Any] | None,
        maximize: bool,
    ) -> Iterator[sqlite3.Row]:
        """Best-first order as two indexed queries: the scored trials by score (ties in launch
        order; ``trials_scored``, read from the end to maximize), then the unscored ones newest
        first (``trials_unscored``). Both read in one read transaction, so a trial that gains
        its score meanwhile is listed once. ``mark``: the (seq, score) to start after."""
        scored = [f"{_SCORE} IS NOT NULL", *where]
        scored_args = list(args)
        unscored = [f"{_SCORE} IS NULL", *where]
        unscored_args = list(args)
        if mark is not None:
            seq, score = mark
            if score is None:  # into the unscored tail, newest first: nothing scored is left
                scored = []
                unscored.append("seq < ?")
                unscored_args.append(seq)
            else:
                # A range of the index (score up to the mark's), then the mark's equals after it.
                worse = "<" if maximize else ">"
                scored.append(f"{_SCORE} {worse}= ? AND ({_SCORE} {worse} ? OR seq > ?)")
                scored_args += [score, score, seq]
        own = not self._conn.in_transaction
        if own:
            self._conn.execute("BEGIN")
        try:
            count = 0
            if scored:
                order = f"{_SCORE} {'DESC' if maximize else 'ASC'}, seq"
                sql = _select(columns, scored, order, limit)
                for row in self._conn.execute(sql, [*scored_args, *_limit(limit)]):
                    yield row
                    count += 1
            if limit is None or count < limit:
                rest = None if limit is None else limit - count
                sql = _select(columns, unscored, "seq DESC", rest)
                yield from self._conn.execute(sql, [*unscored_args, *_limit(rest)])
        finally:
            if own and self._conn.in_transaction:
                self._conn.execute("COMMIT")

    def text_lengths(self) -> tuple[int, int, int, bool]:
        """The longest trial id, ``gpus`` value (as stored) and reason, and whether any trial
        is a retry (one aggregate query, for laying out a table before reading its rows)."""
        row = self._conn.execute(
            "SELECT MAX(length(id)), MAX(length(gpus)), MAX(length(reason)), MAX(attempt) > 1 "
            "FROM trials"
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), bool(row[3])

    def final_keys(self) -> list[str]:
        """The entries of dict final results other than ``default``, in the order they first
        appear (launch order, then the result's own order)."""
        rows = self._conn.execute(
            "SELECT j.key FROM trials AS t, json_each(t.final) AS j "
            "WHERE json_type(t.final) = 'object' AND j.key != 'default' "
            "GROUP BY j.key ORDER BY MIN(t.seq * 1000000 + j.id)"
        )
        return [key for (key,) in rows]


_TRIAL_COLUMNS = frozenset(TrialRecord.__dataclass_fields__) - {"id", "status"}
_EXPERIMENT_COLUMNS = (
    frozenset(ExperimentRecord.__dataclass_fields__) - {"id", "status"} | {"tuner_state"}
)


def _check_columns(fields: dict[str, Any], allowed: frozenset[str], table: str) -> None:
    # Column names go into the SQL text: only the schema's own names get there.
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not settable columns of {table}: {sorted(unknown)}")


_TRIAL_SELECT = (
    "id, seq, parameter_id, attempt, parameters, status, reason, cancel_requested, gpus, pid, "
    "pid_token, created, started, ended, exit_code, final, metrics_offset, bad_metric_lines, node"
)
_TRIAL_NAMES = tuple(name.strip() for name in _TRIAL_SELECT.split(","))
_TRIAL_FIELDS = len(_TRIAL_NAMES)
#: The columns of ``ExperimentStore.trial_texts``' rows, in order.
TRIAL_TEXT_COLUMNS = (*_TRIAL_NAMES, "intermediate")


def _select(columns: str, where: list[str], order: str, limit: int | None) -> str:
    sql = f"SELECT {columns} FROM trials"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    return sql if limit is None else sql + " LIMIT ?"


def _limit(limit: int | None) -> list[int]:
    return [] if limit is None else [max(0, int(limit))]


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(zip(_TRIAL_NAMES, row, strict=False))  # stops at the trial's own columns
    data["parameters"] = json.loads(data["parameters"])
    data["gpus"] = _loads(data["gpus"])
    data["final"] = _loads(data["final"])
    data["cancel_requested"] = bool(data["cancel_requested"])
    return data


def _trial(row: sqlite3.Row) -> TrialRecord:
    return TrialRecord(**_decoded(row))


# --------------------------------------------------------------------------- experiments


def create_experiment(
    config: dict[str, Any],
    config_text: str,
    search_space: dict[str, Any],
    name: str,
    author: str | None,
) -> ExperimentStore:
    """Make a new experiment directory with its database (status RUNNING, no trials yet, its
    start requested: ``pending_start``).

    All or nothing: it is built under a hidden name and renamed into place once complete; on
    any failure (a full disk, a value the database refuses) nothing is left behind.

    Raises:
        StoreFullError: the disk is full.
    """
    home = nascli_home()
    try:
        home.mkdir(parents=True, exist_ok=True, mode=dir_mode())
        build = Path(tempfile.mkdtemp(prefix=".creating-", dir=home))
    except OSError as exc:
        if _is_full(exc, home):
            raise StoreFullError(f"{home}: the disk is full ({exc})") from None
        raise
    try:
        os.chmod(build, dir_mode())
        make_private_dir(build / "trials")
        write_private(build / "config.yml", config_text)
        write_private(build / "search_space.json", json.dumps(search_space, indent=2))
        os.close(os.open(build / _DB, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode()))
        conn = sqlite3.connect(build / _DB, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            while True:
                exp_id = _new_id()
                if not (home / exp_id).exists():
                    break
            conn.execute(
                "INSERT INTO experiment (id, name, author, status, created, config) "
                "VALUES (?, ?, ?, 'RUNNING', ?, ?)",
                (exp_id, name, author, time.time(), json.dumps(config)),
            )
        finally:
            conn.close()
        # Born with its start requested: a `stop` from the moment the experiment exists wins.
        write_private(build / _START_REQUEST, _new_id())
        fd = os.open(build / _RESERVE, os.O_WRONLY | os.O_CREAT, file_mode())
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
        ExperimentStore(build).close()  # it opens (a nearly full disk can refuse its WAL index)
        os.rename(build, home / exp_id)  # an existing non-empty directory makes this fail
    except BaseException as exc:
        shutil.rmtree(build, ignore_errors=True)
        if _is_full(exc, home):
            raise StoreFullError(f"{home}: the disk is full ({exc})") from None
        if isinstance(exc, (OSError, sqlite3.Error)):
            raise NasCliError(f"cannot create an experiment in {home}: {exc}") from None
        raise
    return ExperimentStore(home / exp_id)


def scan_experiments() -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(experiments, broken)`` under ``$NASCLI_HOME``: the readable experiment directories,
    oldest first (by creation time), and the directories that look like experiments but cannot
    be read, each with why. Directories being created (hidden names) are neither."""
    home = nascli_home()
    if not home.is_dir():
        return [], []
    good: list[tuple[float, str, Path]] = []
    broken: list[tuple[Path, str]] = []
    for d in home.iterdir():
        if d.name.startswith(".") or not (d / _DB).is_file():
            continue
        created = _created(d)
        if isinstance(created, str):
            broken.append((d, created))
        else:
            good.append((created, d.name, d))
    return [d for _, _, d in sorted(good)], sorted(broken)


def experiment_path(exp_id: str) -> Path:
    """The directory experiment ``exp_id`` (an exact id, no prefix) has under ``$NASCLI_HOME``,
    whether or not it exists. Refuses anything that is not a bare name (no separator, no
    ``.``/``..``), so the path stays inside the home."""
    if not exp_id or exp_id in (".", "..") or "/" in exp_id or "\\" in exp_id or "\0" in exp_id:
        raise ExperimentNotFoundError(f"{exp_id!r} is not an experiment id")
    return nascli_home() / exp_id


def list_experiment_dirs() -> list[Path]:
    """Every readable experiment under ``$NASCLI_HOME``, oldest first (by creation time);
    broken ones are left out (``scan_experiments`` names them)."""
    return scan_experiments()[0]


def open_experiment(exp_id: str | None = None) -> ExperimentStore:
    """The experiment ``exp_id`` (a unique prefix is enough); the latest one when None.

    Raises:
        ExperimentNotFoundError: nothing matches, or the prefix is ambiguous.
    """
    dirs, broken = scan_experiments()
    if exp_id is not None:
        for d, why in broken:
            if d.name == exp_id or (d.name.startswith(exp_id) and not any(
                    g.name.startswith(exp_id) for g in dirs)):  # fmt: skip
                raise ExperimentNotFoundError(f"experiment {d.name} ({d}) is broken: {why}")
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


def _created(exp_dir: Path) -> float | str:
    """The experiment's creation time, or why it cannot be read."""
    try:
        conn = sqlite3.connect(exp_dir / _DB, timeout=5)
        try:
            row = conn.execute("SELECT id, config, created FROM experiment").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"its database cannot be read ({exc})"
    if row is None:
        return "its database holds no experiment"
    try:
        json.loads(row[1])
        return float(row[2])
    except (TypeError, ValueError) as exc:
        return f"its experiment record is damaged ({exc})"


def delete_experiment(store: ExperimentStore) -> Path:
    """Remove an experiment's directory (refused while its manager runs; refusing while its
    trials run is ``control.delete_experiment``'s job). Returns the path."""
    with store.exclusive():
        store.close()
        shutil.rmtree(store.dir)
    return store.dir
