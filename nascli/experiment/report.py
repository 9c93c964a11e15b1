"""What ``status``, ``trial ls``, ``experiment list`` and ``export`` show, as plain data.

Pure readers of the store: they never change an experiment, so they are safe while its manager
runs and on a copied experiment directory. The CLI renders these dicts as tables or JSON.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from nascli import space as spaces
from nascli.channel import metric_scalar
from nascli.errors import ParameterError, UsageError
from nascli.experiment.control import manager_alive
from nascli.experiment.store import (
    ExperimentNotFoundError,
    ExperimentStore,
    TrialRecord,
    list_experiment_dirs,
)
from nascli.experiment.trials import LIVE_EXPERIMENT

__all__ = [
    "experiment_summary",
    "trial_rows",
    "experiment_rows",
    "TrialNotFoundError",
    "best_trial",
    "export_json",
    "export_csv",
    "optimize_mode",
]


class TrialNotFoundError(UsageError):
    """An experiment has no trial with the id given."""


def optimize_mode(config: dict[str, Any]) -> str:
    return str(config.get("tuner", {}).get("class_args", {}).get("optimize_mode", "maximize"))


def best_trial(
    store: ExperimentStore, trials: list[TrialRecord] | None = None
) -> dict[str, Any] | None:
    """The succeeded trial with the best final metric (by the tuner's ``optimize_mode``)."""
    exp = store.experiment()
    sign = -1.0 if optimize_mode(exp.config) == "minimize" else 1.0
    done = [t for t in (trials or store.trials(["SUCCEEDED"])) if t.status == "SUCCEEDED"]
    scored = [(sign * metric_scalar(t.final), -t.seq, t) for t in done if t.final is not None]
    if not scored:
        return None
    _, _, best = max(scored, key=lambda x: (x[0], x[1]))
    return {
        "id": best.id,
        "parameter_id": best.parameter_id,
        "parameters": best.parameters,
        "architecture": architecture(best.parameters, _space(store)),
        "metric": best.final,
    }


def architecture(parameters: dict[str, Any], space: spaces.SearchSpace) -> dict[str, Any]:
    """Parameters as an exported architecture (``{key: name | index | [names] | [indices]}``,
    names where they are meaningful) for people and ``apply_fixed_architecture``."""
    try:
        decisions = spaces.parse_parameters(space, parameters)
    except ParameterError:
        return {key: value.get("_value") for key, value in sorted(parameters.items())}
    return spaces.human_architecture(space, decisions)


def experiment_summary(store: ExperimentStore) -> dict[str, Any]:
    """``status --json``: id, status, trial counts by status, best trial, budget, manager."""
    exp = store.experiment()
    trials = store.trials()
    counts = store.status_counts()
    alive = manager_alive(exp)
    config = exp.config
    summary: dict[str, Any] = {
        "id": exp.id,
        "name": exp.name,
        "status": exp.status,
        "reason": exp.reason,
        "started": exp.started,
        "ended": exp.ended,
        "exec_seconds": round(exp.exec_seconds, 3),
        "trials": counts,
        "proposed": exp.next_parameter_id,
        "max_trial_num": config["max_trial_num"],
        "trial_concurrency": config["trial_concurrency"],
        "max_exec_duration": config["max_exec_duration"],
        "tuner": config["tuner"]["builtin_name"] or config["tuner"]["class_name"],
        "optimize_mode": optimize_mode(config),
        "best": best_trial(store, trials),
        "manager": {"pid": exp.manager_pid, "alive": alive},
        "waiting_for": exp.wait_reason,
        "directory": str(store.dir),
    }
    if exp.status in LIVE_EXPERIMENT and not alive:
        summary["warning"] = (
            f"the manager is not running (it was killed or crashed); "
            f"`nascli resume {exp.id}` continues the experiment"
        )
    return summary


def trial_rows(
    store: ExperimentStore,
    status: str | None = None,
    space: spaces.SearchSpace | None = None,
    *,
    after: str | None = None,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """``trial ls --json``: one dict per trial, in launch order.

    ``after`` (a trial id), ``limit`` and ``ids`` select a part of that list, read with indexed
    queries (the web UI polls with them: new trials after the last one it has, and the ones it
    saw running). Raises ``TrialNotFoundError`` when ``after`` names no trial of ``store``.
    """
    after_seq = None
    if after is not None:
        after_seq = store.trial_seq(after)
        if after_seq is None:
            raise TrialNotFoundError(f"experiment {store.id} has no trial {after!r}")
    statuses = [status] if status else None
    partial = after is not None or limit is not None or ids is not None
    trials = store.trials(statuses, after_seq=after_seq, limit=limit, ids=ids)
    metrics: dict[str, list[Any]] = {}
    for trial_id, _, kind, value, _ in store.metrics(trials=trials if partial else None):
        if kind != "FINAL":
            metrics.setdefault(trial_id, []).append(value)
    rows = []
    space = space or _space(store)
    for t in trials:
        rows.append(
            {
                "id": t.id,
                "status": t.status,
                "parameter_id": t.parameter_id,
                "attempt": t.attempt,
                "parameters": t.parameters,
                "architecture": architecture(t.parameters, space),
                "final": t.final,
                "intermediate": metrics.get(t.id, []),
                "exit_code": t.exit_code,
                "reason": t.reason,
                "gpus": t.gpus,
                "pid": t.pid,
                "started": t.started,
                "ended": t.ended,
            }
        )
    return rows


def experiment_rows(include_ended: bool = True) -> list[dict[str, Any]]:
    """``experiment list --json``: every experiment under ``$NASCLI_HOME`` (oldest first), or
    only the running ones; an experiment whose store cannot be read is skipped."""
    rows = []
    for exp_dir in list_experiment_dirs():
        try:
            store = ExperimentStore(exp_dir)
        except ExperimentNotFoundError:  # deleted between the scan and the open
            continue
        try:
            exp = store.experiment()
            active = exp.status in LIVE_EXPERIMENT
            if not include_ended and not active:
                continue
            rows.append(
                {
                    "id": exp.id,
                    "name": exp.name,
                    "status": exp.status,
                    "manager_alive": manager_alive(exp),
                    "started": exp.started,
                    "ended": exp.ended,
                    "trials": store.status_counts(),
                }
            )
        except (sqlite3.DatabaseError, TypeError):  # being created (no row yet) or damaged
            continue
        finally:
            store.close()
    return rows


def export_json(store: ExperimentStore) -> str:
    """NNI's export shape (``[{"parameter", "value", "id"}]``) plus status and timing."""
    data = [
        {
            "id": row["id"],
            "parameter_id": row["parameter_id"],
            "status": row["status"],
            "parameter": row["parameters"],
            "architecture": row["architecture"],
            "value": row["final"],
            "intermediate": row["intermediate"],
            "started": row["started"],
            "ended": row["ended"],
        }
        for row in trial_rows(store)
    ]
    return json.dumps(data, indent=2)


def export_csv(store: ExperimentStore) -> str:
    """One row per trial; one column per search-space key holding the chosen candidate(s) (not
    NNI's ``{_value,_idx}`` cells), the final metric (``default`` and any other entries)."""
    space = _space(store)
    rows = trial_rows(store, space=space)
    keys = sorted(space)
    extra: list[str] = []
    for row in rows:
        if isinstance(row["final"], dict):
            extra += [k for k in row["final"] if k != "default" and k not in extra]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "status", "parameter_id", *keys, "final", *extra, "duration_s"])
    for row in rows:
        arch = row["architecture"]
        final = row["final"]
        cells = [_cell(arch.get(k)) for k in keys]
        duration = (
            round(row["ended"] - row["started"], 3) if row["ended"] and row["started"] else ""
        )
        writer.writerow(
            [
                row["id"],
                row["status"],
                row["parameter_id"],
                *cells,
                "" if final is None else metric_scalar(final),
                *[final.get(k, "") if isinstance(final, dict) else "" for k in extra],
                duration,
            ]
        )
    return out.getvalue()


def _space(store: ExperimentStore) -> spaces.SearchSpace:
    return spaces.load_search_space(store.search_space_file)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(map(str, value))
    return "" if value is None else str(value)
