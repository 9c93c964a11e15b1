"""NNI v1.9's DARTS example flow with only its imports changed: search with
``ArchitectureCheckpoint`` and ``enable_visualization()``, ``trainer.train()``, then retrain the
exported ``checkpoints/epoch_0.json`` on a fresh model with ``AverageMeterGroup`` statistics;
and the meters themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nascli.nas.fixed import apply_fixed_architecture
from nascli.nas.oneshot.callbacks import ArchitectureCheckpoint, LRSchedulerCallback
from nascli.nas.oneshot.darts import DartsTrainer
from nascli.nas.utils import AverageMeter, AverageMeterGroup
from tests.compat.models import NaiveSpace


def images(n: int, seed: int) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.TensorDataset(torch.randn(n, 3, 8, 8, generator=g),
                                          torch.randint(0, 10, (n,), generator=g))  # fmt: skip


def accuracy(output, target):
    return {"acc1": (output.argmax(1) == target).float().mean().item()}


def test_darts_search_then_retrain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    model = NaiveSpace()
    optim = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optim, 1, eta_min=0.001)
    trainer = DartsTrainer(model, loss=nn.CrossEntropyLoss(), metrics=accuracy, optimizer=optim,
                           num_epochs=1, dataset_train=images(32, 0), dataset_valid=images(16, 1),
                           batch_size=8, log_frequency=10, unrolled=False,
                           callbacks=[LRSchedulerCallback(lr_scheduler),
                                      ArchitectureCheckpoint("./checkpoints")])  # fmt: skip
    trainer.enable_visualization()
    trainer.train()
    assert (trainer.log_dir / "oneshot.jsonl").is_file()
    arch = json.loads((tmp_path / "checkpoints" / "epoch_0.json").read_text())

    fresh = NaiveSpace()
    apply_fixed_architecture(fresh, "./checkpoints/epoch_0.json")
    assert set(arch) == {"LayerChoice1", "LayerChoice2", "InputChoice3", "InputChoice4"}
    optimizer = torch.optim.SGD(fresh.parameters(), 0.05)
    meters = AverageMeterGroup()
    for x, y in torch.utils.data.DataLoader(images(32, 2), batch_size=8):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(fresh(x), y)
        loss.backward()
        optimizer.step()
        meters.update({"loss": loss, **accuracy(fresh(x), y)})
    assert meters.loss.count == 4 and isinstance(meters["loss"].avg, float)
    assert str(meters).startswith("loss ") and "acc1" in meters.summary()


def test_average_meter_keeps_numbers_not_graphs() -> None:
    meter = AverageMeter("loss", ":.2f")
    w = torch.tensor(2.0, requires_grad=True)
    meter.update(w * 3)
    meter.update(1.0, n=3)
    assert meter.val == 1.0 and meter.avg == pytest.approx((6.0 + 3.0) / 4)
    assert str(meter) == "loss 1.00 (2.25)" and meter.summary() == "loss: 2.25"
    with pytest.raises(ValueError, match="one number"):
        meter.update(torch.ones(2))
