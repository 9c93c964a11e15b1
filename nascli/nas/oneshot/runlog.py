"""The one-shot run log: what a one-shot search did, epoch by epoch, for the web UI to show.

``RunLog(directory)`` appends JSON lines to ``<directory>/oneshot.jsonl`` (one ``write`` of a whole
line per record, the file opened and closed around it, so a reader never sees half a record and no
handle stays open). The format is fixed and shared with the web UI (docs/porting_from_nni.md,
"The one-shot run log"):

    {"kind": "start", "time": t, "trainer": "DartsTrainer", "num_epochs": N,
     "choices": {"<key>": {"type": "layer_choice", "candidates": [name, ...]}
                        | {"type": "input_choice", "candidates": [name, ...], "n_chosen": k|null}}}
    {"kind": "epoch", "time": t, "epoch": i, "metrics": {"<name>": float|null},
     "weights": {"<key>": [float per candidate]}, "export": {...} | null}
    {"kind": "end", "time": t, "export": {...}}

``time`` is Unix time (float seconds); non-finite floats are written as ``null``. A resumed run
that logs to the same directory appends a new ``start`` and continues the epoch numbers.

Who calls what: ``BaseOneShotTrainer`` creates the log when given ``log_dir`` (or when
``enable_visualization()`` is called) on rank 0 only, and writes ``start`` when the outermost
``fit()`` begins, ``epoch`` after each epoch and ``end`` when that ``fit()`` returns (its export
is ``snapshot_export()``: null for a trainer that has chosen no architecture, such as
``SPOSSupernetTrainer``, whose ``fit()`` trains the supernet only).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nascli import space as spaces

__all__ = ["RunLog", "LOG_FILE", "default_log_dir", "choices_record", "uniform_probabilities"]

LOG_FILE = "oneshot.jsonl"


def default_log_dir(trainer_name: str) -> Path:
    """A fresh directory ``$NASCLI_HOME/oneshot/<run id>`` (``~/nascli-experiments`` when
    ``NASCLI_HOME`` is unset); the run id is ``<UTC time>-<trainer>-<random hex>``, so ids sort
    by start time and never collide."""
    from nascli.experiment.store import nascli_home

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = trainer_name.lower().removesuffix("trainer") or "oneshot"
    return nascli_home() / "oneshot" / f"{stamp}-{name}-{os.urandom(3).hex()}"


def _finite(value: Any) -> Any:
    """JSON-ready copy of ``value`` with NaN / inf floats replaced by None."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    try:  # numpy / torch scalars
        return _finite(float(value))
    except (TypeError, ValueError):
        return str(value)


def _candidate_names(spec: spaces.ChoiceSpec) -> list[str]:
    names = list(spec.names)
    if len(set(names)) != len(names) or any(not n for n in names):
        return [str(i) for i in range(len(names))]  # e.g. InputChoice(n_candidates=3): "" x 3
    return names


def choices_record(space: Mapping[str, spaces.ChoiceSpec]) -> dict[str, Any]:
    """The ``choices`` field of the start record for a search space (keys sorted)."""
    out: dict[str, Any] = {}
    for key in sorted(space):
        spec = space[key]
        if isinstance(spec, spaces.LayerChoiceSpec):
            out[key] = {"type": spaces.LAYER_CHOICE, "candidates": _candidate_names(spec)}
        else:
            out[key] = {
                "type": spaces.INPUT_CHOICE,
                "candidates": _candidate_names(spec),
                "n_chosen": spec.n_chosen,
            }
    return out


def uniform_probabilities(spec: spaces.ChoiceSpec) -> list[float]:
    """Per candidate, the probability that a uniform sample picks it: 1/n for a layer choice,
    ``n_chosen``/n for an input choice (1/2 each with ``n_chosen: null``)."""
    n = spec.n_candidates
    if isinstance(spec, spaces.LayerChoiceSpec):
        return [1.0 / n] * n
    if spec.n_chosen is None:
        return [0.5] * n
    return [spec.n_chosen / n] * n


class RunLog:
    """Appends the run-log records of one search to ``<directory>/oneshot.jsonl``."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / LOG_FILE

    def _append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(_finite(record), allow_nan=False, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def start(self, trainer: str, num_epochs: int, space: Mapping[str, spaces.ChoiceSpec]) -> None:
        self._append({"kind": "start", "time": time.time(), "trainer": trainer,
                      "num_epochs": int(num_epochs), "choices": choices_record(space)})  # fmt: skip

    def epoch(
        self,
        epoch: int,
        metrics: Mapping[str, float],
        weights: Mapping[str, Sequence[float]],
        export: Mapping[str, Any] | None,
    ) -> None:
        self._append({
            "kind": "epoch", "time": time.time(), "epoch": int(epoch),
            "metrics": {k: _float(v) for k, v in metrics.items()},
            "weights": {k: [_float(p) for p in v] for k, v in sorted(weights.items())},
            "export": None if export is None else dict(export),
        })  # fmt: skip

    def end(self, export: Mapping[str, Any] | None) -> None:
        self._append({"kind": "end", "time": time.time(),
                      "export": None if export is None else dict(export)})  # fmt: skip


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
