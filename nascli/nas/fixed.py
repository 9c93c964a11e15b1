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

    Raises:
        ArchitectureError: listing every mismatch between ``fixed_arc`` and the search space.
    """

    def __init__(
        self,
        model: nn.Module,
        fixed_arc: Mapping[str, Any],
        strict: bool = True,
        source: str = "architecture",
    ):
        super().__init__(model)
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
            return FixedInputChoice.from_choice(choice, decision)
        chosen = [i for i, v in enumerate(decision) if v]
        weighted = not all(isinstance(v, bool) for v in decision)
        if len(chosen) == 1 and not weighted and not choice.return_mask:
            return choice.candidate(chosen[0])
        return FixedLayerChoice.from_choice(choice, decision)


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


class FixedLayerChoice(nn.Module):
    """The chosen candidates of a LayerChoice, combined by its reduction (or weights)."""

    def __init__(
        self,
        key: str,
        candidates: Mapping[str, nn.Module],
        weights: Sequence[float] | None,
        reduction: str,
        return_mask: bool,
        mask: torch.Tensor,
    ):
        super().__init__()
        self.key = key
        self.names = list(candidates)
        for name, module in candidates.items():
            self.add_module(name, module)
        self.weights = None if weights is None else list(weights)
        self.reduction = reduction
        self.return_mask = return_mask
        self.register_buffer("mask", mask, persistent=False)

    @classmethod
    def from_choice(cls, choice: LayerChoice, decision: Sequence[Any]) -> FixedLayerChoice:
        chosen = [i for i, v in enumerate(decision) if v]
        weighted = not all(isinstance(v, bool) for v in decision)
        return cls(
            choice.key,
            {choice.names[i]: choice.candidate(i) for i in chosen},
            [float(decision[i]) for i in chosen] if weighted else None,
            choice.reduction,
            choice.return_mask,
            torch.tensor([float(v) for v in decision])
            if weighted
            else torch.tensor([bool(v) for v in decision]),
        )

    @property
    def chosen(self) -> list[str]:
        """Names of the candidates that run."""
        return list(self.names)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        outputs = [self._modules[name](*args, **kwargs) for name in self.names]
        if self.weights is not None:
            outputs = [out * w for out, w in zip(outputs, self.weights, strict=True)]
        out = reduce_outputs(self.reduction, outputs)
        return (out, self.mask) if self.return_mask else out


class FixedInputChoice(nn.Module):
    """The chosen inputs of an InputChoice: picks them from the list (or dict) it is given."""

    def __init__(
        self,
        key: str,
        choose_from: Sequence[str],
        chosen: Sequence[int],
        weights: Sequence[float] | None,
        reduction: str,
        return_mask: bool,
        mask: torch.Tensor,
    ):
        super().__init__()
        self.key = key
        self.choose_from = list(choose_from)
        self.n_candidates = len(self.choose_from)
        self.chosen = list(chosen)
        self.weights = None if weights is None else list(weights)
        self.reduction = reduction
        self.return_mask = return_mask
        self.register_buffer("mask", mask, persistent=False)

    @classmethod
    def from_choice(cls, choice: InputChoice, decision: Sequence[Any]) -> FixedInputChoice:
        chosen = [i for i, v in enumerate(decision) if v]
        weighted = not all(isinstance(v, bool) for v in decision)
        return cls(
            choice.key,
            choice.choose_from,
            chosen,
            [float(decision[i]) for i in chosen] if weighted else None,
            choice.reduction,
            choice.return_mask,
            torch.tensor([float(v) for v in decision])
            if weighted
            else torch.tensor([bool(v) for v in decision]),
        )

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        if isinstance(optional_inputs, Mapping):
            inputs = [optional_inputs[k] for k in self.choose_from]
        else:
            inputs = optional_inputs
        if len(inputs) != self.n_candidates:
            raise MutableError(
                f"InputChoice {self.key!r}: expected {self.n_candidates} inputs, got {len(inputs)}"
            )
        outputs = [inputs[i] for i in self.chosen]
        if self.weights is not None:
            outputs = [out * w for out, w in zip(outputs, self.weights, strict=True)]
        out = reduce_outputs(self.reduction, outputs)
        return (out, self.mask) if self.return_mask else out

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
