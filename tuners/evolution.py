"""``Evolution``: regularized (aging) evolution, Real et al. 2019, over NAS decisions."""

from __future__ import annotations

from collections import deque
from typing import Any

from nascli import space as spaces
from tuners.base import Architecture, Tuner, TunerArgumentError, _arch

__all__ = ["EvolutionTuner"]


class EvolutionTuner(Tuner):
    """Until ``population_size`` results are in, proposes random architectures. Then each
    proposal samples ``sample_size`` members of the population, takes the best and mutates one
    of its decisions (a child always differs from its parent and from every architecture tried
    before, while the space has untried ones). Each result joins the population; the oldest
    member dies once it is over ``population_size`` (aging). Failed trials simply never join.
    Works with any number of outstanding trials.

    Args:
        population_size: the population kept alive (default 20).
        sample_size: the tournament size (default 5, at most ``population_size``).
    """

    replayable = True

    def __init__(
        self,
        optimize_mode: str = "maximize",
        seed: int | None = None,
        population_size: int = 20,
        sample_size: int = 5,
    ):
        super().__init__(optimize_mode, seed)
        for name, value in (("population_size", population_size), ("sample_size", sample_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TunerArgumentError(
                    f"classArgs.{name} must be a positive integer, got {value!r}"
                )
        if sample_size > population_size:
            raise TunerArgumentError(
                f"classArgs.sample_size ({sample_size}) must not exceed population_size "
                f"({population_size})"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[Architecture, float]] = deque()

    def _propose(self, parameter_id: int) -> Architecture:
        if len(self.population) < self.population_size:
            return self.sample_new()
        return self.sample_new(self._mutated_tournament_winner, attempts=50)

    def _mutated_tournament_winner(self) -> Architecture:
        contestants = self.rng.sample(list(self.population), self.sample_size)
        parent = max(contestants, key=lambda member: member[1])[0]
        return self.mutate(parent)

    def mutate(self, parent: Architecture) -> Architecture:
        """Change exactly one decision of ``parent`` (one that can change)."""
        mutable = [i for i, key in enumerate(self.keys) if len(self.choice_values(key)) > 1]
        if not mutable:
            return parent
        i = self.rng.choice(mutable)
        key = self.keys[i]
        spec = self.space[key]
        value = parent[i]
        if isinstance(spec, spaces.LayerChoiceSpec):
            new = self.rng.choice([v for v in range(spec.n_candidates) if v != value])
        elif spec.n_chosen is None:
            flip = self.rng.randrange(spec.n_candidates)
            new = tuple(sorted(set(value) ^ {flip}))
        else:  # swap one chosen input for one that is not chosen
            out = self.rng.choice(value)
            into = self.rng.choice([v for v in range(spec.n_candidates) if v not in value])
            new = tuple(sorted((set(value) - {out}) | {into}))
        return parent[:i] + (new,) + parent[i + 1 :]

    def _on_result(self, parameter_id: int, arch: Architecture, reward: float) -> None:
        self.population.append((arch, reward))
        while len(self.population) > self.population_size:
            self.population.popleft()

    def _save_own(self) -> Any:
        return {"population": [[list(a), r] for a, r in self.population]}

    def _load_own(self, state: Any) -> None:
        self.population = deque((_arch(a), float(r)) for a, r in state["population"])
