"""NNI v1.9's mutator workflow on nascli: build a mutator on a model, ``reset()``, forward and
backward, ``export()``, then ``apply_fixed_architecture`` on a fresh model that runs without any
mutator; and NNI's refusals (a second mutator, a choice nested in a choice) as RuntimeErrors."""

from __future__ import annotations

import pytest
import torch

from nascli.nas import RandomMutator, apply_fixed_architecture
from nascli.nas.oneshot.darts import DartsMutator
from nascli.nas.oneshot.enas import EnasMutator
from nascli.nas.utils import _reset_global_mutable_counting
from tests.compat.models import NaiveSpace, Nested, ScopedSpace

MUTATORS = [RandomMutator, DartsMutator, EnasMutator]


def sample_forward_backward(model, mutator, iters=3):
    for _ in range(iters):
        model.zero_grad()
        mutator.reset()
        out = model(torch.randn(2, 3, 8, 8))
        assert out.shape == (2, 10)
        out.sum().backward()


@pytest.mark.parametrize("space", [NaiveSpace, ScopedSpace])
@pytest.mark.parametrize("mutator_cls", MUTATORS)
def test_sample_export_apply_pipeline(space, mutator_cls) -> None:
    _reset_global_mutable_counting()
    model = space()
    mutator = mutator_cls(model)
    sample_forward_backward(model, mutator)
    _reset_global_mutable_counting()
    fresh = space()
    with torch.no_grad():
        arc = mutator.export()
    apply_fixed_architecture(fresh, arc)
    fresh(torch.randn(2, 3, 8, 8)).sum().backward()


def test_darts_mutator_weights_are_differentiable_and_export_follows_alpha() -> None:
    model = NaiveSpace()
    mutator = DartsMutator(model)
    mutator.reset()
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    key = model.conv1.key
    assert mutator.alpha(key).grad is not None and mutator.alpha(key).grad.abs().sum() > 0
    with torch.no_grad():
        mutator.alpha(key).copy_(torch.tensor([0.0, 3.0]))
    assert mutator.export()[key] == 1
    assert mutator.probabilities()[key] == pytest.approx(
        torch.softmax(torch.tensor([0.0, 3.0]), 0).tolist()
    )
    assert sorted(dict(mutator.named_parameters())) == sorted(
        f"choices.{k}" for k in mutator.search_space()
    )


def test_enas_mutator_statistics_and_greedy_export() -> None:
    model = ScopedSpace()
    mutator = EnasMutator(model, tanh_constant=1.1, cell_exit_extra_step=True)
    mutator.reset()
    assert mutator.sample_log_prob.requires_grad and float(mutator.sample_log_prob.detach()) < 0
    assert float(mutator.sample_entropy.detach()) > 0
    (-mutator.sample_log_prob).backward()
    assert any(p.grad is not None for p in mutator.parameters())
    assert mutator.export() == mutator.export()  # the most likely architecture, not a sample
    # layer choices with different candidate counts are fine (NNI asserted equal counts)
    mixed = NaiveSpace()
    assert EnasMutator(mixed).export()


def test_enas_mutator_skip_penalty_for_any_number_of_inputs() -> None:
    model = NaiveSpace()  # `skip` has n_chosen=None
    mutator = EnasMutator(model, skip_target=0.4)
    mutator.reset()
    assert (
        float(mutator.sample_skip_penalty.detach()) >= 0
        and mutator.sample_skip_penalty.requires_grad
    )


def test_a_second_mutator_is_a_runtime_error() -> None:
    model = NaiveSpace()
    RandomMutator(model)
    with pytest.raises(RuntimeError, match="already has a RandomMutator"):
        RandomMutator(model)


def test_a_choice_nested_in_a_choice_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="nested inside the choice"):
        RandomMutator(Nested())


def test_mutable_errors_keep_being_value_errors() -> None:
    from nascli.errors import MutableError, UsageError

    assert issubclass(MutableError, RuntimeError)
    assert issubclass(MutableError, ValueError) and issubclass(MutableError, UsageError)
