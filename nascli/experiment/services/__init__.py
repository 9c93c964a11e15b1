"""Training services: where trial commands run. The protocol is ``base.TrainingService``;
``local.LocalTrainingService`` runs trials on this machine, ``fake.FakeTrainingService`` runs
them in-process for the manager's tests. Every service passes one contract suite
(``tests/service_contract.py``)."""

from nascli.experiment.services.base import (
    ServiceFactory,
    TrainingService,
    TrialExited,
    TrialProcess,
    TrialSpec,
)

__all__ = ["TrainingService", "ServiceFactory", "TrialSpec", "TrialProcess", "TrialExited"]
