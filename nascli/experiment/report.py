"""What ``status``, ``trial ls``, ``experiment list``, ``export`` and ``top`` show, as plain data.

Pure readers of the store: they never change an experiment (but for adding a missing read index,
see ``ExperimentStore.ensure_read_indexes``), so they are safe while its manager runs and on a
copied experiment directory. The CLI renders these dicts as tables or JSON; the web UI's API
serves the same functions.

Cost: ``experiment_summary`` and ``best_trial`` read a few rows through indexes, whatever the
number of trials; ``iter_trial_rows`` reads the trials it yields, as they are consumed, and the
writers (``write_json_array``, ``export_json``, ``export_csv``) write each row as it is read, so
memory stays flat in the number of trials.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nascli import space as spaces
from nascli.channel import metric_scalar
from nascli.errors import UsageError
from nascli.experiment.architectures import Architectures, architecture
from nascli.experiment.jsonstream import write_json_array
from nascli.experiment.processes import manager_alive
from nascli.experiment.store import (
    TRIAL_SORTS,
    ExperimentNotFoundError,
    ExperimentStore,
    TrialQuery,
    scan_experiments,
)
from nascli.experiment.trials import LIVE_EXPERIMENT

__all__ = [
    "experiment_summary",
    "trial_rows",
    "experiment_rows",
    "TrialNotFoundError",
    "iter_trial_rows",
    "trials_page",
    "trial_table_widths",
    "TrialsPage",
    "TRIAL_SORTS",
    "best_trial",
    "write_json_array",
    "export_json",
    "export_csv",
    "optimize_mode",
]


class TrialNotFoundError(UsageError):
    """An experiment has no trial with the id given."""


def optimize_mode(config: dict[str, Any]) -> str:
    return str(config.get("tuner", {}).get("class_args", {}).get("optimize_mode", "maximize"))


def best_trial(
    store: ExperimentStore, space: spaces.SearchSpace | None = None
) -> dict[str, Any] | None:
    """The succeeded trial with the best final metric (by the tuner's ``optimize_mode``; the
    earliest launched of equals), or None. Indexed: costs the same at any number of trials."""
    exp = store.experiment()
    best = store.best_trial(maximize=optimize_mode(exp.config) != "minimize")
    if best is None:
        return None
    return {
        "id": best.id,
        "parameter_id": best.parameter_id,
        "parameters": best.parameters,
        "architecture": architecture(best.parameters, space or _space(store)),
        "metric": best.final,
    }


def experiment_summary(
    store: ExperimentStore, space: spaces.SearchSpace | None = None
) -> dict[str, Any]:
    """``status --json``: id, status, trial counts by status, best trial, budget, manager.
    ``space``: the search space, if the caller has it loaded (the live views)."""
    exp = store.experiment()
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
        "assessor": _assessor(store, config),
        "best": best_trial(store, space),
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


def _assessor(store: ExperimentStore, config: dict[str, Any]) -> dict[str, Any] | None:
    """The assessor's name and its last error (None: no early stopping)."""
    section = config.get("assessor")
    if not section:
        return None
    name = section["builtin_name"] or f"{section['class_name']} ({section['class_file_name']})"
    return {"name": name, "error": store.assessor_error()}


def _row(t: dict[str, Any], names: Architectures) -> dict[str, Any]:
    return {
        "id": t["id"],
        "status": t["status"],
        "parameter_id": t["parameter_id"],
        "attempt": t["attempt"],
        "parameters": t["parameters"],
        "architecture": names(t["parameters"]),
        "final": t["final"],
        "intermediate": t["intermediate"],
        "exit_code": t["exit_code"],
        "reason": t["reason"],
        "gpus": t["gpus"],
        "pid": t["pid"],
        "node": t.get("node"),
        "started": t["started"],
        "ended": t["ended"],
    }


def iter_trial_rows(
    store: ExperimentStore,
    statuses: Sequence[str] | None = None,
    sort: str = "launch",
    limit: int | None = None,
    after: str | None = None,
    space: spaces.SearchSpace | None = None,
    *,
    ids: Sequence[str] | None = None,
    newer_than: str | None = None,
) -> Iterator[dict[str, Any]]:
    """``trial ls --json`` rows (id, status, parameters, architecture, final and intermediate
    results, exit code, reason, GPUs, pid, times), read as they are consumed.

    Args:
        statuses: only trials with one of these statuses (all when None or empty).
        sort: one of ``TRIAL_SORTS``: ``launch`` order, ``newest`` first, or ``best`` final
            result first by the experiment's ``optimize_mode`` (trials without one after,
            newest first).
        limit: at most this many rows.
        after: the id of the last row of the previous page (keyset paging).
        space: the search space, if the caller has it loaded.
        ids: only the trials with one of these ids (none when empty).
        newer_than: only the trials launched after the trial with this id.

    Raises:
        UsageError: an unknown ``sort``.
    """
    names = Architectures(space or _space(store))
    # Only the best-first order needs the direction (the experiment row: not read for others).
    maximize = sort != "best" or optimize_mode(store.experiment().config) != "minimize"
    trials = store.trial_dicts(
        TrialQuery(sort, statuses, limit, after, maximize, ids=ids, newer_than=newer_than)
    )
    for trial in trials:
        yield _row(trial, names)


