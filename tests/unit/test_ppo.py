"""PPOTuner learns: after a few updates its policy favours the decisions that were rewarded, and
the coefficients given in classArgs are the ones used (NNI's were silently ignored)."""

from __future__ import annotations

import json
import math

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


def min_probability(tuner: PPOTuner) -> float:
    """The smallest probability any option has at any step, along the policy's own samples."""
    with torch.no_grad():
        taken, _, _, _ = tuner._run(None, 32)
        lowest = 1.0
        for t in range(len(tuner.steps)):
            partial = taken.clone()
            probs = []
            for option in range(tuner.steps[t][1]):
                partial[:, t] = option
                _, logps, _, _ = tuner._run(partial)
                probs.append(logps[:, t].exp())
            lowest = min(lowest, float(torch.stack(probs).min()))
    return lowest


def drive_toward_one_architecture(tuner: PPOTuner, n: int) -> None:
    tuner.update_search_space(SPACE)
    for pid in range(n):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, float(all(p["_idx"] == 0 for p in params.values())))
        tuner.trial_end(pid, True)


def test_with_defaults_the_policy_cannot_collapse() -> None:
    """A large learning rate pushes hard toward one architecture; with the default bounded
    logits no option falls below 1 / (1 + 3 e^3) of a 4-way choice, where unbounded logits and
    no entropy bonus (NNI's defaults) let options all but vanish."""
    bounded = create_tuner("PPOTuner", {"seed": 0, "lr": 0.05, "trials_per_update": 8})
    drive_toward_one_architecture(bounded, 60)
    collapsing = create_tuner(
        "PPOTuner",
        {"seed": 0, "lr": 0.05, "trials_per_update": 8, "ent_coef": 0.0, "tanh_constant": 0.0},
    )
    drive_toward_one_architecture(collapsing, 60)
    floor = 1 / (1 + 3 * math.exp(3))
    assert min_probability(bounded) >= floor * 0.999
    assert min_probability(collapsing) < floor


def test_checkpoint_is_exact_and_does_not_grow_with_the_history() -> None:
    tuner = create_tuner("PPOTuner", {"seed": 0, "trials_per_update": 5})
    drive_toward_one_architecture(tuner, 20)
    first = json.dumps(tuner.save_checkpoint()["own"])
    for pid in range(20, 50):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, 1.0)
        tuner.trial_end(pid, True)
    state = tuner.save_checkpoint()
    assert len(json.dumps(state["own"])) <= len(first) + 200  # the policy's size, not history's
    restored = create_tuner("PPOTuner", {"seed": 0, "trials_per_update": 5})
    restored.update_search_space(SPACE)
    restored.load_checkpoint(json.loads(json.dumps(state)))
    for a, b in zip(tuner.policy.state_dict().values(), restored.policy.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)
    assert [tuner.generate_parameters(100 + i) for i in range(5)] == [
        restored.generate_parameters(100 + i) for i in range(5)
    ]
