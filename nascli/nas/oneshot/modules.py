"""The modules one-shot trainers put in place of ``LayerChoice`` / ``InputChoice``.

- ``PathSamplingLayerChoice`` / ``PathSamplingInputChoice``: run only the sampled path (SPOS,
  random single-path, ENAS); the trainer sets ``sampled`` on every module of a key.
- ``MixedLayerChoice`` / ``MixedInputChoice``: a weighted sum of every candidate with weights
  given by a function of the key's architecture parameters (DARTS: softmax(alpha)). The
  parameters live in the trainer (one per key, shared by modules with that key), not in the
  module, so ``model.parameters()`` holds only the network's weights.

Each keeps the original choice's key, candidate names, reduction and ``return_mask`` (then
returning ``(output, mask)`` as the choice did), so exports name candidates
and ``apply_fixed_architecture`` can build the plain model from a fresh instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nascli.errors import MutableError
from nascli.nas.mutables import InputChoice, LayerChoice
from nascli.nas.mutator import reduce_outputs

__all__ = [
    "with_mask",
    "PathSamplingLayerChoice",
    "PathSamplingInputChoice",
    "MixedLayerChoice",
    "MixedInputChoice",
]


class _LayerCandidates(nn.Module):
    def __init__(self, choice: LayerChoice):
        super().__init__()
        self.key = choice.key
        self.names = list(choice.names)
        self.reduction = choice.reduction
        self.return_mask = choice.return_mask
        for name in self.names:
            self.add_module(name, choice[name])

    def candidate(self, index: int) -> nn.Module:
        return self._modules[self.names[index]]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.names)


class _InputCandidates(nn.Module):
    def __init__(self, choice: InputChoice):
        super().__init__()
        self.key = choice.key
        self.n_candidates = choice.n_candidates
        self.n_chosen = choice.n_chosen
        self.choose_from = list(choice.choose_from)
        self.reduction = choice.reduction
        self.return_mask = choice.return_mask

    def inputs(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        if isinstance(optional_inputs, Mapping):
            return [optional_inputs[k] for k in self.choose_from]
        if len(optional_inputs) != self.n_candidates:
            raise MutableError(
                f"InputChoice {self.key!r}: expected {self.n_candidates} inputs, "
                f"got {len(optional_inputs)}"
            )
        return list(optional_inputs)


def with_mask(module: Any, out: Any, mask: Any) -> Any:
    """``(out, mask)`` when the replaced choice had ``return_mask=True``, else ``out``. A mask
    given as indices becomes a bool vector over the candidates."""
    if not module.return_mask:
        return out
    if not torch.is_tensor(mask):
        n = len(module) if isinstance(module, _LayerCandidates) else module.n_candidates
        picked = [mask] if isinstance(mask, int) else list(mask)
        mask = torch.zeros(n, dtype=torch.bool)
        mask[picked] = True
    return out, mask


class PathSamplingLayerChoice(_LayerCandidates):
    """Runs the sampled candidate(s): ``sampled`` is an index or a list of indices."""

    def __init__(self, choice: LayerChoice):
        super().__init__(choice)
        self.sampled: int | list[int] = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        picked = [self.sampled] if isinstance(self.sampled, int) else self.sampled
        out = reduce_outputs(self.reduction, [self.candidate(i)(*args, **kwargs) for i in picked])
        return with_mask(self, out, picked)


class PathSamplingInputChoice(_InputCandidates):
    """Uses the sampled inputs (``sampled``: a list of indices; may be empty: returns None)."""

    def __init__(self, choice: InputChoice):
        super().__init__(choice)
        self.sampled: list[int] = list(range(choice.n_chosen or 1))

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        inputs = self.inputs(optional_inputs)
        out = reduce_outputs(self.reduction, [inputs[i] for i in self.sampled])
        return with_mask(self, out, self.sampled)


class MixedLayerChoice(_LayerCandidates):
    """Sum of all candidates' outputs weighted by ``weights()`` (a 1-d tensor per call)."""

    def __init__(self, choice: LayerChoice, weights: Callable[[], torch.Tensor]):
        super().__init__(choice)
        self._weights = weights

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        outs = torch.stack([self.candidate(i)(*args, **kwargs) for i in range(len(self))])
        weights = self._weights()
        w = weights.view(-1, *([1] * (outs.dim() - 1)))
        return with_mask(self, (outs * w.to(outs.dtype)).sum(0), weights)


class MixedInputChoice(_InputCandidates):
    """Sum of all inputs weighted by ``weights()``."""

    def __init__(self, choice: InputChoice, weights: Callable[[], torch.Tensor]):
        super().__init__(choice)
        self._weights = weights

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        outs = torch.stack(self.inputs(optional_inputs))
        w = self._weights().view(-1, *([1] * (outs.dim() - 1)))
        # every input is connected (models combine input masks as booleans)
        return with_mask(self, (outs * w.to(outs.dtype)).sum(0), list(range(self.n_candidates)))
