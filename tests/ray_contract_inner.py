"""The training-service contract on the Ray service, run inside a test cluster's namespace.

Not collected on its own (no ``test_`` prefix): ``tests/integration/test_ray_service.py`` starts a
real two-node cluster and runs this file with pytest inside the cluster's network namespace,
``NASCLI_TEST_RAY_ADDRESS`` naming the head.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nascli.experiment.inbox import Inbox
from nascli.experiment.services.ray import RaySettings, RayTrainingService
from tests.service_contract import TrainingServiceContract, child_left_behind

CODE_DIR = Path(__file__).resolve().parent


class TestRayTrainingService(TrainingServiceContract):
    def make_service(self, inbox: Inbox, shared: object) -> RayTrainingService:
        settings = RaySettings(
            address=os.environ["NASCLI_TEST_RAY_ADDRESS"], namespace="nascli-contract",
            code_dir=str(CODE_DIR), poll_interval=0.1,
        )  # fmt: skip
        return RayTrainingService(inbox, "contract", settings, kill_grace=2.0).connect()

    def command(self) -> str:
        return f"{sys.executable} contract_trial.py"

    def leftovers(self, trial_dir: Path) -> list[int]:
        # Every node of the test cluster is this machine, so the child's pid can be checked here.
        return child_left_behind(trial_dir)
