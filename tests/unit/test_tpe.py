"""TPE keeps its statistics as results arrive: the proposals are exactly those of the algorithm
that re-ranked and re-encoded the whole history on every call (``ReferenceTpe``, main's code as
of issue 19, kept here verbatim in substance), for any seed, space, mode and order of calls, and
a proposal's cost does not grow with the history."""

from __future__ import annotations

import math
import random

import pytest

from tests.unit.test_tuner_contract import ANY_INPUTS_SPACE, SHARED_KEYS_SPACE, TRIAL_SPACE
from tuners import TpeTuner
from tuners.base import Architecture

WIDE_SPACE = {
    f"k{i}": {"_type": "layer_choice", "_value": [f"op{j}" for j in range(8)]} for i in range(8)
}


class ReferenceTpe(TpeTuner):
    """TPE as it was before issue 19: every proposal sorts the history and counts it again."""

    def _propose(self, parameter_id: int) -> Architecture:
        if len(self.history) < self.n_startup_trials:
            return self.sample_new()
        ranked = sorted(self.history, key=lambda item: item[1], reverse=True)
        n_good = max(1, math.ceil(self.gamma * len(ranked)))
        good = [self._reference_encode(a) for a, _ in ranked[:n_good]]
        bad = [self._reference_encode(a) for a, _ in ranked[n_good:]]
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

    def _reference_encode(self, arch: Architecture) -> list[int]:
        codes = []
        for pos, index, values in self._factors:
            if index is None:
                codes.append(values.index(arch[pos]))
            else:
                codes.append(int(index in arch[pos]))
        return codes

    def _categorical(self, observations: list[list[int]], factor: int) -> list[float]:
        k = len(self._factors[factor][2])
        counts = [self.prior_weight] * k
        for codes in observations:
            counts[codes[factor]] += 1.0
        total = sum(counts)
        return [c / total for c in counts]


def score(params, rng: random.Random, ties: bool) -> float:
    """A noisy objective; with ``ties`` a coarse one, so that many results are equal and the
    ranking's tie order matters."""
    total = sum(
        (sum(v["_idx"]) if isinstance(v["_idx"], list) else v["_idx"]) * (i + 1)
        for i, (_, v) in enumerate(sorted(params.items()))
    )
    return float(total % 5) if ties else total + rng.gauss(0, 2)


def drive(tuner: TpeTuner, space, n: int, seed: int, ties: bool, concurrency: int) -> list:
    """Proposals of ``n`` trials run ``concurrency`` at a time (results arrive out of order;
    every seventh trial fails)."""
    tuner.update_search_space(space)
    tuner.import_data([{"parameter": tuner.to_parameters(tuner.sample_uniform()), "value": 1.0}])
    rng = random.Random(seed)
    running, out = [], []
    for pid in range(n):
        params = tuner.generate_parameters(pid)
        out.append(params)
        running.append((pid, params))
        if len(running) >= concurrency:
            done_pid, done = running.pop(rng.randrange(len(running)))
            if done_pid % 7 == 3:
                tuner.trial_end(done_pid, False)
            else:
                tuner.receive_trial_result(done_pid, done, score(done, rng, ties))
                tuner.trial_end(done_pid, True)
    return out


CASES = [
    (TRIAL_SPACE, {}, False, 1),
    (ANY_INPUTS_SPACE, {"optimize_mode": "minimize"}, False, 3),
    (ANY_INPUTS_SPACE, {"gamma": 0.1, "prior_weight": 0.3}, True, 2),
    (SHARED_KEYS_SPACE, {"n_startup_trials": 3, "n_ei_candidates": 5}, True, 4),
    (WIDE_SPACE, {"gamma": 0.5}, True, 2),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proposals_are_those_of_the_full_recount(case: int, seed: int) -> None:
    space, args, ties, concurrency = CASES[case]
    n = 11 if space is TRIAL_SPACE else 150  # the trial space has 12 architectures
    ours = drive(TpeTuner(seed=seed, **args), space, n, seed, ties, concurrency)
    reference = drive(ReferenceTpe(seed=seed, **args), space, n, seed, ties, concurrency)
    assert ours == reference


def test_resumed_from_a_checkpoint_it_proposes_what_it_would_have() -> None:
    def results(tuner: TpeTuner, start: int, n: int) -> list:
        out = []
        for pid in range(start, start + n):
            params = tuner.generate_parameters(pid)
            out.append(params)
            tuner.receive_trial_result(pid, params, score(params, random.Random(pid), True))
            tuner.trial_end(pid, True)
        return out

    whole = ReferenceTpe(seed=5, gamma=0.2)
    whole.update_search_space(WIDE_SPACE)
    expected = results(whole, 0, 120)
    first = TpeTuner(seed=5, gamma=0.2)
    first.update_search_space(WIDE_SPACE)
    got = results(first, 0, 60)
    state = first.save_checkpoint()
    assert state["own"] is None  # the statistics are rebuilt from the history, not stored
    resumed = TpeTuner(seed=5, gamma=0.2)
    resumed.update_search_space(WIDE_SPACE)
    resumed.load_checkpoint(state)
    assert got + results(resumed, 60, 60) == expected


class UnreadableHistory(list):
    """A history that may be appended to and measured, not read."""

    def __iter__(self):
        raise AssertionError("a proposal read the whole history")

    def __getitem__(self, index):
        raise AssertionError("a proposal read the history")


def test_a_proposal_does_not_read_the_history() -> None:
    """The cost of a proposal is independent of the history's length because it never walks
    the history (the timing is measured in benchmarks/manager_scaling.py)."""
    tuner = TpeTuner(seed=0)
    tuner.update_search_space(WIDE_SPACE)
    tuner.history = UnreadableHistory()
    rng = random.Random(0)
    for pid in range(300):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, rng.random())
        tuner.trial_end(pid, True)
    assert len(tuner.history) == 300 and tuner._n_good == math.ceil(0.25 * 300)
