"""Every NNI v1.9 trainer and mutator argument is accepted, in v1.9's positional order, by the
class at the mapped import path. The v1.9 lists are those of the shared reference
(``nni_v19_behaviour.md``, read from NNI v1.9's source); when that file is present, the test also
checks it still says so."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

# (our module, class) -> NNI v1.9's constructor, as the reference quotes it
V19 = {
    (
        "nascli.nas.oneshot.darts",
        "DartsTrainer",
    ): "DartsTrainer(model, loss, metrics, optimizer, num_epochs, dataset_train, dataset_valid, mutator=None, batch_size=64, workers=4, device=None, log_frequency=None, callbacks=None, arc_learning_rate=3.0E-4, unrolled=False)",  # noqa: E501
    (
        "nascli.nas.oneshot.enas",
        "EnasTrainer",
    ): "EnasTrainer(model, loss, metrics, reward_function, optimizer, num_epochs, dataset_train, dataset_valid, mutator=None, batch_size=64, workers=4, device=None, log_frequency=None, callbacks=None, entropy_weight=0.0001, skip_weight=0.8, baseline_decay=0.999, child_steps=500, mutator_lr=0.00035, mutator_steps_aggregate=20, mutator_steps=50, aux_weight=0.4, test_arc_per_epoch=1)",  # noqa: E501
    (
        "nascli.nas.oneshot.proxyless",
        "ProxylessNasTrainer",
    ): "ProxylessNasTrainer(model, model_optim, device, train_loader, valid_loader, label_smoothing=0.1, n_epochs=120, init_lr=0.025, binary_mode='full_v2', arch_init_type='normal', arch_init_ratio=1e-3, arch_optim_lr=1e-3, arch_weight_decay=0, grad_update_arch_param_every=5, grad_update_steps=1, warmup=True, warmup_epochs=25, arch_valid_frequency=1, load_ckpt=False, ckpt_path=None, arch_path=None)",  # noqa: E501
    (
        "nascli.nas.oneshot.spos",
        "SPOSSupernetTrainer",
    ): "SPOSSupernetTrainer(model, loss, metrics, optimizer, num_epochs, train_loader, valid_loader, mutator=None, batch_size=64, workers=4, device=None, log_frequency=None, callbacks=None)",  # noqa: E501
    (
        "nascli.nas.oneshot.spos",
        "SPOSSupernetTrainingMutator",
    ): "SPOSSupernetTrainingMutator(model, flops_func=None, flops_lb=None, flops_ub=None, flops_bin_num=7, flops_sample_timeout=500)",  # noqa: E501
    (
        "nascli.nas.oneshot.spos",
        "SPOSEvolution",
    ): "SPOSEvolution(max_epochs=20, num_select=10, num_population=50, m_prob=0.1, num_crossover=25, num_mutation=25)",  # noqa: E501
    (
        "nascli.nas.oneshot.enas",
        "EnasMutator",
    ): 'EnasMutator(model, lstm_size=64, lstm_num_layers=1, tanh_constant=1.5, cell_exit_extra_step=False, skip_target=0.4, temperature=None, branch_bias=0.25, entropy_reduction="sum")',  # noqa: E501
    (
        "nascli.nas.oneshot.pdarts",
        "PdartsTrainer",
    ): "PdartsTrainer(model_creator, init_layers, metrics, num_epochs, dataset_train, dataset_valid, pdarts_num_layers=[0,6,12], pdarts_num_to_drop=[3,2,1], mutator=None, batch_size=64, workers=4, device=None, log_frequency=None, callbacks=None, unrolled=False)",  # noqa: E501
}

_REPO = Path(__file__).resolve().parents[2]
_CANDIDATES = [d / "shared" / "reference" / "nni_v19_behaviour.md" for d in _REPO.parents[:2]]
REFERENCE = next((p for p in _CANDIDATES if p.is_file()), _CANDIDATES[0])


def v19_names(signature: str) -> list[str]:
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    inner = re.sub(r"\[[^\]]*\]", "[]", inner)  # list defaults hold commas
    return [part.split("=")[0].strip() for part in inner.split(",")]


@pytest.mark.parametrize("where", sorted(V19), ids=lambda w: w[1])
def test_v19_arguments_in_v19_order(where: tuple[str, str]) -> None:
    module, name = where
    cls = getattr(importlib.import_module(module), name)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    expected = v19_names(V19[where])
    ours = [p.name for p in params[: len(expected)]]
    assert ours == expected
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[: len(expected)])


@pytest.mark.skipif(not REFERENCE.is_file(), reason="the shared reference is not on this machine")
def test_the_lists_are_the_references() -> None:
    text = " ".join(REFERENCE.read_text().split())
    for signature in V19.values():
        assert signature in text, signature
