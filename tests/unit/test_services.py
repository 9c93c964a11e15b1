"""Every training service passes the contract (tests/service_contract.py): the local one with
real process groups, the in-process fake the manager's unit tests run on."""

from __future__ import annotations

import sys
from pathlib import Path

from nascli.experiment.inbox import Inbox
from nascli.experiment.services.fake import FakeCluster, FakeRun, FakeTrainingService
from nascli.experiment.services.local import LocalTrainingService
from tests.contract_trial import behave
from tests.service_contract import TrainingServiceContract, child_left_behind


class TestLocalTrainingService(TrainingServiceContract):
    def make_service(self, inbox: Inbox, shared: object) -> LocalTrainingService:
        return LocalTrainingService(inbox, kill_grace=2.0)

    def command(self) -> str:
        return f"{sys.executable} contract_trial.py"

    def leftovers(self, trial_dir: Path) -> list[int]:
        return child_left_behind(trial_dir)


def _program(run: FakeRun) -> int:
    return behave(run.spec.env, run.stdout, run.stderr, run.sleep, spawn_child=False)


class TestFakeTrainingService(TrainingServiceContract):
    def shared(self) -> FakeCluster:
        return FakeCluster()

    def make_service(self, inbox: Inbox, shared: object) -> FakeTrainingService:
        assert isinstance(shared, FakeCluster)
        return FakeTrainingService(inbox, _program, cluster=shared)

    def command(self) -> str:
        return "contract_trial.py (run in-process)"
