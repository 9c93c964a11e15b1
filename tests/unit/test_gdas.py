"""GumbelDartsTrainer beyond what every trainer is tested for (tests/unit/test_oneshot.py): one
path per step, the temperature schedule, learning which candidate helps, input choices."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nascli.errors import UsageError
from nascli.nas import InputChoice, LayerChoice
from nascli.nas.oneshot import DartsMutator, GumbelDartsTrainer
from tests.oneshot_models import TinyNet, accuracy, tiny_data


class Zero(nn.Module):
    def forward(self, x):
        return x * 0.0


class Ones(nn.Module):
    def forward(self, x):
        return torch.ones_like(x)


class GateNet(nn.Module):
    """The features pass through a choice of [zeros, identity, ones] before a linear head: only
    identity keeps the information the labels need."""

    def __init__(self):
        super().__init__()
        self.gate = LayerChoice(
            OrderedDict(zero=Zero(), identity=nn.Identity(), ones=Ones()),
            key="gate",
        )
        self.skip = InputChoice(n_candidates=2, n_chosen=None, key="skip")
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        g = self.gate(x)
        return self.head(self.skip([g, g * 0.5]))


def gate_data(n: int = 1024) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())


def test_weight_steps_run_only_the_drawn_candidate() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    trainer = GumbelDartsTrainer(model, nn.CrossEntropyLoss(), accuracy,
                                 torch.optim.SGD(model.parameters(), 0.05), 2, tiny_data(),
                                 batch_size=16, warmup_epochs=0)  # fmt: skip
    op1 = dict(trainer.nas_modules)["op1"]
    calls = {name: 0 for name in op1.names}
    for name in op1.names:
        op1.candidate(op1.names.index(name)).register_forward_hook(
            lambda *_, n=name: calls.__setitem__(n, calls[n] + 1)
        )
    trainer.fit()
    steps = 2 * len(trainer.train_loader)
    # weight steps: the drawn candidate; architecture steps: all three (straight-through
    # gradients for each); validation: the argmax
    runs = sum(calls.values()) - 2 * len(trainer.valid_loader)
    assert runs == steps + 3 * steps
    assert sum(1 for c in calls.values() if c > steps) >= 2  # different candidates get drawn


def test_a_v19_mutator_is_refused_with_a_message() -> None:
    model = TinyNet()
    with pytest.raises(UsageError, match="mutator"):
        GumbelDartsTrainer(model, nn.CrossEntropyLoss(), accuracy,
                           torch.optim.SGD(model.parameters(), 0.05), 1, tiny_data(),
                           mutator=DartsMutator(model), batch_size=16)  # fmt: skip


def test_temperature_anneals_after_the_warm_up() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    trainer = GumbelDartsTrainer(model, nn.CrossEntropyLoss(), accuracy,
                                 torch.optim.SGD(model.parameters(), 0.05), 8, tiny_data(),
                                 tau_max=5.0, tau_min=0.5)  # fmt: skip
    assert trainer.warmup_epochs == 2
    assert trainer.tau(0) == trainer.tau(2) == 5.0
    assert trainer.tau(7) == 0.5
    assert trainer.tau(3) > trainer.tau(5) > trainer.tau(7)


def test_learns_the_candidate_that_keeps_the_information() -> None:
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = GateNet()
        trainer = GumbelDartsTrainer(model, nn.CrossEntropyLoss(), accuracy,
                                     torch.optim.Adam(model.parameters(), 0.05), 8, gate_data(),
                                     batch_size=32, arc_learning_rate=0.05, seed=seed)  # fmt: skip
        trainer.fit()
        arch = trainer.export()
        assert arch["gate"] == "identity", trainer.arch_probabilities()
        assert arch["skip"] in (0, 1, [0, 1])
        assert trainer.history[-1]["valid/accuracy"] > 0.85
