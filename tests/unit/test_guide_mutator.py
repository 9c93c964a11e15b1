"""The custom RandomMutator from NNI v1.9's NAS guide runs with only its imports changed."""
# ruff: noqa: E501
# fmt: off

import torch
import torch.nn.functional as F

from nascli.nas import apply_fixed_architecture
from nascli.nas.mutables import InputChoice, LayerChoice
from nascli.nas.mutator import Mutator
from tests.models import NaiveSpace, ScopedSpace, forward_backward


class RandomMutator(Mutator):
    def __init__(self, model):
        super().__init__(model)

    def sample_search(self):
        result = dict()
        for mutable in self.mutables:
            if isinstance(mutable, LayerChoice):
                gen_index = torch.randint(high=mutable.length, size=(1, ))
                result[mutable.key] = F.one_hot(gen_index, num_classes=mutable.length).view(-1).bool()
            elif isinstance(mutable, InputChoice):
                if mutable.n_chosen is None:
                    result[mutable.key] = torch.randint(high=2, size=(mutable.n_candidates,)).view(-1).bool()
                else:
                    perm = torch.randperm(mutable.n_candidates)
                    mask = [i in perm[:mutable.n_chosen] for i in range(mutable.n_candidates)]
                    result[mutable.key] = torch.tensor(mask, dtype=torch.bool)  # pylint: disable=not-callable
        return result

    def sample_final(self):
        return self.sample_search()


# fmt: on


def test_the_nas_guide_custom_mutator_runs_unchanged():
    for cls in (NaiveSpace, ScopedSpace):
        model = cls()
        mutator = RandomMutator(model)
        forward_backward(model, mutator, steps=5)
        apply_fixed_architecture(cls(), mutator.export())
