"""apply_fixed_architecture: formats, pruning, state_dict names, errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from nascli.errors import ArchitectureError
from nascli.nas import (
    FixedInputChoice,
    FixedLayerChoice,
    InputChoice,
    LayerChoice,
    apply_fixed_architecture,
)
from nascli.nas.mutables import Mutable
from tests.models import HandWrittenNaive, NaiveSpace, ScopedSpace, forward_backward

ARCH = {"LayerChoice1": 1, "LayerChoice2": "conv3x3", "InputChoice3": [0]}


def test_fixed_model_is_the_hand_written_model():
    model = NaiveSpace(return_mask=False)
    apply_fixed_architecture(model, ARCH)
    reference = HandWrittenNaive()
    assert not any(isinstance(m, Mutable) for m in model.modules())
    assert isinstance(model.conv1, nn.Conv2d) and model.conv1.kernel_size == (5, 5)
    # state_dict names: the chosen candidate takes the choice's place
    model_keys = set(model.state_dict())
    assert {"conv1.weight", "conv1.bias", "conv2.weight", "conv3.weight", "fc.weight"} <= model_keys
    assert model_keys == set(reference.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    reference.load_state_dict(model.state_dict())
    model.eval(), reference.eval()
    x = torch.randn(4, 3, 16, 16)
    assert torch.allclose(model(x), reference(x), atol=1e-6)


def test_fixed_model_from_a_json_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(
        json.dumps({"LayerChoice1": [False, True], "LayerChoice2": [0], "InputChoice3": [True]})
    )
    model = NaiveSpace()
    mutator = apply_fixed_architecture(model, str(path))
    assert mutator.export() == {"InputChoice3": 0, "LayerChoice1": 1, "LayerChoice2": "conv3x3"}
    forward_backward(model)


def test_input_choice_with_nothing_chosen_returns_none():
    model = NaiveSpace()
    apply_fixed_architecture(model, {**ARCH, "InputChoice3": []})
    assert isinstance(model.skipconnect, FixedInputChoice)
    assert model.skipconnect([torch.ones(1)]) is None
    forward_backward(model)


def test_multi_choice_and_return_mask_keep_only_chosen_candidates():
    model = NaiveSpace()
    apply_fixed_architecture(model, {**ARCH, "LayerChoice1": [0, 1]})
    assert isinstance(model.conv1, FixedLayerChoice) and model.conv1.chosen == ["0", "1"]
    # LayerChoice2 has return_mask=True: kept as a FixedLayerChoice returning the mask
    assert isinstance(model.conv2, FixedLayerChoice) and model.conv2.chosen == ["conv3x3"]
    assert "conv2.conv3x3.weight" in model.state_dict()
    assert "conv2.conv5x5.weight" not in model.state_dict()
    forward_backward(model)
    assert model.last_mask.tolist() == [True, False]


def test_scoped_model_with_shared_keys():
    arch = {}
    for node in ("node_0", "node_1"):
        for cell in ("x", "y"):
            arch[f"{node}_{cell}_input"] = 1
            arch[f"{node}_{cell}_op"] = 0
    model = ScopedSpace()
    apply_fixed_architecture(model, arch)
    assert not any(isinstance(m, (LayerChoice, InputChoice)) for m in model.modules())
    forward_backward(model)


def test_a_second_apply_is_refused_and_a_failed_apply_leaves_the_model_free():
    model = NaiveSpace()
    with pytest.raises(ArchitectureError):
        apply_fixed_architecture(model, {**ARCH, "LayerChoice1": 9})
    apply_fixed_architecture(model, ARCH)  # the failed attempt bound nothing


def test_every_problem_is_reported_at_once():
    bad = {"LayerChoice1": "conv9", "LayerChoice2": 5, "InputChoice3": [0, 0], "Extra": 1}
    with pytest.raises(ArchitectureError) as info:
        apply_fixed_architecture(NaiveSpace(), bad)
    assert len(info.value.problems) == 4
    message = str(info.value)
    for expected in (
        "'Extra'",
        "'LayerChoice1': unknown candidate 'conv9'",
        "'LayerChoice2': index 5",
        "'InputChoice3'",
    ):
        assert expected in message


def test_bad_files_name_the_file(tmp_path):
    broken = tmp_path / "arch.json"
    broken.write_text("{'LayerChoice1': 0}")
    with pytest.raises(ArchitectureError, match=r"arch.json: not valid JSON at line 1 column 2"):
        apply_fixed_architecture(NaiveSpace(), str(broken))
    with pytest.raises(ArchitectureError, match="cannot read the file"):
        apply_fixed_architecture(NaiveSpace(), str(tmp_path / "missing.json"))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ArchitectureError, match="must be a JSON object"):
        apply_fixed_architecture(NaiveSpace(), str(listing))


def test_strict_false_ignores_unknown_keys():
    model = NaiveSpace()
    apply_fixed_architecture(model, {**ARCH, "Other": 1}, strict=False)
    forward_backward(model)


def test_tensor_values_are_accepted():
    model = NaiveSpace()
    apply_fixed_architecture(
        model,
        {
            "LayerChoice1": torch.tensor([False, True]),
            "LayerChoice2": torch.tensor([True, False]),
            "InputChoice3": torch.tensor([True]),
        },
    )
    assert model.conv1.kernel_size == (5, 5)
