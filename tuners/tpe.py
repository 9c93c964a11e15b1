"""``TPE``: the tree-structured Parzen estimator over categorical NAS decisions."""

from __future__ import annotations

import bisect
import itertools
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
        self._reset_statistics()

    def update_search_space(self, search_space: Any) -> None:
        super().update_search_space(search_space)
        self._factors = []  # (key position, input index or None, values)
        for pos, key in enumerate(self.keys):
            spec = self.space[key]
            if isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is None:
                self._factors.extend((pos, i, [False, True]) for i in range(spec.n_candidates))
            else:
                self._factors.append((pos, None, self.choice_values(key)))
        self._reset_statistics()
        for arch, reward in self.history:  # results imported before the space was set
            self._add(arch, reward)

    # ------------------------------------------------------------------ statistics

    def _reset_statistics(self) -> None:
        """Empty statistics for the current factors (then fed every result in history order)."""
        self._index = [
            {value: i for i, value in enumerate(values)} for _, _, values in self._factors
        ]
        self._ranked: list[tuple[float, int]] = []  # (-reward, arrival), best first
        self._codes: list[list[int]] = []  # per arrival, the architecture's codes
        self._good = [[0] * len(values) for _, _, values in self._factors]
        self._bad = [[0] * len(values) for _, _, values in self._factors]
        self._n_good = 0
        self._pseudo = [self.prior_weight]  # prior + 1.0 + 1.0 ... (m times), see _distribution
        self._model: tuple[list[list[float]], list[list[float]], list[float]] | None = None

    def _on_result(self, parameter_id: int, arch: Architecture, reward: float) -> None:
        self._add(arch, reward)

    def _add(self, arch: Architecture, reward: float) -> None:
        """Count one result in the good or the bad statistics, and move the results that the
        new ranking pushes across the ``gamma`` boundary (at most two): O(factors) plus one
        insertion into the ranking, whatever the history's length."""
        arrival = len(self._codes)
        self._codes.append(self._encode(arch))
        # The ranking sorted(history, key=reward, reverse=True) makes: best first, ties in
        # arrival order. NaN ranks last (sorted() gives it no consistent place).
        key = (math.inf if math.isnan(reward) else -reward, arrival)
        position = bisect.bisect(self._ranked, key)
        self._ranked.insert(position, key)
        if position < self._n_good:  # it enters the good set and pushes the last one out
            self._count(arrival, self._good, 1)
            pushed = self._ranked[self._n_good][1]
            self._count(pushed, self._good, -1)
            self._count(pushed, self._bad, 1)
        else:
            self._count(arrival, self._bad, 1)
        wanted = max(1, math.ceil(self.gamma * len(self._ranked)))
        while self._n_good < wanted:  # the good set grows by the best of the bad ones
            moved = self._ranked[self._n_good][1]
            self._count(moved, self._bad, -1)
            self._count(moved, self._good, 1)
            self._n_good += 1
        self._model = None

    def _count(self, arrival: int, counts: list[list[int]], delta: int) -> None:
        for factor, code in enumerate(self._codes[arrival]):
            counts[factor][code] += delta

    def _distribution(self, counts: list[int]) -> list[float]:
        # Smoothed frequencies, bit for bit as summing prior_weight and 1.0 per observation
        # gives them (so that proposals do not depend on how the statistics were kept).
        pseudo = self._pseudo
        while len(pseudo) <= max(counts):
            pseudo.append(pseudo[-1] + 1.0)
        smoothed = [pseudo[c] for c in counts]
        total = sum(smoothed)
        return [c / total for c in smoothed]

    def _fitted(self) -> tuple[list[list[float]], list[list[float]], list[float]]:
        """Per factor: l's cumulative weights, log l - log g per category, and l's total;
        computed once per batch of results."""
        if self._model is None:
            cumulative, log_ratio, totals = [], [], []
            for good, bad in zip(self._good, self._bad, strict=True):
                l_dist, g_dist = self._distribution(good), self._distribution(bad)
                cumulative.append(list(itertools.accumulate(l_dist)))
                totals.append(cumulative[-1][-1] + 0.0)
                log_ratio.append(
                    [math.log(lp) - math.log(gp) for lp, gp in zip(l_dist, g_dist, strict=True)]
                )
            self._model = (cumulative, log_ratio, totals)
        return self._model

    # ------------------------------------------------------------------ architectures

    def _encode(self, arch: Architecture) -> list[int]:
        codes = []
        for (pos, index, _), lookup in zip(self._factors, self._index, strict=True):
            codes.append(lookup[arch[pos]] if index is None else int(index in arch[pos]))
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
        cumulative, log_ratio, totals = self._fitted()
        random, best, best_score = self.rng.random, None, -math.inf
        for _ in range(self.n_ei_candidates):
            # What rng.choices(range(k), weights=l)[0] draws, without rebuilding the weights.
            codes = [
                bisect.bisect(cum, random() * total, 0, len(cum) - 1)
                for cum, total in zip(cumulative, totals, strict=True)
            ]
            arch = self._decode(codes)
            if arch in self.tried:
                continue
            score = sum(log_ratio[f][c] for f, c in enumerate(codes))
            if score > best_score:
                best, best_score = arch, score
        return best if best is not None else self.sample_new()

    # ------------------------------------------------------------------ checkpoint

    def load_checkpoint(self, state: Any) -> None:
        """The statistics are not in the checkpoint: they are rebuilt from the history it
        holds (once, on resume), so the checkpoint is no bigger than the base tuner's."""
        super().load_checkpoint(state)
        self._reset_statistics()
        for arch, reward in self.history:
            self._add(arch, reward)
