"""Fixed architectures: turn a search-space model into the plain model of one architecture.

``apply_fixed_architecture(model, "arch.json")`` validates the architecture against the model's
search space (every problem at once), then replaces each choice in place:

* a ``LayerChoice`` with one chosen candidate becomes that candidate module, so its parameters
  are named ``<path>.<param>`` (e.g. ``conv1.weight``), exactly as in a hand-written model;
* a ``LayerChoice`` with several chosen candidates (or ``return_mask=True``) becomes a
  ``FixedLayerChoice`` holding only the chosen ones, named ``<path>.<candidate name>.<param>``;
* an ``InputChoice`` becomes a ``FixedInputChoice``, which has no parameters and picks its inputs
  with no mutator call.

Unchosen candidates are dropped: they hold no parameters and cost no compute. ``MutableScope``s
stay (they only group) but no longer call any mutator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from nascli import space as spaces
from nascli.errors import ArchitectureError, MutableError
from nascli.nas.mutables import InputChoice, LayerChoice, MutableScope
from nascli.nas.mutator import Mutator, reduce_outputs

__all__ = [
    "FixedArchitecture",
    "apply_fixed_architecture",
    "FixedLayerChoice",
    "FixedInputChoice",
]


class FixedArchitecture(Mutator):
    """A mutator whose decisions are one given architecture.

    Args:
        model: the search-space model.
        fixed_arc: the architecture (export format: name, index, list of names or indices,
            multi-hot bools, float weights, or ``{"_value", "_idx"}`` entries per key).
        strict: when False, keys of ``fixed_arc`` the model does not have are ignored (a missing
            key is always an error).
        source: names the architecture in error messages (e.g. the JSON file's path).
        normalized: ``fixed_arc`` is already one decision per key of the model's search space
            (as ``space.parse_parameters`` returns, validated against it): taken as is, not
            parsed a second time.

    Raises:
        ArchitectureError: listing every mismatch between ``fixed_arc`` and the search space.
    """

    def __init__(
        self,
        model: nn.Module,
        fixed_arc: Mapping[str, Any],
        strict: bool = True,
        source: str = "architecture",
        *,
        normalized: bool = False,
    ):
        super().__init__(model)
        if normalized:
            self._fixed_arc = dict(fixed_arc)
            self.reset()
            return
        try:
            self._fixed_arc = spaces.normalize_architecture(
                self.search_space(), _plain(fixed_arc, source), source, strict
            )
        except ArchitectureError:
            self.detach()  # leave the model free for a corrected architecture
            raise
        self.reset()

    def sample_search(self) -> dict[str, Any]:
        return dict(self._fixed_arc)

    def sample_final(self) -> dict[str, Any]:
        return dict(self._fixed_arc)

    def replace_layer_choice(self) -> None:
        """Prune the model: replace each choice by its fixed, mutator-free form (module doc)."""
        replaced: dict[int, nn.Module] = {}
        for parent in list(self.model.modules()):
            for name, child in list(parent._modules.items()):
                if isinstance(child, (LayerChoice, InputChoice)):
                    if id(child) not in replaced:
                        replaced[id(child)] = self._fixed_module(child)
                    parent._modules[name] = replaced[id(child)]
        for mutable in self.undedup_mutables:
            if isinstance(mutable, MutableScope):
                mutable.set_mutator(None)

    def _fixed_module(self, choice: LayerChoice | InputChoice) -> nn.Module:
        decision = self._fixed_arc[choice.key]
        if isinstance(choice, InputChoice):
            return FixedInputChoice(choice, decision)
        chosen = [i for i, v in enumerate(decision) if v]
        weighted = not all(isinstance(v, bool) for v in decision)
        if len(chosen) == 1 and not weighted and not choice.return_mask:
            return choice.candidate(chosen[0])
        return FixedLayerChoice(choice, decision)


def apply_fixed_architecture(
    model: nn.Module, fixed_arc: str | os.PathLike[str] | Mapping[str, Any], strict: bool = True
) -> FixedArchitecture:
    """Turn ``model`` into the plain model of ``fixed_arc`` (a JSON file path or a dict).

    Returns the ``FixedArchitecture`` mutator (its ``export()`` gives the architecture back).

    Raises:
        ArchitectureError: the file is missing or malformed, or the architecture does not fit.
    """
    if isinstance(fixed_arc, (str, os.PathLike)):
        source = str(fixed_arc)
        fixed_arc = spaces.load_architecture(fixed_arc)
    else:
        source = "architecture"
    mutator = FixedArchitecture(model, fixed_arc, strict=strict, source=source)
    mutator.replace_layer_choice()
    return mutator


class _FixedChoice(nn.Module):
    """What both fixed choices share: the chosen indices of a decision, their weights (None for a
    plain selection), the mask, and how chosen outputs combine."""

    def __init__(self, key: str, decision: Sequence[Any], reduction: str, return_mask: bool):
        super().__init__()
        self.key = key
        self.chosen_indices = [i for i, v in enumerate(decision) if v]
        weighted = not all(isinstance(v, bool) for v in decision)
        self.weights = [float(decision[i]) for i in self.chosen_indices] if weighted else None
        self.reduction = reduction
        self.return_mask = return_mask
        mask = [float(v) for v in decision] if weighted else [bool(v) for v in decision]
        self.register_buffer("mask", torch.tensor(mask), persistent=False)

    def _combine(self, outputs: list[Any]) -> Any:
        if self.weights is not None:
            outputs = [out * w for out, w in zip(outputs, self.weights, strict=True)]
        out = reduce_outputs(self.reduction, outputs)
        return (out, self.mask) if self.return_mask else out


class FixedLayerChoice(_FixedChoice):
    """The chosen candidates of a LayerChoice (named as in the choice), combined by its
    reduction (or weights)."""

    def __init__(self, choice: LayerChoice, decision: Sequence[Any]):
        super().__init__(choice.key, decision, choice.reduction, choice.return_mask)
        self.names = [choice.names[i] for i in self.chosen_indices]
        for i, name in zip(self.chosen_indices, self.names, strict=True):
            self.add_module(name, choice.candidate(i))

    @property
    def chosen(self) -> list[str]:
        """Names of the candidates that run."""
        return list(self.names)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._combine([self._modules[name](*args, **kwargs) for name in self.names])


class FixedInputChoice(_FixedChoice):
    """The chosen inputs of an InputChoice: picks them from the list (or dict) it is given."""

    def __init__(self, choice: InputChoice, decision: Sequence[Any]):
        super().__init__(choice.key, decision, choice.reduction, choice.return_mask)
        self.choose_from = list(choice.choose_from)
        self.n_candidates = len(self.choose_from)

    @property
    def chosen(self) -> list[int]:
        """Indices of the inputs that are used."""
        return list(self.chosen_indices)

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        if isinstance(optional_inputs, Mapping):
            inputs = [optional_inputs[k] for k in self.choose_from]
        else:
            inputs = optional_inputs
        if len(inputs) != self.n_candidates:
            raise MutableError(
                f"InputChoice {self.key!r}: expected {self.n_candidates} inputs, got {len(inputs)}"
            )
        return self._combine([inputs[i] for i in self.chosen_indices])

    def extra_repr(self) -> str:
        return f"key={self.key!r}, chosen={self.chosen}"


def _plain(fixed_arc: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """Tensors and arrays in an architecture dict become lists (the space module is torch-free)."""
    if not isinstance(fixed_arc, Mapping):
        raise ArchitectureError(
            [
                f"the architecture must be a JSON object {{key: choice}}, "
                f"got {type(fixed_arc).__name__}"
            ],
            source,
        )
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in fixed_arc.items()}
