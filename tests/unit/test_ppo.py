"""PPOTuner learns: after a few updates its policy favours the decisions that were rewarded, and
the coefficients given in classArgs are the ones used (NNI's were silently ignored)."""

from __future__ import annotations

import torch

from tuners import PPOTuner, create_tuner

SPACE = {
    key: {"_type": "layer_choice", "_value": ["good", "b", "c", "d"]} for key in ("k1", "k2", "k3")
}


def prob_of_good(tuner: PPOTuner) -> float:
    """Mean probability of candidate 0 at each step, actions all 0 (teacher forcing)."""
    with torch.no_grad():
        _, logps, _, _ = tuner._run(torch.zeros(1, 3, dtype=torch.long))
    return float(logps.exp().mean())


def test_policy_moves_toward_rewarded_decisions() -> None:
    tuner = create_tuner(
        "PPOTuner", {"seed": 0, "trials_per_update": 10, "lr": 0.01, "minibatch_size": 5}
    )
    tuner.update_search_space(SPACE)
    before = prob_of_good(tuner)
    for pid in range(50):
        params = tuner.generate_parameters(pid)
        reward = sum(p["_idx"] == 0 for p in params.values())
        tuner.receive_trial_result(pid, params, float(reward))
        tuner.trial_end(pid, True)
    assert tuner.updates == 5
    after = prob_of_good(tuner)
    assert 0.2 < before < 0.3  # about uniform over 4 candidates at the start
    assert after > before + 0.1, (before, after)


def test_minimize_moves_the_other_way() -> None:
    tuner = create_tuner(
        "PPOTuner",
        {"seed": 0, "trials_per_update": 10, "lr": 0.01, "optimize_mode": "minimize"},
    )
    tuner.update_search_space(SPACE)
    before = prob_of_good(tuner)
    for pid in range(50):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, float(sum(p["_idx"] == 0 for p in params.values())))
        tuner.trial_end(pid, True)
    assert prob_of_good(tuner) < before - 0.05


def test_class_args_are_used() -> None:
    tuner = create_tuner("PPOTuner", {"lr": 0.02, "cliprange": 0.3, "hidden_size": 16})
    tuner.update_search_space(SPACE)
    assert tuner.optimizer.param_groups[0]["lr"] == 0.02
    assert tuner.cliprange == 0.3
    assert tuner.policy.cell.hidden_size == 16


def test_failed_trials_are_not_learned_from() -> None:
    tuner = create_tuner("PPOTuner", {"seed": 0, "trials_per_update": 2})
    tuner.update_search_space(SPACE)
    for pid in range(4):
        tuner.generate_parameters(pid)
        tuner.trial_end(pid, False)
    assert tuner.updates == 0 and tuner.buffer == [] and tuner.outstanding == {}
