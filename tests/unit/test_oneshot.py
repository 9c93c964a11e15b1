"""One-shot trainers on tiny models with random tensors: every trainer fits, exports an
architecture that applies to a fresh model which then trains; DARTS' second-order gradient is
checked against a numerical estimate; resume equals an uninterrupted run; AMP, callbacks,
TensorBoard and both constructor styles work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nascli.nas import LayerChoice, apply_fixed_architecture
from nascli.nas.oneshot import (
    ArchitectureCheckpoint,
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    LRSchedulerCallback,
    ModelCheckpoint,
    OneShotExperiment,
    ProxylessTrainer,
    RandomTrainer,
    SPOSTrainer,
)
from tests.oneshot_models import TinyNet, accuracy, reward, tiny_data

COSTS = {"op1": [1.0, 2.0, 0.5], "op2": [1.0, 0.1], "cell_in": [0.0, 0.0, 0.0]}
TRAINERS = {
    "darts": (DartsTrainer, {}, 2),
    "darts-unrolled": (DartsTrainer, {"unrolled": True}, 2),
    "enas": (EnasTrainer, {"ctrl_steps_aggregate": 2}, 2),
    "gdas": (GumbelDartsTrainer, {"warmup_epochs": 1}, 2),
    "proxyless": (ProxylessTrainer, {"measure_cost": True, "cost_weight": 0.01}, 1),
    "spos": (SPOSTrainer, {"population_size": 4, "generations": 1, "num_select": 2}, 2),
    "random": (RandomTrainer, {"num_samples": 4}, 2),
}


def build(name: str, epochs: int = 2, model: nn.Module | None = None, **kwargs):
    cls, extra, n_chosen = TRAINERS[name]
    torch.manual_seed(0)
    model = model or TinyNet(n_chosen=n_chosen)
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    head = (model, nn.CrossEntropyLoss(), accuracy)
    if cls is EnasTrainer:
        head = (*head, reward)
    return cls(*head, optimizer, epochs, tiny_data(), batch_size=16, **{**extra, **kwargs})


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_fit_export_apply_retrain(name: str) -> None:
    trainer = build(name)
    trainer.fit()
    assert len(trainer.history) == 2 and "valid/loss" in trainer.history[-1]
    arch = trainer.export()
    assert set(arch) == {"op1", "op2", "cell_in"}
    assert arch["op1"] in ("conv3", "conv5", "pool")
    assert json.loads(json.dumps(arch)) == arch
    fresh = TinyNet(n_chosen=TRAINERS[name][2])
    apply_fixed_architecture(fresh, arch)
    assert not any(isinstance(m, LayerChoice) for m in fresh.modules())
    x, y = tiny_data(16, seed=1).tensors
    optimizer = torch.optim.SGD(fresh.parameters(), 0.1)
    loss = nn.functional.cross_entropy(fresh(x), y)
    loss.backward()
    optimizer.step()
    assert nn.functional.cross_entropy(fresh(x), y) < loss


@pytest.mark.parametrize("name", ["darts", "darts-unrolled", "enas", "spos", "proxyless", "gdas"])
def test_resume_equals_an_uninterrupted_run(name: str, tmp_path: Path) -> None:
    from nascli.nas.oneshot import Callback

    class Crash(Callback):  # the run dies right after epoch 0's checkpoint was written
        def on_epoch_end(self, epoch):
            raise KeyboardInterrupt

    # Measured latencies differ run to run; resume is about the same inputs giving the same run.
    kw = {"measure_cost": False, "cost_table": COSTS} if name == "proxyless" else {}
    straight = build(name, epochs=2, **kw)
    straight.fit()
    first = build(name, epochs=2, callbacks=[ModelCheckpoint(tmp_path), Crash()], **kw)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = build(name, epochs=2, callbacks=[ModelCheckpoint(tmp_path)], **kw)
    resumed.load_checkpoint(tmp_path / "last.pt")
    assert resumed.epoch == 1
    resumed.fit()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(),
                         strict=True):  # fmt: skip
        assert torch.equal(a, b), k
    assert straight.export() == resumed.export()
    assert straight.history == resumed.history


def _darts_toy(dtype=torch.float64):
    torch.manual_seed(0)

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.choice = LayerChoice([nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.Tanh())],
                                      key="c")  # fmt: skip
            self.out = nn.Linear(3, 1)

        def forward(self, x):
            return self.out(self.choice(x))

    model = Toy().to(dtype)
    x = torch.randn(32, 3, dtype=dtype)
    y = (x**2).sum(1, keepdim=True)
    data = TensorDataset(x, y)
    trainer = DartsTrainer(
        model, nn.MSELoss(), lambda o, t: {}, torch.optim.SGD(model.parameters(), 0.5), 1, data,
        batch_size=16, unrolled=True, grad_clip=None,
    )  # fmt: skip
    with torch.no_grad():
        trainer.alpha["c"].copy_(torch.tensor([0.3, -0.2], dtype=dtype))
    return trainer, (x[:16], y[:16]), (x[16:], y[16:])


def test_darts_second_order_gradient_matches_a_numerical_estimate() -> None:
    trainer, (x, y), (vx, vy) = _darts_toy()
    model, alpha, xi = trainer.model, trainer.alpha["c"], 0.5
    names = [n for n, p in model.named_parameters()]
    weights = [p.detach() for p in model.parameters()]

    def unrolled_val_loss(a: torch.Tensor) -> float:
        with torch.no_grad():
            alpha.copy_(a)
        params = [w.clone().requires_grad_(True) for w in weights]
        out = torch.func.functional_call(model, dict(zip(names, params, strict=True)), (x,))
        grads = torch.autograd.grad(nn.functional.mse_loss(out, y), params, allow_unused=True)
        stepped = {n: w - xi * (g if g is not None else 0) for n, w, g in
                   zip(names, params, grads, strict=True)}  # fmt: skip
        val = nn.functional.mse_loss(torch.func.functional_call(model, stepped, (vx,)), vy)
        return float(val.detach())

    base = alpha.detach().clone()
    h = 1e-5
    numeric = torch.stack([
        torch.tensor((unrolled_val_loss(base + h * e) - unrolled_val_loss(base - h * e)) / (2 * h))
        for e in torch.eye(2, dtype=base.dtype)
    ])  # fmt: skip
    with torch.no_grad():
        alpha.copy_(base)
    trainer.arch_backward((x, y), (vx, vy))
    second = alpha.grad.detach().clone()
    alpha.grad = None
    trainer.unrolled = False
    trainer.arch_backward((x, y), (vx, vy))
    first = alpha.grad.detach().clone()
    assert torch.allclose(second, numeric.to(second.dtype), rtol=1e-3, atol=1e-7), (second, numeric)
    assert (first - numeric).abs().max() > 10 * (second - numeric).abs().max()


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cpu(amp: str) -> None:
    seen: list[torch.dtype] = []
    trainer = build("darts", epochs=1, amp=amp)
    # the weight-step forward runs in the reduced precision
    trainer.model.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trainer.fit()
    assert torch.isfinite(torch.tensor(trainer.history[-1]["train/loss"]))
    assert {"bf16": torch.bfloat16, "fp16": torch.float16}[amp] in seen
    assert all(a.dtype == torch.float32 for a in trainer.alpha.values())  # arch state stays fp32
    trainer = build("spos", epochs=1, amp=amp)
    trainer.fit()
    assert trainer.export()


def test_bad_arguments_are_refused_with_the_allowed_values() -> None:
    from nascli.errors import UsageError

    with pytest.raises(UsageError, match="amp must be None, 'fp16' or 'bf16'"):
        build("darts", amp="fp8")
    with pytest.raises(UsageError, match="train_split must be between 0 and 1"):
        build("darts", train_split=1.5)
    with pytest.raises(UsageError, match="distributed=True needs a torch.distributed job"):
        build("darts", distributed=True)


def test_callbacks_scheduler_checkpoints_and_batch_hooks(tmp_path: Path) -> None:
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    batches = []

    from nascli.nas.oneshot import Callback

    class CountBatches(Callback):
        def on_batch_end(self, epoch, step):
            batches.append((epoch, step))

    trainer = DartsTrainer(
        model, nn.CrossEntropyLoss(), accuracy, optimizer, 2, tiny_data(), batch_size=16,
        callbacks=[LRSchedulerCallback(scheduler), ArchitectureCheckpoint(tmp_path / "arch"),
                   ModelCheckpoint(tmp_path / "ckpt"), CountBatches()],
    )  # fmt: skip
    trainer.fit()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert sorted(p.name for p in (tmp_path / "arch").iterdir()) == ["epoch_0.json", "epoch_1.json"]
    assert json.loads((tmp_path / "arch" / "epoch_1.json").read_text()) == trainer.export()
    assert len(batches) == 2 * len(trainer.train_loader)
    restored = build("darts", epochs=2)
    restored.load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert restored.epoch == 2 and restored.export() == trainer.export()


def test_v19_constructor_style_and_validation_set() -> None:
    model = TinyNet()
    trainer = DartsTrainer(
        model, nn.CrossEntropyLoss(), accuracy, torch.optim.SGD(model.parameters(), 0.05), 1,
        tiny_data(), tiny_data(32, seed=5), batch_size=16,
    )  # fmt: skip
    assert len(trainer.dataset_valid) == 32
    trainer.train()
    assert trainer.export()


def test_tensorboard_scalars_and_arch_weights(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = build("darts", epochs=2, tensorboard_dir=tmp_path / "tb")
    trainer.fit()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "valid/accuracy" in tags and "arch/op1/0" in tags
    assert len(events.Scalars("arch/op1/0")) == 2


def test_proxyless_cost_term_moves_alpha_to_the_cheap_candidate() -> None:
    table = {"op1": [0.0, 0.0, 100.0], "op2": [0.0, 0.0], "cell_in": [0.0, 0.0, 0.0]}
    trainer = build("proxyless", epochs=2, measure_cost=False, cost_table=table, cost_weight=1.0,
                    arc_learning_rate=0.2)  # fmt: skip
    trainer.fit()
    probs = trainer.arch_probabilities()["op1"]
    assert probs[2] < 0.2 and trainer.export()["op1"] != "pool"


def test_proxyless_measures_costs() -> None:
    trainer = build("proxyless", epochs=1)
    trainer.fit()
    assert set(trainer.cost_table) == {"op1", "op2", "cell_in"}
    assert all(c >= 0 for costs in trainer.cost_table.values() for c in costs)


def test_one_shot_experiment_and_top_models() -> None:
    trainer = build("spos", epochs=1)
    experiment = OneShotExperiment(trainer.model, trainer)
    with pytest.raises(RuntimeError):
        experiment.export_top_models()
    experiment.run()
    top = experiment.export_top_models(top_k=3)
    assert len(top) == 3 and top[0] == trainer.export()
    assert len({json.dumps(t, sort_keys=True) for t in top}) == 3


def test_periodic_logging_and_progress_bar(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    trainer = build("random", epochs=1, log_frequency=2, progress=True)
    with caplog.at_level(logging.INFO, logger="nascli.oneshot"):
        trainer.fit()
    steps = [r.getMessage() for r in caplog.records if "step [" in r.getMessage()]
    total = len(trainer.train_loader)
    assert len(steps) == len(range(0, total, 2)) + (0 if (total - 1) % 2 == 0 else 1)
    assert any("epoch 1/1" in r.getMessage() and "valid/accuracy" in r.getMessage()
               for r in caplog.records)  # fmt: skip
