"""E2E fixtures: every experiment a test starts is stopped at teardown, whatever happened, so no
manager or trial process outlives the test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nascli.experiment.control import stop_experiment
from nascli.experiment.store import ExperimentStore, list_experiment_dirs


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """$NASCLI_HOME of this test (set by the root conftest); experiments stopped at the end."""
    path = Path(os.environ["NASCLI_HOME"])
    yield path
    for exp_dir in list_experiment_dirs():
        store = ExperimentStore(exp_dir)
        if store.experiment().status in ("RUNNING", "NO_MORE_TRIAL") or store.trials(["RUNNING"]):
            stop_experiment(store, grace=1.0, timeout=10.0)
