"""The search-space API (torch): mutables, mutators, fixed architectures, classic NAS."""

from nascli.nas.classic import get_and_apply_next_architecture
from nascli.nas.fixed import (
    FixedArchitecture,
    FixedInputChoice,
    FixedLayerChoice,
    apply_fixed_architecture,
)
from nascli.nas.mutables import InputChoice, LayerChoice, Mutable, MutableScope
from nascli.nas.mutator import BaseMutator, Mutator, model_search_space
from nascli.nas.random import RandomMutator

__all__ = [
    "Mutable",
    "LayerChoice",
    "InputChoice",
    "MutableScope",
    "BaseMutator",
    "Mutator",
    "RandomMutator",
    "FixedArchitecture",
    "FixedLayerChoice",
    "FixedInputChoice",
    "apply_fixed_architecture",
    "get_and_apply_next_architecture",
    "model_search_space",
]
