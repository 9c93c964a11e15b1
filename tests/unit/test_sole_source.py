"""An empty ``InputChoice(n_chosen=None)`` pick that leaves a node with no input is a zero
operation: single-path trainers and ProxylessNAS keep it out of their training paths, while the
search may still score and export it. An empty pick that drops an optional shortcut is a real
choice and stays in training paths. ProxylessNAS's input gates start open."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascli.nas import InputChoice, LayerChoice
from nascli.nas.benchmark.cell_input_space import CellInputNet
from nascli.nas.oneshot import EnasTrainer, ProxylessTrainer, RandomTrainer, SPOSTrainer
from nascli.nas.oneshot.sole_source import nonempty_subset, probe_batch, sole_source_keys
from tests.oneshot_models import build_trainer

NODES = {"node_1", "node_2", "node_3"}


class ShortcutNet(nn.Module):
    """An optional shortcut (the digits table's ``skip: []``: no shortcut, still a network)
    next to a node that sums any subset of two branches (zeros when it picks none)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = LayerChoice({"c3": nn.Conv2d(1, 4, 3, padding=1),
                                 "c5": nn.Conv2d(1, 4, 5, padding=2)}, key="conv")  # fmt: skip
        self.skip = InputChoice(n_candidates=1, n_chosen=None, key="skip")
        self.left = nn.Conv2d(4, 4, 1)
        self.right = nn.Conv2d(4, 4, 3, padding=1)
        self.node = InputChoice(n_candidates=2, n_chosen=None, key="node")
        self.head = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        shortcut = self.skip([y])
        y = y if shortcut is None else y + shortcut
        picked = self.node([self.left(y), self.right(y)])
        z = y.mul(0.0) if picked is None else picked
        return self.head(torch.relu(z).mean((2, 3)))


_trainer = build_trainer


def _cell_inputs() -> CellInputNet:
    return CellInputNet(channels=4, n_classes=4)


@pytest.mark.parametrize("cls", [RandomTrainer, SPOSTrainer, EnasTrainer, ProxylessTrainer])
def test_the_node_sums_are_found_and_the_optional_shortcut_is_not(cls) -> None:
    assert _trainer(cls, _cell_inputs, epochs=0)._needs_input == NODES
    assert _trainer(cls, ShortcutNet, epochs=0)._needs_input == {"node"}
    if cls is not ProxylessTrainer:
        assert _trainer(cls, _cell_inputs, epochs=0, train_zero_ops=True)._needs_input == set()


def test_finding_the_sources_leaves_the_model_and_random_states_as_they_were() -> None:
    trainer = _trainer(RandomTrainer, _cell_inputs, epochs=0)
    model = trainer.model
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch_state, rng_state = torch.get_rng_state(), trainer.rng.getstate()
    x = probe_batch(trainer.dataset_weights, 16, "cpu")
    found = sole_source_keys(model, trainer.search_space, {}, x, trainer.architecture)
    assert found == NODES
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), torch_state) and trainer.rng.getstate() == rng_state
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert probe_batch(torch.utils.data.TensorDataset(torch.zeros(1, 1, 8, 8)), 16, "cpu") is None


@pytest.mark.parametrize("cls", [RandomTrainer, SPOSTrainer])
@pytest.mark.parametrize("paths", ["all", "nonempty"])
def test_a_training_path_never_leaves_a_sole_source_empty(cls, paths) -> None:
    trainer = _trainer(cls, ShortcutNet, epochs=6, sole_source_paths=paths)
    trained: list[dict] = []
    sample = trainer.sample_for_step
    trainer.sample_for_step = lambda: trained.append(sample()) or trained[-1]
    trainer.fit()
    assert len(trained) == 6 * len(trainer.train_loader)
    assert all(arch["node"] for arch in trained)  # the node always has an input
    assert any(not arch["skip"] for arch in trained)  # no shortcut is still trained
    # by default every input (an input left out is its edge's zero operation); or any non-empty
    # subset, uniformly
    expected = {(0, 1)} if paths == "all" else {(0,), (1,), (0, 1)}
    assert {tuple(arch["node"]) for arch in trained} == expected
    # the search still scores architectures whose node picks nothing
    assert any(not arch["node"] for _, arch in trainer.best)


def test_the_old_behaviour_with_train_zero_ops() -> None:
    trainer = _trainer(RandomTrainer, _cell_inputs, epochs=0, train_zero_ops=True)
    paths = [trainer.sample_for_step() for _ in range(40)]
    assert any(not arch["node_1"] for arch in paths)


def test_enas_trains_the_controllers_sample_with_its_empty_nodes_filled() -> None:
    trainer = _trainer(EnasTrainer, _cell_inputs, epochs=0)
    proposed = {k: trainer.search_space[k] for k in trainer.keys}
    arch = {k: (() if k in NODES else 1) for k in proposed}
    path = trainer.trainable_path(arch)
    assert all(list(path[k]) == list(range(int(k[-1]))) for k in NODES)  # every input
    picked = {**arch, "node_3": (1,)}
    nonempty = _trainer(EnasTrainer, _cell_inputs, epochs=0, sole_source_paths="nonempty")
    path = nonempty.trainable_path(picked)
    assert all(path[k] for k in NODES) and tuple(path["node_3"]) == (1,)  # a pick is kept
    assert {k: v for k, v in path.items() if k not in NODES} == {
        k: 1 for k in proposed if k not in NODES
    }


