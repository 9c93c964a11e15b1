"""Helpers to set up real experiments (through the same steps as ``nascli create``) running the
torch-free ``tests/e2e/trials/quick_trial.py``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from nascli.experiment.prepare import prepare_experiment
from nascli.experiment.store import ExperimentStore, create_experiment

TRIALS = Path(__file__).resolve().parent / "e2e" / "trials"


def quick_config(tmp_path: Path, **overrides: Any) -> Path:
    """Write a config running quick_trial.py (Random tuner, 2 at a time, 6 trials); overrides
    replace top-level keys, except ``trial`` whose fields are merged."""
    doc: dict[str, Any] = {
        "experimentName": "quick",
        "trialConcurrency": 2,
        "maxTrialNum": 6,
        "searchSpacePath": str(TRIALS / "search_space.json"),
        "tuner": {"builtinTunerName": "Random", "classArgs": {"seed": 1}},
        "trial": {"command": f"{sys.executable} quick_trial.py", "codeDir": str(TRIALS)},
    }
    for key, value in overrides.items():
        if key == "trial":  # merged: tests change one trial field at a time
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def make_experiment(tmp_path: Path, **overrides: Any) -> ExperimentStore:
    plan = prepare_experiment(quick_config(tmp_path, **overrides))
    cfg = plan.config
    return create_experiment(
        cfg.to_dict(), plan.config_text, plan.search_space, cfg.experiment_name, cfg.author_name
    )


def failing_tuner(tmp_path: Path) -> dict[str, str]:
    """A ``tuner`` config section for a custom tuner that fails when told a result."""
    code = tmp_path / "tuner"
    code.mkdir()
    (code / "bad.py").write_text(
        "from tuners import RandomTuner\n"
        "class Bad(RandomTuner):\n"
        "    def receive_trial_result(self, *a, **k):\n"
        "        raise ValueError('tuner bug')\n"
    )
    return {"codeDir": str(code), "classFileName": "bad.py", "className": "Bad"}
