"""The JSON listings written from the stored texts (``trial ls --json``, ``experiment export
--type json``) are byte for byte ``json.dumps(rows, indent=2)`` of the decoded rows, for the
tuners' parameters and for everything else a store can hold: parameters of another layout or
invalid for the space, candidate names with braces, quotes and commas, finals and intermediate
values of every JSON shape, GPU lists, paged and filtered listings."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from nascli.experiment import report
from nascli.experiment.store import ExperimentStore, create_experiment
from nascli.experiment.trialjson import ParameterPieces, write_export_json, write_trials_json
from nascli.experiment.trials import Ledger, TrialStatus
from tests.stores import config_dict

NAMES = ["plain", "br}ace", 'quo"te', "com, ma", '": {', "ünï", "x" * 40]
SPACE: dict[str, Any] = {
    "op": {"_type": "layer_choice", "_value": NAMES},
    'k"ey, {': {"_type": "layer_choice", "_value": ["a", "b"]},
    "in": {"_type": "input_choice", "_value": {"candidates": NAMES[:4], "n_chosen": None}},
}


def tuner(op: int, k: int, chosen: list[int]) -> dict[str, Any]:
    return {
        'k"ey, {': {"_value": ["a", "b"][k], "_idx": k},
        "in": {"_value": [NAMES[i] for i in chosen], "_idx": chosen},
        "op": {"_value": NAMES[op], "_idx": op},
    }


PARAMETERS: list[Any] = [
    *(tuner(i % len(NAMES), i % 2, sorted({i % 4, (i * 3) % 4})) for i in range(12)),
    {"op": {"_value": "plain", "_idx": 0}},  # keys missing
    {**tuner(1, 0, [1]), "extra": {"_value": 1, "_idx": 0}},  # a key the space lacks
    {**tuner(2, 1, [0]), "op": {"_value": "plain", "_idx": 3}},  # _value and _idx disagree
    {**tuner(0, 0, []), "op": {"_idx": 0, "_value": "plain"}},  # another key order
    {**tuner(0, 0, [2]), "op": {"_value": {"nested": "}"}, "_idx": 0}},
    {**tuner(0, 1, [3]), "op": {"_value": "plain", "_idx": True}},  # true is not 1
    {"in": tuner(0, 0, [0])["in"], "op": {"_value": "plain", "_idx": 0},
     'k"ey, {': {"_value": "a", "_idx": 0}},  # fmt: skip
]
FINALS: list[Any] = [
    0.5, {"default": 0.25, "loss": 0.75}, {"default": 1, "extra": "}{"}, -3, 1e-07,
    {"default": 0.5, "curve": [1, 2, {"x": None}]}, {"default": 2.0}, 10**20,
]  # fmt: skip
INTERMEDIATE: list[list[Any]] = [
    [], [0.1, 0.2], [1, 2.5, -0.0], [{"default": 0.1, "loss": 0.9}], ['a, "b"', 1], [None, True],
]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> ExperimentStore:
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    config, text = config_dict(len(PARAMETERS))
    store = create_experiment(config, text, SPACE, "odd", "test")
    ledger = Ledger(store)
    with store.transaction():
        for seq, parameters in enumerate(PARAMETERS):
            trial_id = f"t{seq}"
            store.add_trial(trial_id, seq, seq, parameters)
            if seq % 7 == 6:
                continue  # left WAITING
            gpus = [seq % 2, 3] if seq % 3 == 0 else None
            ledger.launch(trial_id, 100 + seq, None, 1000.0 + seq, gpus)
            for step, value in enumerate(INTERMEDIATE[seq % len(INTERMEDIATE)]):
                store.add_metric(trial_id, step, "PERIODICAL", value, 1000.5 + seq)
            if seq % 5 == 4:
                ledger.finish(trial_id, TrialStatus.FAILED, 'exit code 1: "boom"', 1001.0 + seq, 1)
            elif seq % 7 != 5:
                final = FINALS[seq % len(FINALS)]
                store.add_metric(trial_id, 99, "FINAL", final, 1001.0 + seq)
                ledger.finish(trial_id, TrialStatus.SUCCEEDED, None, 1001.0 + seq, 0, final=final)
    yield store
    store.close()


def old_export_rows(store: ExperimentStore) -> list[dict[str, Any]]:
    """``export_json``'s rows as they were built before the stored-text writer."""
    return [
        {"id": r["id"], "parameter_id": r["parameter_id"], "status": r["status"],
         "reason": r["reason"], "parameter": r["parameters"], "architecture": r["architecture"],
         "value": r["final"], "intermediate": r["intermediate"], "started": r["started"],
         "ended": r["ended"]}
        for r in report.iter_trial_rows(store)
    ]  # fmt: skip


def test_trial_listing_is_json_dumps_of_the_decoded_rows(store: ExperimentStore) -> None:
    cases: list[tuple[Any, str, Any]] = [
        (None, "launch", None), (None, "newest", 5), (None, "best", None),
        (["SUCCEEDED"], "best", 3), (["FAILED", "WAITING"], "launch", None),
        (["EARLY_STOPPED"], "launch", None),
    ]  # fmt: skip
    for statuses, sort, limit in cases:
        out = io.StringIO()
        count = write_trials_json(store, out, statuses, sort, limit)
        rows = list(report.iter_trial_rows(store, statuses, sort, limit))
        assert out.getvalue() == json.dumps(rows, indent=2), (statuses, sort, limit)
        assert count == len(rows)


def test_export_is_json_dumps_of_the_decoded_rows(store: ExperimentStore) -> None:
    out = io.StringIO()
    assert report.export_json(store, out) == len(PARAMETERS)
    assert out.getvalue() == json.dumps(old_export_rows(store), indent=2)
    again = io.StringIO()
    write_export_json(store, again)
    assert again.getvalue() == out.getvalue()


def test_rows_are_written_as_they_are_read(store: ExperimentStore, monkeypatch) -> None:
    monkeypatch.setattr("nascli.experiment.trialjson.CHUNK", 2)
    writes: list[str] = []

    class Sink(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return super().write(text)

    sink = Sink()
    write_trials_json(store, sink)
    assert len(writes) > len(PARAMETERS) // 2  # a few rows a write, not one write at the end
    assert json.loads(sink.getvalue())[0]["id"] == "t0"


def test_parameter_pieces_are_remembered_once_per_entry_text() -> None:
    from nascli import space as spaces

    pieces = ParameterPieces(spaces.parse_search_space(SPACE))
    texts = [json.dumps(parameters) for parameters in PARAMETERS[:12]]
    first = [pieces(text) for text in texts]
    learned = dict(pieces._memo)
    assert [pieces(text) for text in texts] == first
    assert pieces._memo == learned  # nothing decoded again
    # Each row's entries up to the first not cut where it ends ("br}ace": that row goes the
    # general way), each remembered once.
    expected = set()
    for parameters in PARAMETERS[:12]:
        for key, entry in parameters.items():
            member = f"{json.dumps(key)}: {json.dumps(entry)}"
            if member.index("}") != len(member) - 1:
                break
            expected.add(member)
    assert set(learned) == expected and len(expected) > 5
