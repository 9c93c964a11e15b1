"""A finished experiment of any size, written in seconds through the store's own write functions.

``build_store`` writes what the manager writes for an experiment of ``n`` trials, in the order
it writes it (``create_experiment``, then per trial ``add_trial`` with parameters drawn in the
tuners' format, ``Ledger.launch`` to RUNNING and the node it runs on (``localhost``, as the
collector records a local trial), ``add_metric`` for each intermediate and the final
result, ``Ledger.finish`` to its end (with its event for failures and cancellations), and the
experiment's end through the ledger), one transaction per ``batch`` trials as the
manager commits one per turn. It starts no process, so a 10,000-trial store takes a few seconds
instead of the minutes a real run of trivial trials takes. ``benchmarks/reading_at_scale.py``
checks its stores against one a real manager wrote (same tables, columns set per status, metric
kinds and events).

Deterministic for a given ``seed`` and ``t0``: every time a reading command prints is
``t0`` plus an offset (the trials' ``created`` and events' times, which no reading command
prints, come from the clock). Every 20th trial fails after its intermediate results, every 50th
is cancelled, the rest succeed with ``{"default": accuracy, "loss": loss}``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from nascli.experiment.store import ExperimentStore, create_experiment
from nascli.experiment.trials import ExperimentStatus, Ledger, TrialStatus

#: Four layer choices and an input choice choosing two: 24,576 architectures.
SEARCH_SPACE: dict[str, Any] = {
    **{
        f"cell{i}": {
            "_type": "layer_choice",
            "_value": ["conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5", "dilconv3x3",
                       "dilconv5x5", "maxpool", "skip"],
        }
        for i in range(4)
    },
    "skipin": {
        "_type": "input_choice",
        "_value": {"candidates": ["stem", "cell0", "cell1", "cell2"], "n_chosen": 2},
    },
}  # fmt: skip

T0 = 1_700_000_000.0


def config_dict(n: int, optimize_mode: str = "maximize") -> tuple[dict[str, Any], str]:
    """The resolved config (as ``nascli create`` stores it) of a Random experiment of ``n``
    trials, and its YAML text; read through the real config loader."""
    import tempfile

    import yaml

    from nascli.experiment.config import load_config

    doc = {
        "experimentName": "reading",
        "trialConcurrency": 2,
        "maxTrialNum": n,
        "searchSpacePath": "search_space.json",
        "tuner": {"builtinTunerName": "Random",
                  "classArgs": {"seed": 1, "optimize_mode": optimize_mode}},
        "trial": {"command": "python trial.py", "codeDir": "."},
    }  # fmt: skip
    text = yaml.safe_dump(doc)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "search_space.json").write_text(json.dumps(SEARCH_SPACE))
        (Path(tmp) / "config.yml").write_text(text)
        return load_config(Path(tmp) / "config.yml").to_dict(), text


def build_store(
    n: int,
    seed: int = 0,
    metrics_per_trial: int = 10,
    t0: float = T0,
    batch: int = 2,
    running: int = 0,
    optimize_mode: str = "maximize",
    dict_finals: bool = True,
) -> ExperimentStore:
    """Create (under ``$NASCLI_HOME``) an experiment with ``n`` trials; the last ``running`` of
    them are left RUNNING and the experiment with them (otherwise it is DONE). Final results are
    ``{"default", "loss"}`` dicts, or plain numbers when not ``dict_finals``."""
    config, text = config_dict(n, optimize_mode)
    store = create_experiment(config, text, SEARCH_SPACE, "reading", "bench")
    rng = random.Random(seed)
    ledger = Ledger(store)
    store.update_experiment(started=t0)
    clock = t0
    for first in range(0, n, batch):
        with store.transaction():
            for seq in range(first, min(n, first + batch)):
                clock = _write_trial(store, ledger, rng, seq, clock, metrics_per_trial,
                                     seq >= n - running, dict_finals)  # fmt: skip
            store.update_experiment(next_parameter_id=min(n, first + batch))
    with store.transaction():
        if running:
            store.update_experiment(exec_seconds=clock - t0)
        else:
            reason = f"maxTrialNum {n} reached"
            ledger.no_more_trials(reason)
            ledger.end_experiment(
                ExperimentStatus.DONE, reason, ended=clock + 0.5, exec_seconds=clock + 0.5 - t0
            )
    return store


def random_parameters(rng: random.Random) -> dict[str, Any]:
    """Parameters in the format tuners propose (``{key: {"_value", "_idx"}}``, keys sorted),
    drawn uniformly (not through a tuner, so that the stores stay the same when a tuner's
    sequence changes)."""
    parameters: dict[str, Any] = {}
    for key, spec in sorted(SEARCH_SPACE.items()):
        if spec["_type"] == "layer_choice":
            idx = rng.randrange(len(spec["_value"]))
            parameters[key] = {"_value": spec["_value"][idx], "_idx": idx}
        else:
            names = spec["_value"]["candidates"]
            chosen = sorted(rng.sample(range(len(names)), spec["_value"]["n_chosen"]))
            parameters[key] = {"_value": [names[i] for i in chosen], "_idx": chosen}
    return parameters


def _write_trial(
    store: ExperimentStore,
    ledger: Ledger,
    rng: random.Random,
    seq: int,
    clock: float,
    metrics_per_trial: int,
    still_running: bool,
    dict_finals: bool,
) -> float:
    trial_id = str(seq)
    parameters = random_parameters(rng)
    store.add_trial(trial_id, seq, seq, parameters)
    started = clock + 0.01
    ledger.launch(trial_id, 10_000 + seq, f"tok{seq}", started, None)
    store.update_trial(trial_id, node="localhost")  # as the collector records a local launch
    accuracy = rng.uniform(0.5, 0.99)
    when = started
    for step in range(metrics_per_trial):
        when += 0.1
        value = round(accuracy * (step + 1) / metrics_per_trial, 6)
        store.add_metric(trial_id, step, "PERIODICAL", value, when)
    if still_running:
        return clock
    ended = when + 0.05
    offset = 100 * metrics_per_trial
    if seq % 50 == 49:
        ledger.finish(trial_id, TrialStatus.USER_CANCELED, "cancelled by the user", ended, -15,
                      metrics_offset=offset)  # fmt: skip
    elif seq % 20 == 19:
        reason = "exit code 1: RuntimeError: out of memory"
        ledger.finish(trial_id, TrialStatus.FAILED, reason, ended, 1, metrics_offset=offset)
    else:
        final: Any = round(accuracy, 6)
        if dict_finals:
            final = {"default": final, "loss": round(1 - accuracy, 6)}
        store.add_metric(trial_id, metrics_per_trial, "FINAL", final, ended - 0.01)
        ledger.finish(trial_id, TrialStatus.SUCCEEDED, None, ended, 0, final=final,
                      metrics_offset=offset + 100)  # fmt: skip
    return ended