def test_an_export_may_still_pick_nothing_where_that_scores_best() -> None:
    trainer = _trainer(RandomTrainer, _cell_inputs, epochs=1, num_samples=30)
    trainer.score = lambda arch: 1.0 if not arch["node_1"] else 0.0  # nothing into node 1 is best
    trainer.fit()
    assert trainer.export()["node_1"] == []


def test_nonempty_subsets_are_uniform() -> None:
    import random

    rng = random.Random(0)
    draws = [nonempty_subset(2, rng) for _ in range(3000)]
    assert set(draws) == {(0,), (1,), (0, 1)}
    for subset in set(draws):
        assert 900 < draws.count(subset) < 1100


def test_proxyless_gates_start_open() -> None:
    trainer = _trainer(ProxylessTrainer, _cell_inputs, epochs=0)
    for key in NODES:
        assert torch.allclose(torch.sigmoid(trainer.alpha[key]), torch.tensor(0.8))
    for key in trainer.search_space:
        if key not in NODES:  # layer choices: uniform
            assert torch.equal(trainer.alpha[key], torch.zeros_like(trainer.alpha[key]))
    arch = trainer.export()  # untrained: every input taken
    assert arch["node_1"] in (0, [0]) and list(arch["node_3"]) == [0, 1, 2]
    neutral = _trainer(ProxylessTrainer, _cell_inputs, epochs=0, gate_init=0.5)
    assert torch.equal(neutral.alpha["node_2"], torch.zeros(2))
    with pytest.raises(Exception, match="gate_init"):
        _trainer(ProxylessTrainer, _cell_inputs, epochs=0, gate_init=1.0)


@pytest.mark.parametrize("paths", ["all", "nonempty"])
def test_proxyless_weight_steps_keep_an_input_while_the_export_may_close_every_gate(paths) -> None:
    trainer = _trainer(ProxylessTrainer, ShortcutNet, epochs=0, sole_source_paths=paths)
    with torch.no_grad():  # every gate almost closed
        trainer.alpha["node"].fill_(-8.0)
        trainer.alpha["skip"].fill_(-8.0)
    taken = []
    for _ in range(50):
        trainer._sample_single()
        taken.append((list(trainer.gates.single["node"]), list(trainer.gates.single["skip"])))
    assert all(node for node, _ in taken)  # the node's only source is never empty
    if paths == "all":
        assert all(node == [0, 1] for node, _ in taken)
    assert all(not skip for _, skip in taken)  # the optional shortcut is, as its gate says
    assert trainer.export()["node"] == [] and trainer.export()["skip"] == []


def test_enas_skip_penalty_pulls_optional_inputs_only() -> None:
    trainer = _trainer(EnasTrainer, ShortcutNet, epochs=0)
    trainer._take_probs.clear()
    trainer.controller(trainer.ctrl_generator)
    assert len(trainer._take_probs) == 1  # the shortcut's one take/skip step, not the node's two


def test_enas_warms_up_the_weights_on_uniform_paths_before_training_its_controller() -> None:
    from nascli.nas.oneshot import Callback

    class AfterEachEpoch(Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[list[torch.Tensor], torch.Tensor]] = []

        def on_epoch_end(self, epoch: int) -> None:
            self.seen.append(([p.detach().clone() for p in self.trainer.controller.parameters()],
                              self.trainer.ctrl_generator.get_state()))  # fmt: skip

    after = AfterEachEpoch()
    trainer = _trainer(EnasTrainer, _cell_inputs, epochs=4, num_samples=2, callbacks=[after])
    assert trainer.warmup_epochs == 1
    start = ([p.detach().clone() for p in trainer.controller.parameters()],
             trainer.ctrl_generator.get_state())  # fmt: skip
    trainer.fit()
    (warm, warm_state), (trained, _) = after.seen[0], after.seen[1]
    # the warm-up epoch: the controller neither trained nor sampled
    assert all(torch.equal(a, b) for a, b in zip(start[0], warm, strict=True))
    assert torch.equal(warm_state, start[1])
    assert "train/reward" not in trainer.history[0] and "train/reward" in trainer.history[1]
    assert any(not torch.equal(a, b) for a, b in zip(warm, trained, strict=True))
    assert _trainer(EnasTrainer, _cell_inputs, epochs=4, warmup_epochs=0).warmup_epochs == 0
    with pytest.raises(Exception, match="warmup_epochs"):
        _trainer(EnasTrainer, _cell_inputs, epochs=4, warmup_epochs=-1)


def test_a_model_the_probe_batch_does_not_fit_finds_nothing_and_still_trains() -> None:
    class NeedsDict(ShortcutNet):
        def forward(self, x):  # the trainer's batches are tensors; the probe's too
            return super().forward(x["image"] if isinstance(x, dict) else x)

    trainer = _trainer(RandomTrainer, NeedsDict, epochs=0)
    found = sole_source_keys(trainer.model, trainer.search_space, {}, {"pixels": torch.ones(4)},
                             trainer.architecture)  # fmt: skip
    assert found == set()
