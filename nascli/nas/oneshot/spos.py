"""``SPOSTrainer``: single-path one-shot (Guo et al. 2020). The supernet is trained with one
uniformly sampled path per step; then an evolution search scores architectures on the trained
supernet (BatchNorm recalibrated for each) and keeps the best."""

from __future__ import annotations

import json
from typing import Any

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.oneshot.sampling import SinglePathTrainer

__all__ = ["SPOSTrainer", "SPOSSupernetTrainer", "SPOSSupernetTrainingMutator", "SPOSEvolution"]


class SPOSTrainer(SinglePathTrainer):
    """SPOS. Takes the base trainer's arguments and:

    Args:
        population_size: architectures per generation (default 20).
        generations: generations of the evolution after the random first one (default 10:
            up to 220 architectures scored, about what a few epochs of supernet training cost;
            SPOS itself ran 20 generations of 50).
        num_select: parents kept per generation, the best scored so far (default 5).
        mutation_prob: per-key probability to resample a decision in a mutation (0.1).
        score / bn_batches / train_zero_ops: see ``SinglePathTrainer``.
    """

    def __init__(self, *args: Any, population_size: int = 20, generations: int = 10,
                 num_select: int = 5, mutation_prob: float = 0.1, **kwargs: Any):  # fmt: skip
        for name, value in (("population_size", population_size), ("num_select", num_select)):
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= mutation_prob <= 1.0:
            raise UsageError(f"mutation_prob must be between 0 and 1, got {mutation_prob!r}")
        self.population_size = population_size
        self.generations = generations
        self.num_select = num_select
        self.mutation_prob = mutation_prob
        super().__init__(*args, **kwargs)

    def search(self) -> list[tuple[float, spaces.Chosen]]:
        seen: dict[str, float] = {}

        def add(arch: spaces.Chosen) -> None:
            code = json.dumps(arch, sort_keys=True)
            if code not in seen:
                seen[code] = self.score(arch)
                self.best.append((seen[code], arch))

        self.best = []
        for _ in range(self.population_size):
            add(self.sample_uniform())
        for _ in range(self.generations):
            parents = [a for _, a in sorted(self.best, key=lambda i: -i[0])[: self.num_select]]
            children: list[spaces.Chosen] = []
            for _ in range(self.population_size * 10):
                if len(children) >= self.population_size:
                    break
                if self.rng.random() < 0.5 or len(parents) < 2:
                    child = self._mutate(self.rng.choice(parents))
                else:
                    child = self._crossover(*self.rng.sample(parents, 2))
                if json.dumps(child, sort_keys=True) not in seen:
                    children.append(child)
            for child in children:
                add(child)
        return self.best

    def _mutate(self, parent: spaces.Chosen) -> spaces.Chosen:
        return {
            key: self.sample_choice(key) if self.rng.random() < self.mutation_prob else value
            for key, value in parent.items()
        }

    def _crossover(self, a: spaces.Chosen, b: spaces.Chosen) -> spaces.Chosen:
        return {key: (a if self.rng.random() < 0.5 else b)[key] for key in a}


# NNI v1.9's names at NNI's module path (nni.nas.pytorch.spos); imported last: they build on
# SPOSTrainer.
from nascli.nas.oneshot.spos_evolution import SPOSEvolution  # noqa: E402
from nascli.nas.oneshot.spos_supernet import (  # noqa: E402
    SPOSSupernetTrainer,
    SPOSSupernetTrainingMutator,
)
