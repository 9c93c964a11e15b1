"""Models written for NNI unpack ``(output, mask)`` from choices built with ``return_mask=True``
and may get None from an input choice that selected nothing: every trainer's replacement modules
keep that contract (NNI's test model asserts the masks' sizes inside its forward)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascli.nas import LayerChoice
from nascli.nas.oneshot import (
    DartsTrainer,
    EnasTrainer,
    ProxylessTrainer,
    RandomTrainer,
    SPOSTrainer,
)
from tests.compat.models import NaiveSpace
from tests.compat.test_nni_flows import accuracy, images


class LayerChoiceOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = LayerChoice([nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(3, 6, 5, padding=2)])
        self.conv2 = LayerChoice([nn.Conv2d(6, 8, 3, padding=1), nn.Conv2d(6, 8, 1)],
                                 return_mask=True)  # fmt: skip
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, mask = self.conv2(F.relu(self.conv1(x)))
        assert mask.numel() == 2
        return self.fc(x.mean((2, 3)))


def reward(output, target):
    return accuracy(output, target)["acc1"]


CASES = {
    "darts": (DartsTrainer, NaiveSpace, {}),
    "enas": (EnasTrainer, NaiveSpace, {"ctrl_steps_aggregate": 2}),
    "spos": (SPOSTrainer, NaiveSpace, {"population_size": 2, "generations": 0}),
    "random": (RandomTrainer, NaiveSpace, {"num_samples": 2}),
    "proxyless": (ProxylessTrainer, LayerChoiceOnly, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_masks_reach_the_model_under_every_trainer(name: str) -> None:
    cls, space, extra = CASES[name]
    torch.manual_seed(0)
    model = space()
    head = (model, nn.CrossEntropyLoss(), accuracy)
    if cls is EnasTrainer:
        head = (*head, reward)
    trainer = cls(*head, torch.optim.SGD(model.parameters(), 0.01), 1, images(16, 0),
                  batch_size=8, **extra)  # fmt: skip
    trainer.fit()
    assert trainer.export()
