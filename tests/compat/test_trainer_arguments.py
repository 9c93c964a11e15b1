"""NNI v1.9 trainer arguments with their v1.9 meaning: a mutator passed in is the one used,
ENAS's step counts, learning rate, auxiliary loss, skip penalty and test architectures, SPOS's
supernet trainer and FLOPs-banded mutator on the user's loaders, ProxylessNAS's v1.9 signature
with its checkpoint, and SPOSEvolution as a tuner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from nascli.nas import apply_fixed_architecture
from nascli.nas.oneshot import Callback
from nascli.nas.oneshot.darts import DartsMutator, DartsTrainer
from nascli.nas.oneshot.enas import EnasMutator, EnasTrainer
from nascli.nas.oneshot.proxyless import ProxylessNasTrainer
from nascli.nas.oneshot.spos import (
    SPOSEvolution,
    SPOSSupernetTrainer,
    SPOSSupernetTrainingMutator,
)
from tests.oneshot_models import TinyNet, accuracy, reward, tiny_data


class CountBatches(Callback):
    def __init__(self) -> None:
        self.batches: dict[int, int] = {}

    def on_batch_end(self, epoch: int, step: int) -> None:
        self.batches[epoch] = self.batches.get(epoch, 0) + 1


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)


def test_darts_trainer_uses_the_mutator_passed_in() -> None:
    torch.manual_seed(0)
    model = TinyNet()

    class Recording(DartsMutator):
        resets = 0

        def reset(self) -> None:
            Recording.resets += 1
            super().reset()

    mutator = Recording(model)
    before = {k: p.detach().clone() for k, p in mutator.named_parameters()}
    trainer = DartsTrainer(model, nn.CrossEntropyLoss(), accuracy, sgd(model), 1, tiny_data(32),
                           tiny_data(16, seed=1), mutator, batch_size=8)  # fmt: skip
    trainer.fit()
    assert Recording.resets > 0
    after = dict(mutator.named_parameters())
    assert all(not torch.equal(before[k], after[k]) for k in before)  # alpha was optimised
    assert trainer.export() == mutator.export()
    assert set(trainer.history[0]) >= {"train/loss", "valid/accuracy"}
    apply_fixed_architecture(TinyNet(), trainer.export())


def test_enas_trainer_takes_mutator_none_and_every_v19_argument() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    counter = CountBatches()
    trainer = EnasTrainer(
        model, nn.CrossEntropyLoss(), accuracy, reward, sgd(model), 2, tiny_data(32),
        tiny_data(16, seed=1), mutator=None, callbacks=[counter], batch_size=8,
        entropy_weight=1e-3, skip_weight=0.5, baseline_decay=0.9, child_steps=3,
        mutator_lr=1e-3, mutator_steps_aggregate=2, mutator_steps=3, aux_weight=0.2,
        test_arc_per_epoch=2,
    )  # fmt: skip
    trainer.fit()
    assert counter.batches == {0: 3, 1: 3}  # child_steps weight steps per epoch
    assert trainer.ctrl_steps == 6 and trainer.ctrl_steps_aggregate == 2
    assert trainer.ctrl_optim.param_groups[0]["lr"] == 1e-3
    steps = {int(s["step"]) for s in trainer.ctrl_optim.state.values()}
    assert steps == {6}  # 3 controller updates per epoch, 2 epochs
    assert "valid/sampled_accuracy" in trainer.history[-1]
    with pytest.raises(ValueError, match="not both"):
        EnasTrainer(model, nn.CrossEntropyLoss(), accuracy, reward, sgd(model), 1, tiny_data(32),
                    mutator_lr=1e-3, ctrl_lr=1e-2)  # fmt: skip
    # v1.9's mutator_steps counts updates of mutator_steps_aggregate (NNI's 20) samples
    by_updates = EnasTrainer(model, nn.CrossEntropyLoss(), accuracy, reward, sgd(model), 1,
                             tiny_data(32), batch_size=8, mutator_steps=2)  # fmt: skip
    assert by_updates.ctrl_steps == 40 and by_updates.ctrl_steps_aggregate == 20


def test_enas_trainer_uses_an_enas_mutator_as_its_controller() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    mutator = EnasMutator(model, tanh_constant=1.1, cell_exit_extra_step=True)
    before = [p.detach().clone() for p in mutator.parameters()]
    trainer = EnasTrainer(model, nn.CrossEntropyLoss(), accuracy, reward, sgd(model), 1,
                          tiny_data(32), mutator=mutator, batch_size=8,
                          mutator_steps_aggregate=2)  # fmt: skip
    trainer.fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, mutator.parameters(), strict=True))
    assert trainer.export() == mutator.export()
    apply_fixed_architecture(TinyNet(), trainer.export())


def test_skip_penalty_pulls_take_probabilities_and_aux_loss_adds_the_aux_head() -> None:
    from nascli.nas.oneshot.adapters import AuxLoss

    torch.manual_seed(0)
    model = TinyNet(n_chosen=None)
    # cell_in is the only source of what follows it (an empty pick leaves the BatchNorm with no
    # input), which the default keeps out of the penalty; train_zero_ops=True penalises all
    trainer = EnasTrainer(model, nn.CrossEntropyLoss(), accuracy, reward, sgd(model), 1,
                          tiny_data(32), batch_size=8, train_zero_ops=True)  # fmt: skip
    trainer._take_probs.clear()
    trainer.controller(trainer.ctrl_generator)
    assert len(trainer._take_probs) == 3  # one take/skip step per input of cell_in
    penalty = trainer._skip_penalty()
    assert penalty.requires_grad and float(penalty.detach()) > 0

    loss = AuxLoss(nn.CrossEntropyLoss(), 0.4)
    logits, aux, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    expected = nn.functional.cross_entropy(logits, y) + 0.4 * nn.functional.cross_entropy(aux, y)
    assert torch.allclose(loss((logits, aux), y), expected)
    assert torch.allclose(loss(logits, y), nn.functional.cross_entropy(logits, y))


class WithAuxHead(TinyNet):
    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Linear(1 * 8 * 8, 4)

    def forward(self, x: torch.Tensor):  # (logits, aux_logits) in training, logits in eval
        out = super().forward(x)
        return (out, self.aux(x.flatten(1))) if self.training else out


def test_enas_trains_a_model_with_an_auxiliary_head() -> None:
    torch.manual_seed(0)
    model = WithAuxHead()
    trainer = EnasTrainer(model, nn.CrossEntropyLoss(), accuracy, reward, sgd(model), 1,
                          tiny_data(32), batch_size=8, aux_weight=0.4)  # fmt: skip
    before = model.aux.weight.detach().clone()
    trainer.fit()
    assert not torch.equal(before, model.aux.weight)  # the aux head got gradients


def loaders() -> tuple[DataLoader, DataLoader]:
    return (DataLoader(tiny_data(32), batch_size=8, shuffle=True),
            DataLoader(tiny_data(16, seed=1), batch_size=8))  # fmt: skip


def test_spos_supernet_trainer_on_loaders_with_its_default_mutator() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    train, valid = loaders()
    counter = CountBatches()
    trainer = SPOSSupernetTrainer(model, nn.CrossEntropyLoss(), accuracy, sgd(model), 2, train,
                                  valid, callbacks=[counter], population_size=3, generations=1,
                                  num_select=2)  # fmt: skip
    assert isinstance(trainer.mutator, SPOSSupernetTrainingMutator)
    trainer.fit()
    assert counter.batches == {0: len(train), 1: len(train)}
    assert trainer.best == []  # fit() trains the supernet only, as NNI's
    arch = trainer.export()  # then searches it
    assert trainer.best and set(arch) == {"op1", "op2", "cell_in"}
    apply_fixed_architecture(TinyNet(), arch)


def test_flops_banded_sampling_stays_in_the_band() -> None:
    model = TinyNet()
    cost = {"conv3": 9.0, "conv5": 25.0, "pool": 0.0}

    def flops(decisions):
        mask = decisions["op1"].tolist()
        return cost[["conv3", "conv5", "pool"][mask.index(True)]]

    torch.manual_seed(0)
    mutator = SPOSSupernetTrainingMutator(model, flops_func=flops, flops_lb=5.0, flops_ub=30.0,
                                          flops_bin_num=1)  # fmt: skip
    picks = {tuple(mutator.sample_search()["op1"].tolist()) for _ in range(30)}
    assert picks == {(True, False, False), (False, True, False)}  # pool (0 FLOPs) is outside


def test_proxyless_nas_trainer_v19_signature_checkpoint_and_resume(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyNet(n_chosen=1)
    train, valid = loaders()
    ckpt, arch = tmp_path / "ckpt.pt", tmp_path / "arch.json"
    trainer = ProxylessNasTrainer(model, sgd(model), "cpu", train, valid, n_epochs=2,
                                  init_lr=0.01, arch_init_type="uniform", arch_init_ratio=0.5,
                                  grad_update_arch_param_every=2, warmup_epochs=1,
                                  ckpt_path=ckpt, arch_path=arch)  # fmt: skip
    assert all(float(a.detach().abs().max()) <= 0.5 for a in trainer.alpha.values())
    trainer.fit()
    assert ckpt.is_file() and json.loads(arch.read_text()) == trainer.export()
    assert {"valid/acc1", "train/loss"} <= set(trainer.history[-1])
    again = ProxylessNasTrainer(TinyNet(n_chosen=1), sgd(model), "cpu", train, valid, n_epochs=2,
                                load_ckpt=True, ckpt_path=ckpt)  # fmt: skip
    assert again.epoch == 2 and again.export() == trainer.export()


def test_spos_evolution_breeds_generations_and_stops() -> None:
    from tuners.base import NoMoreTrialError

    space = {
        "a": {"_type": "layer_choice", "_value": ["x", "y", "z"]},
        "b": {"_type": "layer_choice", "_value": ["0", "1", "2", "3"]},
        "c": {"_type": "input_choice", "_value": {"candidates": ["", ""], "n_chosen": 1}},
    }
    tuner = SPOSEvolution(max_epochs=3, num_select=2, num_population=4, num_crossover=2,
                          num_mutation=2, m_prob=0.5, seed=0)  # fmt: skip
    tuner.update_search_space(space)
    seen, pid = [], 0
    with pytest.raises(NoMoreTrialError):
        while True:
            params = tuner.generate_parameters(pid)
            seen.append(json.dumps(params, sort_keys=True))
            score = 1.0 if params["a"]["_value"] == "z" else 0.0
            tuner.receive_trial_result(pid, params, score)
            tuner.trial_end(pid, True)
            pid += 1
    assert len(seen) == 12 and len(set(seen)) == 12  # 3 generations of 4, never twice
    late = [json.loads(s)["a"]["_value"] for s in seen[4:]]
    assert late.count("z") > len(late) / 3  # offspring of the best parents

    resumed = SPOSEvolution(max_epochs=3, num_select=2, num_population=4, seed=0)
    resumed.update_search_space(space)
    first = SPOSEvolution(max_epochs=3, num_select=2, num_population=4, seed=0)
    first.update_search_space(space)
    a = [first.generate_parameters(i) for i in range(2)]
    resumed.load_checkpoint(json.loads(json.dumps(first.save_checkpoint())))
    assert [resumed.generate_parameters(i) for i in (2, 3)] == [
        first.generate_parameters(i) for i in (2, 3)
    ]
    assert a


def test_enas_micro_flow_scopes_shared_keys_and_cell_exit_steps() -> None:
    from tests.compat.models import ScopedSpace
    from tests.compat.test_nni_flows import accuracy as acc1
    from tests.compat.test_nni_flows import images

    torch.manual_seed(0)
    model = ScopedSpace()
    mutator = EnasMutator(model, tanh_constant=1.1, cell_exit_extra_step=True)
    trainer = EnasTrainer(model, loss=nn.CrossEntropyLoss(), metrics=acc1,
                          reward_function=lambda o, t: acc1(o, t)["acc1"],
                          optimizer=torch.optim.SGD(model.parameters(), 0.05), num_epochs=1,
                          dataset_train=images(16, 0), dataset_valid=images(8, 1),
                          batch_size=8, mutator=mutator, mutator_steps_aggregate=2)  # fmt: skip
    trainer.train()
    arch = trainer.export()
    assert set(arch) == set(mutator.search_space())
    fresh = ScopedSpace()
    apply_fixed_architecture(fresh, arch)
    fresh(torch.randn(2, 3, 8, 8))


def test_a_mutator_must_be_built_on_the_trainers_model_and_fit_the_trainer() -> None:
    from nascli.nas.oneshot import ProxylessTrainer

    model, other = TinyNet(), TinyNet()
    with pytest.raises(ValueError, match="another model"):
        DartsTrainer(model, nn.CrossEntropyLoss(), accuracy, sgd(model), 1, tiny_data(16),
                     mutator=DartsMutator(other))  # fmt: skip
    with pytest.raises(ValueError, match="takes no mutator"):
        ProxylessTrainer(model, nn.CrossEntropyLoss(), accuracy, sgd(model), 1, tiny_data(16),
                         mutator=DartsMutator(model))  # fmt: skip
