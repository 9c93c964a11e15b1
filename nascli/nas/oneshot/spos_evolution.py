"""``SPOSEvolution``: the SPOS search as a tuner of a multi-trial experiment (NNI v1.9's
``nni.nas.pytorch.spos.SPOSEvolution``, with its constructor arguments).

Generation 0 is ``num_population`` random architectures. Each later generation keeps the
``num_select`` best architectures evaluated so far as parents and breeds ``num_mutation``
mutants (each decision resampled with probability ``m_prob``) and ``num_crossover`` crossovers
(each decision from one of two parents), filling the rest of ``num_population`` at random;
no architecture is proposed twice. After ``max_epochs`` generations the tuner is done
(``NoMoreTrialError``).

Trials run concurrently, so a generation may be used up while some of its results are still out:
the next generation is then bred from the results that are in (NNI's tuner instead waited for
all of them through a callback outside the tuner contract). Like every nascli tuner it takes
``optimize_mode`` and ``seed``, takes input choices too (NNI's took layer choices only) and
resumes exactly from its checkpoint. Torch-free.
"""

from __future__ import annotations

from typing import Any

from tuners.base import Architecture, NoMoreTrialError, Tuner, TunerArgumentError, _arch

__all__ = ["SPOSEvolution"]


class SPOSEvolution(Tuner):
    replayable = True

    def __init__(
        self,
        max_epochs: int = 20,
        num_select: int = 10,
        num_population: int = 50,
        m_prob: float = 0.1,
        num_crossover: int = 25,
        num_mutation: int = 25,
        optimize_mode: str = "maximize",
        seed: int | None = None,
    ):
        super().__init__(optimize_mode, seed)
        for name, value in (("max_epochs", max_epochs), ("num_select", num_select),
                            ("num_population", num_population)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TunerArgumentError(f"classArgs.{name} must be a positive integer, "
                                         f"got {value!r}")  # fmt: skip
        for name, value in (("num_crossover", num_crossover), ("num_mutation", num_mutation)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TunerArgumentError(f"classArgs.{name} must be a non-negative integer, "
                                         f"got {value!r}")  # fmt: skip
        if not 0.0 <= m_prob <= 1.0:
            raise TunerArgumentError(f"classArgs.m_prob must be between 0 and 1, got {m_prob!r}")
        self.max_epochs = max_epochs
        self.num_select = num_select
        self.num_population = num_population
        self.m_prob = m_prob
        self.num_crossover = num_crossover
        self.num_mutation = num_mutation
        self.epoch = -1  # the generation being proposed
        self.queue: list[Architecture] = []

    def _propose(self, parameter_id: int) -> Architecture:
        while not self.queue:
            if self.epoch + 1 >= self.max_epochs:
                raise NoMoreTrialError(f"SPOSEvolution: all {self.max_epochs} generations done")
            self.epoch += 1
            self.queue = self._generation()
            if not self.queue:
                raise NoMoreTrialError("every architecture of the search space has been proposed")
        return self.queue.pop(0)

    def _generation(self) -> list[Architecture]:
        planned: set[Architecture] = set()
        out: list[Architecture] = []

        def add(make: Any) -> None:
            try:
                arch = self.sample_new(make, attempts=10)
            except NoMoreTrialError:
                return
            if arch not in planned:
                planned.add(arch)
                self.tried.add(arch)  # reserved: later picks of this generation avoid it
                out.append(arch)

        parents = [a for a, _ in sorted(self.history, key=lambda item: -item[1])]
        parents = list(dict.fromkeys(parents))[: self.num_select]
        if self.epoch > 0 and parents:
            for _ in range(self.num_mutation):
                add(lambda: self._mutate(self.rng.choice(parents)))
            for _ in range(self.num_crossover):
                add(lambda: self._crossover(self.rng.choice(parents), self.rng.choice(parents)))
        while len(out) < self.num_population:
            before = len(out)
            add(None)
            if len(out) == before:
                break
        return out

    def _mutate(self, parent: Architecture) -> Architecture:
        return tuple(self.sample_choice(key) if self.rng.random() < self.m_prob else value
                     for key, value in zip(self.keys, parent, strict=True))  # fmt: skip

    def _crossover(self, a: Architecture, b: Architecture) -> Architecture:
        return tuple(x if self.rng.random() < 0.5 else y for x, y in zip(a, b, strict=True))

    def _save_own(self) -> Any:
        return {"epoch": self.epoch, "queue": [list(a) for a in self.queue]}

    def _load_own(self, state: Any) -> None:
        self.epoch = int(state["epoch"])
        self.queue = [_arch(a) for a in state["queue"]]
