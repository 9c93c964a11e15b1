"""``TPE``: the tree-structured Parzen estimator over categorical NAS decisions."""

from __future__ import annotations

import math
from typing import Any

from nascli import space as spaces
from tuners.base import Architecture, Tuner, TunerArgumentError

__all__ = ["TpeTuner"]


class TpeTuner(Tuner):
    """After ``n_startup_trials`` random architectures, splits the results into the best
    ``gamma`` fraction and the rest, fits one smoothed categorical distribution per factor to each
    (l: good, g: bad), draws ``n_ei_candidates`` architectures from l and proposes the untried one
    with the largest l/g. Factors: one per layer choice, one per fixed-``n_chosen`` input choice
    (over the combinations), one binary factor per input of an ``n_chosen: null`` choice.

    Args:
        n_startup_trials: random proposals before the model is used (default 10).
        n_ei_candidates: candidates drawn per proposal (default 24).
        gamma: fraction of results counted as good (default 0.25).
        prior_weight: pseudo-count added to every category (default 1.0).
    """

    replayable = True

    def __init__(
        self,
        optimize_mode: str = "maximize",
        seed: int | None = None,
        n_startup_trials: int = 10,
        n_ei_candidates: int = 24,
        gamma: float = 0.25,
        prior_weight: float = 1.0,
    ):
        super().__init__(optimize_mode, seed)
        checks = [
            (
                "n_startup_trials",
                n_startup_trials,
                isinstance(n_startup_trials, int) and n_startup_trials >= 1,
                "a positive integer",
            ),
            (
                "n_ei_candidates",
                n_ei_candidates,
                isinstance(n_ei_candidates, int) and n_ei_candidates >= 1,
                "a positive integer",
            ),
            (
                "gamma",
                gamma,
                isinstance(gamma, (int, float)) and 0 < gamma < 1,
                "a number between 0 and 1 (exclusive)",
            ),
            (
                "prior_weight",
                prior_weight,
                isinstance(prior_weight, (int, float)) and prior_weight > 0,
                "a positive number",
            ),
        ]
        for name, value, ok, allowed in checks:
            if not ok or isinstance(value, bool):
                raise TunerArgumentError(f"classArgs.{name} must be {allowed}, got {value!r}")
        self.n_startup_trials = n_startup_trials
        self.n_ei_candidates = n_ei_candidates
        self.gamma = float(gamma)
        self.prior_weight = float(prior_weight)
        self._factors: list[tuple[int, int | None, list[Any]]] = []

    def update_search_space(self, search_space: Any) -> None:
        super().update_search_space(search_space)
        self._factors = []  # (key position, input index or None, values)
        for pos, key in enumerate(self.keys):
            spec = self.space[key]
            if isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is None:
                self._factors.extend((pos, i, [False, True]) for i in range(spec.n_candidates))
            else:
                self._factors.append((pos, None, self.choice_values(key)))

    def _encode(self, arch: Architecture) -> list[int]:
        codes = []
        for pos, index, values in self._factors:
            if index is None:
                codes.append(values.index(arch[pos]))
            else:
                codes.append(int(index in arch[pos]))
        return codes

    def _decode(self, codes: list[int]) -> Architecture:
        arch: list[Any] = [None] * len(self.keys)
        for (pos, index, values), code in zip(self._factors, codes, strict=True):
            if index is None:
                arch[pos] = values[code]
            else:
                chosen = arch[pos] or ()
                arch[pos] = tuple(sorted((*chosen, index))) if code else chosen
        return tuple(arch)

    def _propose(self, parameter_id: int) -> Architecture:
        if len(self.history) < self.n_startup_trials:
            return self.sample_new()
        ranked = sorted(self.history, key=lambda item: item[1], reverse=True)
        n_good = max(1, math.ceil(self.gamma * len(ranked)))
        good = [self._encode(a) for a, _ in ranked[:n_good]]
        bad = [self._encode(a) for a, _ in ranked[n_good:]]
        l_dist = [self._categorical(good, f) for f in range(len(self._factors))]
        g_dist = [self._categorical(bad, f) for f in range(len(self._factors))]
        best, best_score = None, -math.inf
        for _ in range(self.n_ei_candidates):
            codes = [self.rng.choices(range(len(p)), weights=p)[0] for p in l_dist]
            arch = self._decode(codes)
            if arch in self.tried:
                continue
            score = sum(
                math.log(l_dist[f][c]) - math.log(g_dist[f][c]) for f, c in enumerate(codes)
            )
            if score > best_score:
                best, best_score = arch, score
        return best if best is not None else self.sample_new()

    def _categorical(self, observations: list[list[int]], factor: int) -> list[float]:
        k = len(self._factors[factor][2])
        counts = [self.prior_weight] * k
        for codes in observations:
            counts[codes[factor]] += 1.0
        total = sum(counts)
        return [c / total for c in counts]
