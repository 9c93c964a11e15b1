"""Mutables and mutators: containers, keys, parsing rules, decisions, errors."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nascli.errors import MutableError, MutatorNotAppliedError
from nascli.nas import InputChoice, LayerChoice, Mutator, RandomMutator, apply_fixed_architecture
from nascli.nas.mutables import Mutable
from tests.models import NaiveSpace, ScopedSpace, forward_backward


def _convs():
    return [nn.Conv2d(3, 3, 1), nn.Conv2d(3, 5, 1), nn.Conv2d(3, 6, 1)]


@pytest.mark.parametrize("as_dict", [False, True])
def test_layer_choice_is_a_container(as_dict):
    convs = _convs()
    ops = OrderedDict(zip(["conv1", "conv2", "conv3"], convs, strict=True)) if as_dict else convs
    lc = LayerChoice(ops)
    assert len(lc) == lc.length == 3
    assert lc.names == (["conv1", "conv2", "conv3"] if as_dict else ["0", "1", "2"])
    assert lc[1] is convs[1] and lc[lc.names[2]] is convs[2]
    assert len(lc[0:2]) == 2 and list(lc) == convs
    lc[1] = nn.Conv2d(3, 4, 1)
    assert lc[1].out_channels == 4
    del lc[1]
    assert len(lc) == 2 and lc.names == (["conv1", "conv3"] if as_dict else ["0", "2"])
    if as_dict:
        del lc["conv1"]
        assert len(lc) == 1 and lc[-1] is convs[2]


def test_layer_choice_accepts_tuples_and_refuses_bad_candidates():
    assert LayerChoice(tuple(_convs())).length == 3
    with pytest.raises(MutableError, match="must be a list, tuple or mapping"):
        LayerChoice(nn.Conv2d(3, 3, 1))
    with pytest.raises(MutableError, match="op_candidates is empty"):
        LayerChoice([])
    with pytest.raises(MutableError, match="candidate '1' must be an nn.Module, got int"):
        LayerChoice([nn.Identity(), 3])
    with pytest.raises(MutableError, match="'names' is reserved"):
        LayerChoice({"names": nn.Identity()})
    with pytest.raises(MutableError, match="reduction must be one of"):
        LayerChoice(_convs(), reduction="max")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "give n_candidates or choose_from"),
        ({"n_candidates": 0}, "positive integer"),
        ({"n_candidates": 3, "choose_from": ["a", "b"]}, r"n_candidates \(3\) must equal"),
        ({"n_candidates": 2, "n_chosen": 3}, "n_chosen must be None or an integer from 0 to 2"),
        ({"choose_from": [1, 2]}, "must be keys"),
        ({"n_candidates": 2, "reduction": "prod"}, "reduction must be one of"),
    ],
)
def test_input_choice_argument_errors(kwargs, expected):
    with pytest.raises(MutableError, match=expected):
        InputChoice(**kwargs)


def test_auto_keys_are_stable_across_constructions_in_one_process():
    first = [m.key for m in NaiveSpace().modules() if isinstance(m, Mutable)]
    ScopedSpace()  # building another model in between must not shift the keys
    second = [m.key for m in NaiveSpace().modules() if isinstance(m, Mutable)]
    assert first == second == ["LayerChoice1", "LayerChoice2", "InputChoice3"]


def test_export_of_one_model_applies_to_a_fresh_one():
    model = NaiveSpace()
    mutator = RandomMutator(model, seed=3)
    arch = mutator.export()
    fresh = NaiveSpace()
    apply_fixed_architecture(fresh, arch)
    fresh(torch.randn(2, 3, 16, 16))


def test_calling_a_model_before_a_mutator_names_the_key_and_the_fix():
    with pytest.raises(MutatorNotAppliedError) as info:
        NaiveSpace()(torch.randn(2, 3, 16, 16))
    message = str(info.value)
    assert "'LayerChoice1'" in message and "get_and_apply_next_architecture" in message


class Nested(nn.Module):
    def __init__(self):
        super().__init__()

        class Candidate(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = InputChoice(n_candidates=2, key="inner")

        self.block = nn.Sequential(
            nn.Identity(), LayerChoice([Candidate(), nn.Identity()], key="outer")
        )


def test_nested_choice_is_refused_with_the_module_path():
    with pytest.raises(MutableError) as info:
        RandomMutator(Nested())
    assert "'block.1.0.inner'" in str(info.value) and "'block.1'" in str(info.value)


class SharedKeys(nn.Module):
    def __init__(self, second_size=2):
        super().__init__()
        self.a = LayerChoice([nn.Linear(4, 4) for _ in range(2)], key="op")
        self.b = LayerChoice([nn.Linear(4, 4) for _ in range(second_size)], key="op")

    def forward(self, x):
        return self.b(self.a(x))


def test_shared_key_means_one_decision():
    model = SharedKeys()
    mutator = RandomMutator(model, seed=0)
    assert [m.key for m in mutator.mutables] == ["op"]
    assert len(mutator.undedup_mutables) == 2
    assert mutator.search_space()["op"].names == ("0", "1")
    calls = []
    for lc in (model.a, model.b):
        for i, op in enumerate(lc):
            op.register_forward_hook(lambda *_, i=i: calls.append(i))
    for _ in range(10):
        calls.clear()
        mutator.reset()
        model(torch.randn(1, 4))
        assert calls[0] == calls[1]


def test_shared_key_with_different_candidate_counts_names_both_places():
    with pytest.raises(MutableError) as info:
        RandomMutator(SharedKeys(second_size=3))
    assert "'a'" in str(info.value) and "'b'" in str(info.value) and "(2 vs 3)" in str(info.value)


def test_choose_from_must_name_an_earlier_mutable():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.skip = InputChoice(choose_from=["", "later"], n_chosen=1, key="skip")
            self.later = LayerChoice([nn.Identity()], key="later")

    with pytest.raises(MutableError, match="choose_from names 'later'"):
        RandomMutator(Bad())


def test_one_mutator_per_model_and_detach_frees_it():
    model = NaiveSpace()
    mutator = RandomMutator(model)
    with pytest.raises(MutableError, match="a model takes one mutator"):
        RandomMutator(model)
    mutator.detach()
    RandomMutator(model)


def test_deepcopy_of_a_search_space_model():
    model = NaiveSpace()
    unbound = copy.deepcopy(model)
    assert [m.key for m in unbound.modules() if isinstance(m, Mutable)] == [
        "LayerChoice1",
        "LayerChoice2",
        "InputChoice3",
    ]
    mutator = RandomMutator(model, seed=0)
    bound = copy.deepcopy(model)
    assert bound.conv1.mutator is mutator and bound.conv1 is not model.conv1
    x = torch.randn(2, 3, 16, 16)
    model.eval(), bound.eval()
    assert torch.allclose(model(x), bound(x))


def test_random_mutator_samples_valid_architectures_and_runs():
    for cls in (NaiveSpace, ScopedSpace):
        model = cls()
        mutator = RandomMutator(model, seed=1)
        forward_backward(model, mutator, steps=10)
        for _ in range(20):
            mutator.reset()
            arch = mutator.export()
            apply_fixed_architecture(cls(), arch)


def test_random_mutator_seed_reproduces_the_sequence():
    def sequence(seed):
        mutator = RandomMutator(ScopedSpace(), seed=seed)
        out = []
        for _ in range(5):
            mutator.reset()
            out.append(mutator.export())
        return out

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_return_mask_gives_the_mask():
    model = NaiveSpace()
    mutator = RandomMutator(model)
    mutator.apply_architecture({"LayerChoice1": 0, "LayerChoice2": "conv5x5", "InputChoice3": []})
    model(torch.randn(2, 3, 16, 16))
    assert model.last_mask.tolist() == [False, True]


class Reduce(nn.Module):
    def __init__(self, reduction):
        super().__init__()
        self.lc = LayerChoice(
            [nn.Identity(), nn.Identity(), nn.Identity()], reduction=reduction, key="lc"
        )
        self.ic = InputChoice(n_candidates=3, reduction=reduction, key="ic")

    def forward(self, x):
        return self.lc(x), self.ic([x, 2 * x, 3 * x])


class ManualMutator(Mutator):
    def __init__(self, model, decisions):
        super().__init__(model)
        self.decisions = decisions
        self.reset()

    def sample_search(self):
        return dict(self.decisions)

    def sample_final(self):
        return dict(self.decisions)


@pytest.mark.parametrize(
    ("reduction", "expected_lc", "expected_ic"),
    [("sum", 2.0, 4.0), ("mean", 1.0, 2.0)],
)
def test_reductions_over_several_active_candidates(reduction, expected_lc, expected_ic):
    model = Reduce(reduction)
    ManualMutator(model, {"lc": [True, False, True], "ic": [True, False, True]})
    lc, ic = model(torch.ones(1, 2))
    assert lc.flatten().tolist() == [expected_lc] * 2 and ic.flatten().tolist() == [expected_ic] * 2


def test_concat_none_weights_and_empty_selection():
    model = Reduce("concat")
    ManualMutator(model, {"lc": [1, 1, 0], "ic": torch.tensor([0.5, 0.0, 0.25])})
    lc, ic = model(torch.ones(1, 2))
    assert lc.shape == (1, 4)  # 0/1 ints select (NNI multiplied them as weights)
    assert ic.flatten().tolist() == [0.5, 0.5, 0.75, 0.75]
    model = Reduce("none")
    ManualMutator(model, {"lc": [False, True, False], "ic": [False, False, False]})
    lc, ic = model(torch.ones(1, 2))
    assert isinstance(lc, list) and len(lc) == 1 and ic == []
    model = Reduce("sum")
    ManualMutator(model, {"lc": [False, True, False], "ic": [False, False, False]})
    assert model(torch.ones(1, 2))[1] is None


def test_float_weights_keep_the_autograd_graph():
    model = Reduce("sum")
    alpha = torch.zeros(3, requires_grad=True)
    ManualMutator(model, {"lc": F.softmax(alpha, 0), "ic": [True, True, True]})
    lc, _ = model(torch.ones(1, 2))
    (lc * torch.tensor([1.0, 2.0])).sum().backward()
    assert alpha.grad is not None


def test_wrong_decision_length_and_missing_key_are_reported():
    model = Reduce("sum")
    ManualMutator(model, {"lc": [True, False], "ic": [True, False, False]})
    with pytest.raises(MutableError, match="decision for 'lc' has 2 entries, expected 3"):
        model(torch.ones(1, 2))
    model = Reduce("sum")
    ManualMutator(model, {"ic": [True, False, False]})
    with pytest.raises(MutableError, match="no decision for this key"):
        model(torch.ones(1, 2))


def test_input_choice_accepts_a_dict_keyed_by_choose_from():
    class DictInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = LayerChoice([nn.Identity()], key="a")
            self.b = LayerChoice([nn.Identity()], key="b")
            self.pick = InputChoice(choose_from=["a", "b"], n_chosen=1, key="pick")

        def forward(self, x):
            return self.pick({"a": self.a(x), "b": 2 * self.b(x)})

    model = DictInputs()
    apply_fixed_architecture(model, {"a": 0, "b": 0, "pick": "b"})
    assert model(torch.ones(1)).item() == 2.0
    model = DictInputs()
    RandomMutator(model).apply_architecture({"a": 0, "b": 0, "pick": ["b"]})
    assert model(torch.ones(1)).item() == 2.0
    with pytest.raises(MutableError, match="lacks \\['b'\\]"):
        model.pick({"a": torch.ones(1)})
