"""``RandomMutator``: uniform random architectures, resampled at every ``reset()``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from nascli.nas.mutables import InputChoice, LayerChoice
from nascli.nas.mutator import Mutator

__all__ = ["RandomMutator"]


class RandomMutator(Mutator):
    """Samples each layer choice uniformly, and for each input choice ``n_chosen`` distinct inputs
    (with ``n_chosen=None``, each input independently with probability 1/2, so possibly none).

    Args:
        model: the search-space model.
        seed: seeds a private generator, so the sequence of samples is reproducible and does not
            disturb (or depend on) the global torch RNG. None uses the global RNG.
    """

    def __init__(self, model: nn.Module, seed: int | None = None):
        super().__init__(model)
        self._generator: torch.Generator | None = None
        if seed is not None:
            self._generator = torch.Generator().manual_seed(seed)
        self.reset()

    def sample_search(self) -> dict[str, Any]:
        g = self._generator
        result: dict[str, Any] = {}
        for mutable in self.mutables:
            if isinstance(mutable, LayerChoice):
                index = int(torch.randint(len(mutable), (1,), generator=g))
                mask = torch.zeros(len(mutable), dtype=torch.bool)
                mask[index] = True
                result[mutable.key] = mask
            elif isinstance(mutable, InputChoice):
                n = mutable.n_candidates
                if mutable.n_chosen is None:
                    result[mutable.key] = torch.randint(2, (n,), generator=g).bool()
                else:
                    mask = torch.zeros(n, dtype=torch.bool)
                    mask[torch.randperm(n, generator=g)[: mutable.n_chosen]] = True
                    result[mutable.key] = mask
        return result

    def sample_final(self) -> dict[str, Any]:
        """The architecture in use since the last ``reset()``."""
        return dict(self._cache)