def trial_rows(
    store: ExperimentStore,
    status: str | None = None,
    space: spaces.SearchSpace | None = None,
    *,
    after: str | None = None,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """``trial ls --json``: one dict per trial, in launch order (``iter_trial_rows``, as a list).

    ``after`` (a trial id), ``limit`` and ``ids`` select a part of that list through the
    store's indexed page query (the web UI polls with them: new trials after the last one it
    has, and the ones it saw running). Raises ``TrialNotFoundError`` when ``after`` names no
    trial of ``store``.
    """
    _check_after(store, after)
    statuses = [status] if status else None
    return list(iter_trial_rows(store, statuses, "launch", limit, after, space, ids=ids))


def _check_after(store: ExperimentStore, after: str | None) -> None:
    if after is not None and store.trial(after) is None:
        raise TrialNotFoundError(f"experiment {store.id} has no trial {after!r}")


def experiment_rows(
    include_ended: bool = True, broken: list[tuple[Path, str]] | None = None
) -> list[dict[str, Any]]:
    """``experiment list --json``: every experiment under ``$NASCLI_HOME`` (oldest first), or
    only the running ones; an experiment whose store cannot be read is skipped (and added to
    ``broken``, with why, when given: ``store.scan_experiments``)."""
    rows = []
    dirs, unreadable = scan_experiments()
    if broken is not None:
        broken.extend(unreadable)
    for exp_dir in dirs:
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


@dataclass(frozen=True)
class TrialsPage:
    """One page of trial rows: ``next_after`` is what to pass as ``after`` for the next page
    (None on the last one); ``total`` counts the trials matching the status filter."""

    rows: list[dict[str, Any]]
    next_after: str | None
    total: int


def trials_page(
    store: ExperimentStore,
    sort: str = "launch",
    statuses: Sequence[str] | None = None,
    limit: int = 50,
    after: str | None = None,
) -> TrialsPage:
    """A page of ``limit`` rows (see ``iter_trial_rows``) for views that page (the web UI)."""
    rows = list(iter_trial_rows(store, statuses, sort, limit + 1, after))
    counts = store.status_counts()
    total = sum(n for s, n in counts.items() if not statuses or s in statuses)
    more = len(rows) > limit
    rows = rows[:limit]
    return TrialsPage(rows, rows[-1]["id"] if more and rows else None, total)


def trial_table_widths(
    store: ExperimentStore, space: spaces.SearchSpace | None = None
) -> dict[str, int]:
    """Column widths that fit every trial of the table ``trial ls --all`` streams, without
    reading the trials one by one: the longest id, GPU list and note (from one aggregate
    query), the longest architecture the search space allows, and fixed widths for the
    status, the metric and the duration."""
    space = space or _space(store)
    longest_id, longest_gpus, longest_reason, retried = store.text_lengths()
    parts = []
    for key, spec in space.items():
        lengths = sorted((len(str(name)) for name in spec.names), reverse=True)
        if isinstance(spec, spaces.InputChoiceSpec):  # key=[a,b]
            chosen = lengths[: spec.n_chosen or len(lengths)]
            parts.append(len(key) + 3 + sum(chosen) + max(0, len(chosen) - 1))
        else:
            parts.append(len(key) + 1 + (lengths[0] if lengths else 0))
    arch = sum(parts) + max(0, len(parts) - 1)
    note = longest_reason + (len("attempt 99; ") if retried else 0)
    return {
        "trial": longest_id,
        "status": len("USER_CANCELED"),
        "final": 10,
        "architecture": arch,
        "gpus": max(1, longest_gpus),
        "duration": len("99h59m59s"),
        "note": note,
    }


def export_json(store: ExperimentStore, out: TextIO) -> int:
    """Write NNI's export shape (``[{"parameter", "value", "id"}]``) plus status (with
    ``reason``: why a trial did not succeed, e.g. its early stop) and timing, trial by trial in
    launch order. Returns the number of trials written."""
    from nascli.experiment.trialjson import write_export_json

    # The rows {id, parameter_id, status, reason, parameter, architecture, value, intermediate,
    # started, ended}, written from the stored texts (byte for byte their json.dumps(indent=2)).
    return write_export_json(store, out)


def export_csv(store: ExperimentStore, out: TextIO) -> int:
    """Write one row per trial in launch order; one column per search-space key holding the
    chosen candidate(s) (not NNI's ``{_value,_idx}`` cells), the final metric (``default`` and
    any other entries, as columns in the order they first appear), the duration and the reason
    a trial did not succeed (e.g. its early stop). Returns the trial count."""
    space = _space(store)
    keys = sorted(space)
    extra = store.final_keys()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "status", "parameter_id", *keys, "final", *extra, "duration_s", "reason"]
    )
    count = 0
    names = Architectures(space)
    for t in store.trial_dicts(intermediate=False):
        arch = names(t["parameters"])
        final = t["final"]
        started, ended = t["started"], t["ended"]
        writer.writerow(
            [
                t["id"],
                t["status"],
                t["parameter_id"],
                *[_cell(arch.get(k)) for k in keys],
                "" if final is None else metric_scalar(final),
                *[final.get(k, "") if isinstance(final, dict) else "" for k in extra],
                round(ended - started, 3) if ended and started else "",
                t["reason"] or "",
            ]
        )
        count += 1
    return count


def _space(store: ExperimentStore) -> spaces.SearchSpace:
    return spaces.load_search_space(store.search_space_file)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(map(str, value))
    return "" if value is None else str(value)
