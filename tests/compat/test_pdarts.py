"""P-DARTS as NNI v1.9 code calls it (``model_creator``, stages that grow the network and drop
candidates, callbacks per stage), its export over the original candidates, and resume: a run
killed in the middle of a stage, loaded from its checkpoint, ends as an uninterrupted run."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from nascli.nas import LayerChoice, apply_fixed_architecture
from nascli.nas.oneshot import Callback
from nascli.nas.oneshot.darts import DartsMutator
from nascli.nas.oneshot.pdarts import PdartsTrainer
from tests.oneshot_models import accuracy, tiny_data

CANDIDATES = ["conv3", "conv5", "pool", "avg", "skip"]


class Cells(nn.Module):
    """``layers`` cells; every cell's op shares the key "op" (auto key for the stem choice)."""

    def __init__(self, layers: int, c: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.first = LayerChoice([nn.Conv2d(c, c, 1), nn.Identity()])  # auto key, stable
        self.cells = nn.ModuleList(
            LayerChoice(
                OrderedDict(
                    conv3=nn.Conv2d(c, c, 3, padding=1),
                    conv5=nn.Conv2d(c, c, 5, padding=2),
                    pool=nn.MaxPool2d(3, 1, 1),
                    avg=nn.AvgPool2d(3, 1, 1),
                    skip=nn.Identity(),
                ),
                key="op",
            )  # fmt: skip
            for _ in range(layers)
        )
        self.head = nn.Linear(c, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.stem(x))
        for cell in self.cells:
            x = torch.relu(cell(x))
        return self.head(x.mean((2, 3)))


CRASH = {"at": None, "steps": 0}


class CrashingStepLR(torch.optim.lr_scheduler.StepLR):
    def step(self, *args, **kwargs):
        CRASH["steps"] += 1
        if CRASH["at"] is not None and CRASH["steps"] == CRASH["at"]:
            raise KeyboardInterrupt
        super().step(*args, **kwargs)


def creator(built: list[int] | None = None):
    def make(layers: int):
        if built is not None:
            built.append(layers)
        model = Cells(layers)
        optim = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
        return model, nn.CrossEntropyLoss(), optim, CrashingStepLR(optim, 1, 0.5)

    return make


class Stages(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.seen.append(("begin", epoch))

    def on_epoch_end(self, epoch: int) -> None:
        self.seen.append(("end", epoch))
        assert self.trainer.export()


def pdarts(**kwargs) -> PdartsTrainer:
    torch.manual_seed(0)
    args = dict(pdarts_num_layers=[0, 1], pdarts_num_to_drop=[2, 1], batch_size=8)
    args.update(kwargs)
    return PdartsTrainer(args.pop("model_creator", creator()), 1, accuracy, args.pop("epochs", 1),
                         tiny_data(32), tiny_data(16, seed=1), **args)  # fmt: skip


def test_stages_grow_the_network_drop_candidates_and_call_back_per_stage() -> None:
    built: list[int] = []
    stages = Stages()
    trainer = pdarts(model_creator=creator(built), callbacks=[stages])
    trainer.fit()
    assert built == [1, 2]  # init_layers + pdarts_num_layers[stage]
    assert stages.seen == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]
    assert sum(trainer.switches["op"]) == 5 - 2 - 1
    assert sum(trainer.switches["LayerChoice1"]) == 1  # two candidates: one always stays
    # the last stage trained only what was left
    assert len(trainer.model.cells[0]) == 5 - 2
    arch = trainer.export()
    assert arch["op"] in [n for n, on in zip(CANDIDATES, trainer.switches["op"], strict=True)
                          if on]  # fmt: skip
    assert len(trainer.history) == 2 and trainer.history[1]["stage"] == 1.0
    final = Cells(3)
    apply_fixed_architecture(final, arch)
    final(torch.randn(2, 1, 8, 8)).sum().backward()


def test_export_names_original_candidates_when_they_are_indices() -> None:
    trainer = pdarts(pdarts_num_to_drop=[1, 0])
    trainer.fit()
    kept = [i for i, on in enumerate(trainer.switches["LayerChoice1"]) if on]
    assert trainer.export()["LayerChoice1"] == kept[0]  # an index among the original two


def test_a_mutator_factory_is_used_per_stage_and_an_instance_refused() -> None:
    trainer = pdarts(mutator=DartsMutator)
    trainer.fit()
    assert isinstance(trainer.trainer.mutator, DartsMutator)
    assert trainer.export()["op"] in CANDIDATES
    with pytest.raises(ValueError, match="factory"):
        pdarts(mutator=DartsMutator(Cells(1)))


def test_resume_in_the_middle_of_a_stage_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    CRASH.update(at=None, steps=0)
    straight = pdarts(epochs=2)
    straight.fit()
    CRASH.update(at=4, steps=0)  # the 4th scheduler step: stage 1, end of its second epoch
    crashed = pdarts(epochs=2, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    CRASH.update(at=None, steps=0)
    resumed = pdarts(epochs=2, checkpoint_dir=tmp_path)
    resumed.load_checkpoint(tmp_path / "pdarts.pt")
    assert resumed.stage == 1
    resumed.fit()
    assert resumed.export() == straight.export()
    assert resumed.switches == straight.switches
    assert resumed.history == straight.history
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)


def test_resume_between_stages(tmp_path: Path) -> None:
    CRASH.update(at=None, steps=0)
    straight = pdarts()
    straight.fit()

    class Die(Callback):
        def on_epoch_end(self, epoch: int) -> None:
            raise KeyboardInterrupt

    crashed = pdarts(checkpoint_dir=tmp_path, callbacks=[Die()])
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    resumed = pdarts(checkpoint_dir=tmp_path)
    resumed.load_checkpoint(tmp_path / "pdarts.pt")
    assert resumed.stage == 1 and resumed.switches == crashed.switches
    resumed.fit()
    assert resumed.export() == straight.export() and resumed.history == straight.history


def test_the_run_log_spans_the_stages_over_the_original_candidates(tmp_path: Path) -> None:
    import json

    trainer = pdarts(log_dir=tmp_path)
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "oneshot.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["start", "epoch", "epoch", "end"]
    assert records[0]["trainer"] == "PdartsTrainer" and records[0]["num_epochs"] == 2
    assert records[0]["choices"]["op"]["candidates"] == CANDIDATES
    assert [r["epoch"] for r in records[1:3]] == [0, 1]
    second = records[2]["weights"]["op"]
    assert len(second) == 5 and second.count(0.0) == 2  # dropped after stage 0
    assert sum(second) == pytest.approx(1.0, abs=1e-6)
    assert records[-1]["export"] == trainer.export()


def test_stage_lists_must_match() -> None:
    with pytest.raises(ValueError, match="one value per stage"):
        pdarts(pdarts_num_layers=[0, 1, 2], pdarts_num_to_drop=[1])
