"""The one-shot run log (``oneshot.jsonl``) that ``log_dir=`` / NNI's ``enable_visualization()``
turn on: its fixed format, for every trainer, as the web UI reads it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nascli.nas import apply_fixed_architecture
from nascli.nas.oneshot import (
    DartsTrainer,
    EnasTrainer,
    ProxylessTrainer,
    RandomTrainer,
    SPOSTrainer,
)
from nascli.nas.oneshot.runlog import LOG_FILE, RunLog
from tests.oneshot_models import TinyNet, accuracy, reward, tiny_data

TRAINERS = {
    "DartsTrainer": (DartsTrainer, {}),
    "EnasTrainer": (EnasTrainer, {"ctrl_steps_aggregate": 2}),
    "ProxylessTrainer": (ProxylessTrainer, {}),
    "SPOSTrainer": (SPOSTrainer, {"population_size": 3, "generations": 1, "num_select": 2}),
    "RandomTrainer": (RandomTrainer, {"num_samples": 3}),
}
N_CHOSEN = {"ProxylessTrainer": 1}


def build(name: str, epochs: int = 2, **kwargs):
    cls, extra = TRAINERS[name]
    torch.manual_seed(0)
    model = TinyNet(n_chosen=N_CHOSEN.get(name, 2))
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    head = (model, nn.CrossEntropyLoss(), accuracy)
    if cls is EnasTrainer:
        head = (*head, reward)
    return cls(*head, optimizer, epochs, tiny_data(32), batch_size=16, **{**extra, **kwargs})


def read(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / LOG_FILE).read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_writes_start_epochs_end(name: str, tmp_path: Path) -> None:
    trainer = build(name, log_dir=tmp_path / "run")
    assert trainer.log_dir == tmp_path / "run"
    trainer.fit()
    records = read(tmp_path / "run")
    assert [r["kind"] for r in records] == ["start", "epoch", "epoch", "end"]
    start, first, second, end = records
    assert start["trainer"] == name and start["num_epochs"] == 2
    assert start["choices"]["op1"] == {"type": "layer_choice",
                                       "candidates": ["conv3", "conv5", "pool"]}  # fmt: skip
    assert start["choices"]["op2"] == {"type": "layer_choice", "candidates": ["0", "1"]}
    # InputChoice(n_candidates=3) has three "" labels: the log names them by index
    assert start["choices"]["cell_in"] == {"type": "input_choice", "candidates": ["0", "1", "2"],
                                           "n_chosen": N_CHOSEN.get(name, 2)}  # fmt: skip
    times = [r["time"] for r in records]
    assert times == sorted(times) and all(isinstance(t, float) for t in times)
    assert [first["epoch"], second["epoch"]] == [0, 1]
    assert set(first["metrics"]) >= {"train/loss", "valid/loss", "valid/accuracy"}
    assert first["metrics"] == pytest.approx(trainer.history[0])
    for rec in (first, second):
        assert set(rec["weights"]) == {"op1", "op2", "cell_in"}
        for key, probs in rec["weights"].items():
            assert len(probs) == len(start["choices"][key]["candidates"])
            assert all(0.0 <= p <= 1.0 for p in probs)
        assert sum(rec["weights"]["op1"]) == pytest.approx(1.0)
    # the end record is the trainer's export, and it applies to a fresh model
    assert end["export"] == trainer.export()
    apply_fixed_architecture(TinyNet(n_chosen=N_CHOSEN.get(name, 2)), end["export"])


def test_darts_weights_are_softmax_of_alpha_and_epoch_exports_follow(tmp_path: Path) -> None:
    trainer = build("DartsTrainer", epochs=1, log_dir=tmp_path)
    trainer.fit()
    epoch = read(tmp_path)[1]
    for key, alpha in trainer.alpha.items():
        assert epoch["weights"][key] == pytest.approx(torch.softmax(alpha, -1).tolist())
    assert epoch["export"] == trainer.export()


def test_enas_weights_are_the_controllers_sampling_probabilities(tmp_path: Path) -> None:
    # temperature and tanh_constant bound the logits (ENAS: p(op1) < 0.99 here): both off
    trainer = build("EnasTrainer", epochs=1, log_dir=tmp_path,
                    temperature=None, tanh_constant=None)
    with torch.no_grad():  # make the controller all but certain of op1 = conv5
        head = trainer.controller.heads[trainer.controller.steps.index(("op1", 3))]
        head.bias.copy_(torch.tensor([-20.0, 20.0, -20.0]))
    state = torch.get_rng_state()
    weights = trainer.run_log_weights()
    assert torch.equal(state, torch.get_rng_state())  # estimating them draws nothing global
    assert weights["op1"] == pytest.approx([0.0, 1.0, 0.0])
    assert sum(weights["cell_in"]) == pytest.approx(2.0)  # two of three inputs are taken


def test_single_path_weights_are_uniform_and_epoch_export_waits_for_the_search(
    tmp_path: Path,
) -> None:
    trainer = build("SPOSTrainer", epochs=1, log_dir=tmp_path)
    trainer.fit()
    _, epoch, end = read(tmp_path)
    assert epoch["weights"]["op1"] == pytest.approx([1 / 3] * 3)
    assert epoch["weights"]["cell_in"] == pytest.approx([2 / 3] * 3)
    assert epoch["export"] is None  # the search runs after the last epoch
    assert end["export"] == trainer.export()


def test_enable_visualization_uses_a_fresh_dir_under_nascli_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    a = build("DartsTrainer", epochs=1)
    assert a.log_dir is None
    assert a.enable_visualization() is None
    b = build("DartsTrainer", epochs=1)
    b.enable_visualization()
    assert a.log_dir != b.log_dir
    assert a.log_dir.parent == tmp_path / "oneshot" and "darts" in a.log_dir.name
    a.fit()
    assert [r["kind"] for r in read(a.log_dir)] == ["start", "epoch", "end"]
    assert not (b.log_dir / LOG_FILE).exists()  # nothing written before fit()


def test_no_log_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    build("DartsTrainer", epochs=1).fit()
    assert list(tmp_path.iterdir()) == []  # NNI left logs/<ts>/ in the cwd of every run


def test_records_are_complete_lines_and_non_finite_floats_are_null(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    log.epoch(0, {"loss": float("nan"), "acc": float("inf"), "ok": 0.5},
              {"k": [float("-inf"), 1.0]}, {"k": "a"})  # fmt: skip
    text = (tmp_path / LOG_FILE).read_text()
    assert text.endswith("\n") and "NaN" not in text and "Infinity" not in text
    rec = json.loads(text)
    assert rec["metrics"] == {"loss": None, "acc": None, "ok": 0.5}
    assert rec["weights"] == {"k": [None, 1.0]}


def test_a_resumed_run_appends_to_the_same_log(tmp_path: Path) -> None:
    from nascli.nas.oneshot import ModelCheckpoint

    first = build("DartsTrainer", epochs=1, log_dir=tmp_path / "log",
                  callbacks=[ModelCheckpoint(tmp_path / "ckpt")])  # fmt: skip
    first.fit()
    resumed = build("DartsTrainer", epochs=2, log_dir=tmp_path / "log")
    resumed.load_checkpoint(tmp_path / "ckpt" / "last.pt")
    resumed.fit()
    records = read(tmp_path / "log")
    assert [r["kind"] for r in records] == ["start", "epoch", "end", "start", "epoch", "end"]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
    assert all(math.isfinite(v) for v in records[4]["metrics"].values())


def _v19_trainers(name: str, log_dir: Path):
    from torch.utils.data import DataLoader

    from nascli.nas.oneshot.darts import DartsMutator
    from nascli.nas.oneshot.enas import EnasMutator
    from nascli.nas.oneshot.proxyless import ProxylessNasTrainer
    from nascli.nas.oneshot.spos import SPOSSupernetTrainer

    torch.manual_seed(0)
    model = TinyNet(n_chosen=1)
    opt = torch.optim.SGD(model.parameters(), 0.05)
    train = DataLoader(tiny_data(32), batch_size=16)
    valid = DataLoader(tiny_data(16, seed=1), batch_size=16)
    loss = nn.CrossEntropyLoss()
    if name == "DartsTrainer+DartsMutator":
        return DartsTrainer(model, loss, accuracy, opt, 1, tiny_data(32),
                            mutator=DartsMutator(model), log_dir=log_dir)  # fmt: skip
    if name == "EnasTrainer+EnasMutator":
        return EnasTrainer(model, loss, accuracy, reward, opt, 1, tiny_data(32),
                           mutator=EnasMutator(model), log_dir=log_dir)  # fmt: skip
    if name == "ProxylessNasTrainer":
        return ProxylessNasTrainer(model, opt, "cpu", train, valid, n_epochs=1, warmup=False,
                                   log_dir=log_dir)  # fmt: skip
    return SPOSSupernetTrainer(model, loss, accuracy, opt, 1, train, valid, log_dir=log_dir,
                               population_size=2, generations=0)  # fmt: skip


@pytest.mark.parametrize("name", ["DartsTrainer+DartsMutator", "EnasTrainer+EnasMutator",
                                  "ProxylessNasTrainer", "SPOSSupernetTrainer"])  # fmt: skip
def test_v19_trainers_and_custom_mutators_write_the_log(name: str, tmp_path: Path) -> None:
    trainer = _v19_trainers(name, tmp_path)
    trainer.fit()
    start, epoch, end = read(tmp_path)
    assert start["trainer"] == name.split("+")[0]
    assert set(epoch["weights"]) == {"op1", "op2", "cell_in"}
    assert sum(epoch["weights"]["op1"]) == pytest.approx(1.0, abs=1e-6)
    if name == "DartsTrainer+DartsMutator":
        for key, probs in trainer.mutator.probabilities().items():
            assert epoch["weights"][key] == pytest.approx(probs)
    if name == "SPOSSupernetTrainer":  # fit() trains only: no architecture chosen, no search run
        assert end["export"] is None and trainer.best == []
    else:
        assert end["export"] == trainer.export()
