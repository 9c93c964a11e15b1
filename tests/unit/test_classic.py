"""get_and_apply_next_architecture in its three modes, and the reporting API."""

from __future__ import annotations

import json
import logging

import pytest
import torch

import nascli
from nascli import channel
from nascli.errors import MetricError, ParameterError
from nascli.nas import get_and_apply_next_architecture
from tests.models import NaiveSpace, forward_backward


def test_standalone_uses_the_first_candidates_and_says_so(caplog):
    model = NaiveSpace()
    with caplog.at_level(logging.WARNING, logger="nascli"):
        mutator = get_and_apply_next_architecture(model)
    assert mutator.export() == {"InputChoice3": 0, "LayerChoice1": 0, "LayerChoice2": "conv3x3"}
    assert len([r for r in caplog.records if "standalone mode" in r.message]) == 1
    assert model.conv1.kernel_size == (3, 3)
    forward_backward(model)


def test_gen_search_space_writes_the_json_and_exits_zero(monkeypatch, tmp_path):
    out = tmp_path / "ss.json"
    monkeypatch.setenv("NASCLI_GEN_SEARCH_SPACE", str(out))
    with pytest.raises(SystemExit) as info:
        get_and_apply_next_architecture(NaiveSpace())
    assert info.value.code == 0
    assert json.loads(out.read_text()) == {
        "InputChoice3": {"_type": "input_choice", "_value": {"candidates": [""], "n_chosen": None}},
        "LayerChoice1": {"_type": "layer_choice", "_value": ["0", "1"]},
        "LayerChoice2": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5"]},
    }


def _trial_env(monkeypatch, tmp_path, parameters):
    monkeypatch.setenv("NASCLI_PLATFORM", "local")
    monkeypatch.setenv("NASCLI_TRIAL_DIR", str(tmp_path))
    monkeypatch.setenv("NASCLI_TRIAL_ID", "abc12")
    monkeypatch.setenv("NASCLI_EXP_ID", "exp1")
    monkeypatch.setenv("NASCLI_TRIAL_SEQ", "4")
    if parameters is not None:
        channel.write_parameters(tmp_path, 7, parameters)


def test_trial_mode_applies_parameter_json(monkeypatch, tmp_path):
    _trial_env(
        monkeypatch,
        tmp_path,
        {
            "LayerChoice1": {"_value": "1", "_idx": 1},
            "LayerChoice2": {"_value": "conv5x5", "_idx": 1},
            "InputChoice3": {"_value": [], "_idx": []},
        },
    )
    model = NaiveSpace()
    get_and_apply_next_architecture(model)
    assert model.conv1.kernel_size == (5, 5) and model.skipconnect.chosen == []
    forward_backward(model)
    assert (nascli.get_trial_id(), nascli.get_experiment_id(), nascli.get_sequence_id()) == (
        "abc12",
        "exp1",
        4,
    )


def test_trial_mode_rejects_parameters_that_do_not_fit(monkeypatch, tmp_path):
    _trial_env(monkeypatch, tmp_path, {"first_conv": {"_value": "x", "_idx": 0}})
    with pytest.raises(ParameterError) as info:
        get_and_apply_next_architecture(NaiveSpace())
    message = str(info.value)
    assert "parameter.json" in message and "'first_conv'" in message and "'LayerChoice1'" in message


def test_trial_mode_without_parameter_file(monkeypatch, tmp_path):
    _trial_env(monkeypatch, tmp_path, None)
    with pytest.raises(ParameterError, match="parameter.json: cannot read"):
        get_and_apply_next_architecture(NaiveSpace())


def test_prune_false_keeps_every_candidate(monkeypatch):
    model = NaiveSpace()
    get_and_apply_next_architecture(model, prune=False)
    assert "conv1.1.weight" in model.state_dict()
    forward_backward(model)


def test_reports_in_a_trial_append_fsynced_json_lines(monkeypatch, tmp_path):
    _trial_env(monkeypatch, tmp_path, None)
    nascli.report_intermediate_result(0.5)
    nascli.report_intermediate_result(torch.tensor(0.625))
    nascli.report_final_result({"default": 0.75, "loss": 0.1, "note": "ok"})
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["type"], r["sequence"], r["value"]) for r in lines] == [
        ("PERIODICAL", 0, 0.5),
        ("PERIODICAL", 1, 0.625),
        ("FINAL", 2, {"default": 0.75, "loss": 0.1, "note": "ok"}),
    ]
    records, offset, bad = channel.read_metrics(tmp_path)
    assert [r.scalar for r in records] == [0.5, 0.625, 0.75] and bad == 0
    assert offset == (tmp_path / "metrics.jsonl").stat().st_size


def test_reports_standalone_are_printed(capsys):
    nascli.report_intermediate_result(0.25)
    nascli.report_final_result(0.5)
    out = capsys.readouterr().out
    assert "intermediate result: 0.25" in out and "final result: 0.5" in out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
        ("0.9", "must be a finite number"),
        (None, "must be a finite number"),
        (True, "must be a finite number"),
        ({"acc": 0.9}, "needs a numeric 'default'"),
        ({"default": "high"}, "default must be a finite number"),
        ({"default": 0.5, "loss": float("nan")}, "metric entry 'loss' must be a finite number"),
        ({"default": 0.5, "obj": object()}, "must be JSON-serialisable"),
    ],
)
def test_bad_metrics_are_refused(monkeypatch, tmp_path, value, expected):
    _trial_env(monkeypatch, tmp_path, None)
    with pytest.raises(MetricError, match=expected):
        nascli.report_final_result(value)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_reader_skips_torn_and_garbage_lines(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"type": "FINAL", "sequence": 0, "value": 0.5, "time": 1}\n'
        "garbage line\n"
        '{"type": "FINAL", "sequence": 1, "value": "x"}\n'
        '{"type": "FINAL", "sequence": 2, "val'
    )
    records, offset, bad = channel.read_metrics(tmp_path)
    assert [r.value for r in records] == [0.5] and bad == 2
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('ue": 0.7}\n')
    records, _, bad = channel.read_metrics(tmp_path, offset)
    assert [r.value for r in records] == [0.7] and bad == 0
