"""Training services: where trial commands run. The protocol is ``base.TrainingService``;
``local.LocalTrainingService`` runs trials on this machine, ``fake.FakeTrainingService`` runs
them in-process for the manager's tests. Every service passes one contract suite
(``tests/service_contract.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nascli.experiment.services.base import (
    ServiceFactory,
    TrainingService,
    TrialExited,
    TrialPlaced,
    TrialProcess,
    TrialSpec,
)

if TYPE_CHECKING:
    from nascli.experiment.config import ExperimentConfig
    from nascli.experiment.containment import Containment

__all__ = [
    "TrainingService", "ServiceFactory", "TrialSpec", "TrialProcess", "TrialPlaced",
    "TrialExited", "service_for",
]  # fmt: skip


def service_for(
    config: ExperimentConfig, experiment_id: str, kill_grace: float,
    containment: Containment | None = None,
) -> ServiceFactory:  # fmt: skip
    """The factory of the service ``config.platform`` names (Ray is imported only for ``ray``);
    local trials are tracked by ``containment`` (see ``containment.py``) where given."""
    if config.platform == "ray":
        from nascli.experiment.services.ray import RayTrainingService, ray_settings

        settings = ray_settings(config, experiment_id)
        return lambda inbox: RayTrainingService(
            inbox, experiment_id, settings, kill_grace
        ).connect()
    from nascli.experiment.services.local import LocalTrainingService

    return lambda inbox: LocalTrainingService(inbox, kill_grace, containment=containment)
