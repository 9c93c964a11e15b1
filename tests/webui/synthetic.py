"""Experiments for web-UI tests and the benchmark, written through the store's own write path.

``make_store`` creates an experiment exactly as ``nascli create`` does (``prepare_experiment`` +
``create_experiment`` on ``tests/e2e/trials``' config and search space) and then records trials the
way the manager does (``add_trial``, ``add_metric``, statuses through ``trials.Ledger``), without
running processes,
so a 10,000-trial experiment takes seconds. The metric of a trial is a function of its choices
plus noise, so the per-choice view has something to show.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

from nascli.experiment.store import ExperimentStore
from nascli.experiment.trials import ExperimentStatus, Ledger, TrialStatus
from tests.experiments import make_experiment

SPACE = {
    "conv1": ["conv3x3", "conv5x5", "maxpool", "skip"],
    "conv2": ["conv3x3", "conv5x5", "dil3x3"],
    "shortcut": ["stem", "conv1", "conv2"],
}
# What each candidate adds to the score (so candidates differ visibly).
_GAIN = {"conv3x3": 0.06, "conv5x5": 0.08, "maxpool": 0.0, "skip": -0.05, "dil3x3": 0.03,
         "stem": 0.0, "conv1": 0.02, "conv2": 0.04}  # fmt: skip


def parameters(rng: random.Random) -> dict[str, Any]:
    params = {}
    for key, names in SPACE.items():
        idx = rng.randrange(len(names))
        if key == "shortcut":
            params[key] = {"_value": [names[idx]], "_idx": [idx]}
        else:
            params[key] = {"_value": names[idx], "_idx": idx}
    return params


def score(params: dict[str, Any], rng: random.Random) -> float:
    total = 0.7
    for value in params.values():
        names = value["_value"] if isinstance(value["_value"], list) else [value["_value"]]
        total += sum(_GAIN[n] for n in names)
    return round(total + rng.gauss(0, 0.02), 4)


def make_store(
    tmp_path: Path,
    n_trials: int,
    *,
    epochs: int = 5,
    running: int = 0,
    failed_every: int = 0,
    seed: int = 0,
    name: str = "synthetic",
    status: str = "DONE",
) -> ExperimentStore:
    """An experiment with ``n_trials`` ended trials (every ``failed_every``-th FAILED) and then
    ``running`` RUNNING ones (half their epochs reported). Returns the open store."""
    store = make_experiment(
        tmp_path, experimentName=name, maxTrialNum=max(1, n_trials + running), trialConcurrency=2,
        maxExecDuration="48h",
    )
    rng = random.Random(seed)
    ledger = Ledger(store)
    start = time.time() - 10 * (n_trials + running) - 100
    with store.transaction():
        ledger.start_experiment(resumed=False, started=start)
        for seq in range(n_trials + running):
            trial_id = str(seq)  # as the manager names trials
            params = parameters(rng)
            final = score(params, rng)
            begin = start + 10 * seq
            store.add_trial(trial_id, seq, seq, params)
            is_running = seq >= n_trials
            failed = bool(failed_every) and not is_running and seq % failed_every == 1
            shown = epochs // 2 if is_running else (1 if failed else epochs)
            ledger.launch(trial_id, pid=0, token=None, started=begin, gpus=None)
            for epoch in range(shown):
                value = final * (1 - math.exp(-(epoch + 1))) + rng.gauss(0, 0.005)
                store.add_metric(trial_id, epoch, "PERIODICAL", round(value, 4), begin + epoch)
            if failed:
                ledger.finish(trial_id, TrialStatus.FAILED,
                              "exit code 1 (RuntimeError: trial crashed on purpose)",
                              ended=begin + 3, exit_code=1)  # fmt: skip
            elif not is_running:
                store.add_metric(trial_id, epochs, "FINAL", final, begin + epochs)
                ledger.finish(trial_id, TrialStatus.SUCCEEDED, None, ended=begin + epochs,
                              exit_code=0, final=final)  # fmt: skip
        store.update_experiment(
            next_parameter_id=n_trials + running, exec_seconds=10.0 * (n_trials + running)
        )
        if status != "RUNNING":
            ledger.end_experiment(ExperimentStatus(status), None,
                                  ended=start + 10 * (n_trials + running))  # fmt: skip
    return store
