"""What the one-shot trainers' defaults guarantee about their exports, on the cell benchmark's
spaces: DARTS-style derivation never exports a zero operation (so never an empty cell);
ProxylessNAS searches ``InputChoice``s with ``n_chosen: null``; ENAS exports the best-scored of
its controller's architectures; judging a path on batch statistics leaves the supernet as it
was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nascli.nas import InputChoice, LayerChoice, apply_fixed_architecture
from nascli.nas.benchmark.cell_input_space import CellInputNet, to_cell_architecture
from nascli.nas.benchmark.cell_space import CellNet
from nascli.nas.oneshot import (
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    ModelCheckpoint,
    ProxylessTrainer,
)
from nascli.nas.oneshot.sampling import batch_statistics
from tests.oneshot_models import build_trainer, tiny_data


def _cell() -> CellNet:
    return CellNet(channels=4, n_classes=4)


def _cell_inputs() -> CellInputNet:
    return CellInputNet(channels=4, n_classes=4)


_trainer = build_trainer


@pytest.mark.parametrize("cls", [DartsTrainer, GumbelDartsTrainer, ProxylessTrainer])
def test_derivation_skips_the_zero_operation_even_when_it_weighs_most(cls) -> None:
    trainer = _trainer(cls, _cell, epochs=0)
    with torch.no_grad():
        for alpha in trainer.alpha.values():  # none, skip_connect, conv_1x1, conv_3x3
            alpha.copy_(torch.tensor([5.0, 0.0, 1.0, 2.0]))
    arch = trainer.export()
    assert arch == {edge: "conv_3x3" for edge in arch}


def test_a_choice_of_zero_operations_only_still_exports() -> None:
    class Zero(nn.Module):
        def forward(self, x):
            return x * 0

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = LayerChoice({"none": Zero(), "zero": Zero()}, key="a")
            self.head = nn.Linear(64, 4)

        def forward(self, x):
            return self.head((x + self.a(x)).flatten(1))

    trainer = _trainer(DartsTrainer, Net, epochs=0)
    with torch.no_grad():
        trainer.alpha["a"].copy_(torch.tensor([0.0, 1.0]))
    assert trainer.export() == {"a": "zero"}


def _proxyless_subsets(**kwargs) -> ProxylessTrainer:
    return _trainer(ProxylessTrainer, _cell_inputs, epochs=2, **kwargs)


def test_proxyless_searches_input_choices_with_n_chosen_null() -> None:
    trainer = _proxyless_subsets(warmup_epochs=0)
    start = {k: a.detach().clone() for k, a in trainer.alpha.items()}
    trainer.fit()
    for key in ("node_1", "node_2", "node_3"):  # every input's gate was learnt
        assert not torch.equal(trainer.alpha[key], start[key]), key
    arch = trainer.export()
    for j in (1, 2, 3):
        probs = torch.sigmoid(trainer.alpha[f"node_{j}"]).tolist()
        picked = arch[f"node_{j}"]
        picked = [picked] if isinstance(picked, int) else list(picked)
        assert picked == [i for i, p in enumerate(probs) if p >= 0.5]
    fresh = CellInputNet(channels=4, n_classes=4)
    apply_fixed_architecture(fresh, arch)
    assert not any(isinstance(m, (LayerChoice, InputChoice)) for m in fresh.modules())
    assert fresh(tiny_data(4).tensors[0]).shape == (4, 4)
    assert set(to_cell_architecture(arch)) == {"0_1", "0_2", "1_2", "0_3", "1_3", "2_3"}


def test_proxyless_with_input_subsets_resumes_exactly(tmp_path: Path) -> None:
    from nascli.nas.oneshot import Callback

    class Crash(Callback):
        def on_epoch_end(self, epoch):
            raise KeyboardInterrupt

    straight = _proxyless_subsets(warmup_epochs=0)
    straight.fit()
    first = _proxyless_subsets(warmup_epochs=0, callbacks=[ModelCheckpoint(tmp_path), Crash()])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = _proxyless_subsets(warmup_epochs=0, callbacks=[ModelCheckpoint(tmp_path)])
    resumed.load_checkpoint(tmp_path / "last.pt")
    resumed.fit()
    for k, a in straight.alpha.items():
        assert torch.equal(a, resumed.alpha[k]), k
    assert straight.export() == resumed.export()


def test_enas_exports_the_best_scored_of_greedy_and_sampled_architectures() -> None:
    trainer = _trainer(EnasTrainer, _cell, epochs=1, num_samples=6,
                       ctrl_steps_aggregate=2)  # fmt: skip
    greedy = trainer.export()  # before the search: the controller's most likely architecture
    trainer.fit()
    assert 2 <= len(trainer.best) <= 7
    best_score, best = max(trainer.best, key=lambda item: item[0])
    assert trainer.export() == trainer.export_top_models(1)[0]
    assert best_score == max(s for s, _ in trainer.best)
    only_greedy = _trainer(EnasTrainer, _cell, epochs=1,
                           num_samples=0, ctrl_steps_aggregate=2)  # fmt: skip
    only_greedy.fit()
    assert len(only_greedy.best) == 1
    assert only_greedy.export() == greedy or isinstance(only_greedy.export(), dict)
    with pytest.raises(Exception, match="num_samples"):
        _trainer(EnasTrainer, _cell, num_samples=-1)


def test_batch_statistics_leave_running_statistics_and_modes_as_they_were() -> None:
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Dropout(0.5))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 1, 6, 6) * 3 + 2
    with batch_statistics(model), torch.no_grad():
        assert model[1].training and not model[2].training
        out = model(x)
    # normalised by the batch's own statistics: per channel mean 0
    assert out.mean((0, 2, 3)).abs().max() < 1e-4
    assert model.training and model[2].training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("train_zero_ops", [False, True])
def test_single_path_training_runs_zero_operations_only_when_asked(train_zero_ops) -> None:
    from nascli.nas.oneshot import RandomTrainer

    trainer = _trainer(RandomTrainer, _cell, epochs=3, num_samples=30,
                       train_zero_ops=train_zero_ops)  # fmt: skip
    trained: list[dict] = []
    sample = trainer.sample_for_step
    trainer.sample_for_step = lambda: trained.append(sample()) or trained[-1]
    trainer.fit()
    ran_zero = any(index == 0 for arch in trained for index in arch.values())  # 0: "none"
    assert len(trained) == 3 * len(trainer.train_loader)
    assert ran_zero == train_zero_ops
    # the search still scores architectures with zero operations
    assert any(index == 0 for _, arch in trainer.best for index in arch.values())
