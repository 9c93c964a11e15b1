"""The trial channel: how a trial process and the experiment manager talk, through files only.

The manager writes ``parameter.json`` into the trial's directory before it starts the trial and
passes the trial's identity in environment variables (DESIGN §5). The trial appends one JSON line
per reported metric to ``metrics.jsonl`` in its directory, flushed at once, so a crash of the trial
or of the manager loses at most the line being written (the same promise as the store's: safe
against process crashes; not fsynced, which would cost ~1 ms per report for power-loss safety the
store does not offer either). The manager reads new complete lines from an offset; a torn or
garbage line is skipped and counted, never fatal. Nothing here needs a server or a port, and
nothing is lost while the manager is down: the files wait for it.

A trial controls every file in its directory, so the manager reads them through ``nascli._files``:
never blocking (a FIFO or device in place of a file is refused), at most ``METRICS_READ_LIMIT``
bytes of metrics per read and ``MAX_LINE`` bytes per line, the tail of ``stderr`` only, and any
line whatever its content (huge numbers, deep nesting, binary) is parsed or counted, never raised.
What the manager writes here it writes without following symlinks.

This module and ``store.py`` are the only code that knows these file names. It lives at the top
of the package, not in ``nascli.experiment``, because both sides import it: the trial side
(``nascli.reporting``, ``nascli.nas.classic``) and the manager. It imports nothing of either.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nascli._files import (
    make_private_dir,
    read_bounded,
    read_tail,
    write_private,
)
from nascli.errors import MetricError, ParameterError

__all__ = [
    "PARAMETER_FILE",
    "METRICS_FILE",
    "EXIT_FILE",
    "LAUNCH_FILE",
    "read_exit_marker",
    "read_launch_marker",
    "prepare_trial_dir",
    "stderr_last_line",
    "TrialContext",
    "MetricRecord",
    "write_parameters",
    "read_parameters",
    "append_metric",
    "read_metrics",
    "check_metric",
    "metric_number",
    "metric_scalar",
]

PARAMETER_FILE = "parameter.json"
METRICS_FILE = "metrics.jsonl"
EXIT_FILE = "exit"
LAUNCH_FILE = "launched"  # the launcher's pid, written by it before the command starts

METRICS_READ_LIMIT = 4 << 20  # bytes of metrics.jsonl read per call (the rest: next call)
MAX_LINE = 64 << 10  # a longer metric line is skipped and counted
_SQLITE_INT = 1 << 63

ENV_PLATFORM = "NASCLI_PLATFORM"
ENV_EXP_ID = "NASCLI_EXP_ID"
ENV_TRIAL_ID = "NASCLI_TRIAL_ID"
ENV_TRIAL_SEQ = "NASCLI_TRIAL_SEQ"
ENV_TRIAL_DIR = "NASCLI_TRIAL_DIR"
ENV_OUTPUT_DIR = "NASCLI_OUTPUT_DIR"
ENV_GEN_SEARCH_SPACE = "NASCLI_GEN_SEARCH_SPACE"

INTERMEDIATE = "PERIODICAL"
FINAL = "FINAL"


@dataclass(frozen=True)
class TrialContext:
    """Who this process is, read from the environment. No platform means standalone mode."""

    platform: str | None
    experiment_id: str | None
    trial_id: str | None
    sequence_id: int | None
    trial_dir: Path | None
    output_dir: Path | None
    gen_search_space: Path | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TrialContext:
        env = os.environ if environ is None else environ
        seq = env.get(ENV_TRIAL_SEQ)
        trial_dir = env.get(ENV_TRIAL_DIR)
        return cls(
            platform=env.get(ENV_PLATFORM) or None,
            experiment_id=env.get(ENV_EXP_ID),
            trial_id=env.get(ENV_TRIAL_ID),
            sequence_id=int(seq) if seq and seq.isdigit() else None,
            trial_dir=Path(trial_dir) if trial_dir else None,
            output_dir=Path(env.get(ENV_OUTPUT_DIR) or trial_dir) if trial_dir else None,
            gen_search_space=Path(env[ENV_GEN_SEARCH_SPACE])
            if env.get(ENV_GEN_SEARCH_SPACE)
            else None,
        )

    @property
    def standalone(self) -> bool:
        return self.platform is None

    def environment(self) -> dict[str, str]:
        """The environment variables that describe this context (what the manager sets)."""
        pairs = {
            ENV_PLATFORM: self.platform,
            ENV_EXP_ID: self.experiment_id,
            ENV_TRIAL_ID: self.trial_id,
            ENV_TRIAL_SEQ: None if self.sequence_id is None else str(self.sequence_id),
            ENV_TRIAL_DIR: None if self.trial_dir is None else str(self.trial_dir),
            ENV_OUTPUT_DIR: None if self.output_dir is None else str(self.output_dir),
            ENV_GEN_SEARCH_SPACE: None
            if self.gen_search_space is None
            else str(self.gen_search_space),
        }
        return {k: v for k, v in pairs.items() if v is not None}


# --------------------------------------------------------------------------- parameters


def write_parameters(trial_dir: Path, parameter_id: int, parameters: Mapping[str, Any]) -> Path:
    """Manager side: write the trial's parameters before the trial starts. Nothing reads the
    file before then (a relaunch after a crash writes it again), so no temporary file and
    rename are needed. A symlink in its place is refused (``UnsafeFileError``), not followed."""
    path = Path(trial_dir) / PARAMETER_FILE
    # One line, as NNI's parameter.cfg: ``indent`` would take json's pure-Python encoder,
    # ten times slower than its C one, on every trial's way to its slot.
    write_private(path, json.dumps({"parameter_id": parameter_id, "parameters": parameters}))
    return path


def prepare_trial_dir(trial_dir: Path, parameter_id: int, parameters: Mapping[str, Any]) -> None:
    """Manager side: the trial's directory (private, a real directory, not a link) with its
    ``parameter.json``, before the trial starts.

    Raises:
        OSError: it cannot be made (``UnsafeFileError`` for a link or non-directory in its
            place, ENOSPC for a full disk).
    """
    make_private_dir(Path(trial_dir).parent)
    make_private_dir(trial_dir)
    write_parameters(trial_dir, parameter_id, parameters)


def read_parameters(trial_dir: Path) -> tuple[int | None, dict[str, Any], Path]:
    """Trial side: the ``(parameter_id, parameters, path)`` the manager wrote for this trial.

    Raises:
        ParameterError: the file is missing or malformed.
    """
    path = Path(trial_dir) / PARAMETER_FILE
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ParameterError([f"cannot read it: {exc.strerror or exc}"], str(path)) from None
    except json.JSONDecodeError as exc:
        raise ParameterError(
            [f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], str(path)
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("parameters"), dict):
        raise ParameterError(
            ["must be an object with 'parameter_id' and a 'parameters' object"], str(path)
        )
    return doc.get("parameter_id"), doc["parameters"], path


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricRecord:
    """One reported metric: ``type`` is ``PERIODICAL`` (intermediate) or ``FINAL``."""

    type: str
    sequence: int
    value: Any
    time: float

    @property
    def scalar(self) -> float:
        """The number tuners optimise (``metric_scalar``)."""
        return metric_scalar(self.value)


def metric_number(value: Any) -> Any:
    """The number a metric stands for, as reported: the value itself, or the ``default`` entry
    of a dict metric. The one rule tuners, reports and views share."""
    return value.get("default") if isinstance(value, Mapping) else value


def metric_scalar(value: Any) -> float:
    """``metric_number(value)`` as a float: what tuners optimise and reports rank by."""
    return float(metric_number(value))


def check_metric(value: Any) -> float | dict[str, Any]:
    """Return ``value`` as a JSON-ready metric, or raise ``MetricError`` saying what is allowed.

    Allowed: a finite number (Python, numpy or 0-d tensor scalars), or a dict whose ``default``
    entry is such a number (other entries: any JSON values, numbers finite).
    """
    if isinstance(value, Mapping):
        if "default" not in value:
            raise MetricError(
                f"a dict metric needs a numeric 'default' entry, got keys {sorted(map(str, value))}"
            )
        result = {str(k): _json_value(k, v) for k, v in value.items()}
        result["default"] = _finite_number("default", value["default"])
        return result
    return _finite_number("metric", value)


def _finite_number(name: str, value: Any) -> float:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricError(
            f"{name} must be a finite number (or a dict with a numeric 'default'), "
            f"got {value!r} ({type(value).__name__})"
        )
    if not math.isfinite(value):
        raise MetricError(f"{name} must be a finite number, got {value!r}")
    return value


def _json_value(key: Any, value: Any) -> Any:
    if (isinstance(value, (int, float)) and not isinstance(value, bool)) or hasattr(value, "item"):
        return _finite_number(f"metric entry {key!r}", value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise MetricError(
            f"metric entry {key!r} must be JSON-serialisable, got {value!r}"
        ) from None
    return value


@dataclass
class _Sequence:
    counters: dict[Path, int] = field(default_factory=dict)

    def next(self, trial_dir: Path) -> int:
        n = self.counters.get(trial_dir, 0)
        self.counters[trial_dir] = n + 1
        return n


_sequences = _Sequence()


def append_metric(trial_dir: Path, kind: str, value: Any) -> MetricRecord:
    """Trial side: validate and append one metric line to ``metrics.jsonl``; it is in the file
    (page cache) when this returns, so it survives the trial being killed right after."""
    record = MetricRecord(kind, _sequences.next(Path(trial_dir)), check_metric(value), time.time())
    line = json.dumps(
        {
            "type": record.type,
            "sequence": record.sequence,
            "value": record.value,
            "time": record.time,
        },
        allow_nan=False,
    )
    with open(Path(trial_dir) / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return record


def read_metrics(trial_dir: Path, offset: int = 0) -> tuple[list[MetricRecord], int, int]:
    """Manager side: the complete metric lines after byte ``offset`` (at most
    ``METRICS_READ_LIMIT`` bytes per call; the rest is left for the next call).

    Returns ``(records, new_offset, n_bad)``: a final line without its newline is left for the
    next call; lines that are not valid metric records (or longer than ``MAX_LINE``) are
    skipped and counted in ``n_bad``. Never raises for anything in the file, and never blocks:
    a ``metrics.jsonl`` that is not a regular file (FIFO, device, link) reads as empty.
    """
    path = Path(trial_dir) / METRICS_FILE
    try:
        data = read_bounded(path, offset, METRICS_READ_LIMIT)
    except OSError:  # missing, or not a regular file: nothing to read
        return [], offset, 0
    end = data.rfind(b"\n") + 1
    bad = 0
    if end == 0 and len(data) >= METRICS_READ_LIMIT:
        # One line longer than a whole read: skip what was read of it.
        return [], offset + len(data), 1
    records: list[MetricRecord] = []
    for raw in data[:end].splitlines():
        record = _parse_metric_line(raw)
        if record is None:
            bad += 1
        else:
            records.append(record)
    return records, offset + end, bad


def _parse_metric_line(raw: bytes) -> MetricRecord | None:
    """The record on one line, or None for anything else (whatever the line holds)."""
    if len(raw) > MAX_LINE:
        return None
    try:
        doc = json.loads(raw)
        sequence = doc["sequence"]
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            return None
        if not 0 <= sequence < _SQLITE_INT:
            return None
        when = float(doc.get("time", 0.0))
        record = MetricRecord(
            str(doc["type"]), sequence, check_metric(doc["value"]),
            when if math.isfinite(when) else 0.0,
        )  # fmt: skip
        json.dumps(record.value, allow_nan=False)  # what the store will write
    except Exception:  # noqa: BLE001 - a trial can write anything; no line may end the manager
        return None
    if record.type not in (INTERMEDIATE, FINAL):
        return None
    return record


def read_exit_marker(trial_dir: Path) -> tuple[int, float] | None:
    """Manager side: ``(exit_code, end_time)`` the trial's launcher wrote when the trial command
    ended, or None when there is no complete marker (still running, or killed with its
    launcher)."""
    path = Path(trial_dir) / EXIT_FILE
    try:
        text = read_bounded(path, 0, 64).decode("ascii").strip()
        return int(text), path.lstat().st_mtime
    except (OSError, ValueError):
        return None


def read_launch_marker(trial_dir: Path) -> int | None:
    """Manager side: the pid of the trial's launcher, which wrote it into the trial directory
    before running the command; None when the trial was never started."""
    try:
        text = read_bounded(Path(trial_dir) / LAUNCH_FILE, 0, 64).decode("ascii").strip()
        return int(text)
    except (OSError, ValueError):
        return None


def stderr_last_line(stderr: Path, limit: int = 300) -> str | None:
    """The last non-empty line of a trial's stderr (from its last 64 KiB only, so a trial that
    wrote gigabytes costs nothing), cut to ``limit`` characters; None when there is none."""
    try:
        tail = read_tail(stderr, 64 << 10)
    except OSError:
        return None
    lines = tail.decode("utf-8", errors="replace").splitlines()
    last = next((line.strip() for line in reversed(lines) if line.strip()), None)
    return last[:limit] if last else None

