"""``DartsMutator``: DARTS's continuous relaxation as a stand-alone mutator (NNI v1.9's
``nni.nas.pytorch.darts.DartsMutator``).

One architecture vector alpha per choice key (``choices``, initialised ``1e-3 * randn``).
``reset()`` makes every choice a softmax(alpha)-weighted sum of its candidates (the weights keep
their autograd graph, so a loss backpropagates into alpha); ``export()`` picks, per layer choice,
the candidate with the largest alpha, per input choice the ``n_chosen`` largest (with
``n_chosen=None``, those at or above the uniform weight 1/n). An input choice's mask (with
``return_mask``) marks every input as connected during the search.

Differences from NNI's: input choices get their own alpha (NNI's connected every input during
the search and ranked them by the alphas of the layer choices named in ``choose_from``), and no
extra "zero" slot is kept (NNI's was never exported).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nascli import space as spaces
from nascli.nas.mutables import InputChoice
from nascli.nas.mutator import Mutator

__all__ = ["DartsMutator"]


def _param_name(key: str) -> str:
    return key.replace(".", "\N{ONE DOT LEADER}")  # ParameterDict names cannot hold "."


class DartsMutator(Mutator):
    """Args: ``model``, the search-space model (binds to its choices)."""

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.choices = nn.ParameterDict(
            {
                _param_name(key): nn.Parameter(1e-3 * torch.randn(spec.n_candidates))
                for key, spec in self.search_space().items()
            }
        )

    def alpha(self, key: str) -> nn.Parameter:
        """The architecture parameters of ``key``."""
        return self.choices[_param_name(key)]

    def probabilities(self) -> dict[str, list[float]]:
        """softmax(alpha) per key."""
        return {key: F.softmax(self.alpha(key).detach(), -1).tolist()
                for key in sorted(self.search_space())}  # fmt: skip

    def sample_search(self) -> dict[str, Any]:
        return {key: F.softmax(self.alpha(key), -1) for key in self.search_space()}

    def on_forward_input_choice(self, mutable: InputChoice, tensor_list: list[Any]) -> Any:
        # The inputs are summed with their softmax weights, but the mask says which inputs are
        # connected (all of them during the search), as NNI's did: models combine masks as
        # booleans (``mask_a | mask_b``).
        out, mask = super().on_forward_input_choice(mutable, tensor_list)
        if mask.dtype != torch.bool:
            mask = torch.ones(mutable.n_candidates, dtype=torch.bool)
        return out, mask

    def sample_final(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, spec in self.search_space().items():
            alpha = self.alpha(key).detach()
            mask = torch.zeros(spec.n_candidates, dtype=torch.bool)
            if isinstance(spec, spaces.LayerChoiceSpec):
                mask[int(alpha.argmax())] = True
            elif spec.n_chosen is None:
                mask = F.softmax(alpha, -1).cpu() >= 1.0 / spec.n_candidates - 1e-12
            elif spec.n_chosen > 0:
                mask[alpha.topk(spec.n_chosen).indices.cpu()] = True
            result[key] = mask
        return result
