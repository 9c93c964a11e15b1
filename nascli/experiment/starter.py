"""Starting a committed trial: its directory and parameter file, its environment, its GPUs, and
the training service's ``launch``.

The manager commits a trial (WAITING) before anything here runs, so a crash in between leaves a
trial that the next manager starts again; ``write_dir`` may therefore run twice for one trial.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from nascli.channel import TrialContext, prepare_trial_dir
from nascli.errors import GpuUnavailable
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.gpu import GpuAllocator
from nascli.experiment.services.base import (
    LaunchesAhead,
    TrainingService,
    TrialProcess,
    TrialSpec,
)
from nascli.experiment.store import ExperimentStore, TrialRecord

__all__ = ["TrialStarter"]

log = logging.getLogger("nascli.manager")

_GPU_RETRY = 1.0  # seconds between two looks for free GPUs while a trial waits for them


class TrialStarter:
    """Prepares and starts trials on ``service`` for the manager (its thread only)."""

    def __init__(
        self, store: ExperimentStore, config: ExperimentConfig, service: TrainingService,
        gpus: GpuAllocator,
    ) -> None:  # fmt: skip
        self.store = store
        self.config = config
        self.service = service
        self.gpus = gpus
        self.exp_id = store.id
        self.wait_reason: str | None = None
        self._gpu_retry_at = 0.0
        self._base_env = self._trial_base_env()

    def _trial_base_env(self) -> dict[str, str]:
        """What every trial's environment starts from (computed once: copying ``os.environ``
        per trial costs more than the rest of a launch)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NASCLI_")}
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Like Ray Tune: concurrent trials share the cores instead of each starting one
        # OpenMP thread per core (on 2 cores, 2 torch trials run ~1.8x slower oversubscribed).
        threads = max(1, (os.cpu_count() or 1) // self.config.trial_concurrency)
        if self.config.ray is not None:  # on a node: the CPUs the trial holds there
            threads = max(1, int(self.config.ray.cpus_per_trial))
        env.setdefault("OMP_NUM_THREADS", str(threads))
        return env

    def write_dir(self, trial: TrialRecord) -> None:
        """The trial's directory with its ``parameter.json``, before it starts."""
        prepare_trial_dir(self.store.trial_paths(trial.id).dir, trial.parameter_id,
                          trial.parameters)  # private, never through a link; fmt: skip

    def reserve_gpus(self, trial_id: str, own_groups: set[int]) -> bool:
        """Reserve the trial's GPUs (always True when GPUs are not managed). While none fit,
        the reason is recorded once (``wait_reason`` and a ``waiting`` event) and the GPUs are
        looked at again after ``_GPU_RETRY`` seconds."""
        if not self.config.trial.gpu_num or self.config.platform != "local":
            return True  # not managed here (a remote service's cluster assigns GPUs)
        if time.monotonic() < self._gpu_retry_at:
            return False
        try:
            self.gpus.allocate(trial_id, own_groups=own_groups)
        except GpuUnavailable as why:
            self._gpu_retry_at = time.monotonic() + _GPU_RETRY
            if str(why) != self.wait_reason:
                self.wait_reason = str(why)
                self.store.update_experiment(wait_reason=self.wait_reason)
                self.store.add_event("waiting", self.wait_reason)
                log.info("%s", self.wait_reason)
            return False
        if self.wait_reason is not None:
            self.wait_reason = None
            self.store.update_experiment(wait_reason=None)
        return True

    def gpus_of(self, trial_id: str) -> list[int] | None:
        gpus = self.gpus.assigned.get(trial_id)
        return list(gpus) if gpus is not None else None

    def start(self, trial: TrialRecord, prepared: bool = False) -> TrialProcess:
        """Start a committed trial (``prepared``: its directory is written already).

        Raises:
            OSError: the service could not start it (its GPUs are released).
        """
        if not prepared:
            try:
                self.write_dir(trial)
            except OSError:
                self.gpus.release(trial.id)
                raise
        try:
            return self.service.launch(self._spec(trial))
        except ValueError as exc:  # e.g. a NUL byte in the command
            self.gpus.release(trial.id)
            raise OSError(f"invalid trial command: {exc}") from None
        except OSError:
            self.gpus.release(trial.id)
            raise

    def prepare(self, trial: TrialRecord) -> None:
        """Get a trial proposed ahead (its directory written) ready to start, where the service
        can (``LaunchesAhead``); ``start`` then takes it. No GPUs: they are known only then."""
        if isinstance(self.service, LaunchesAhead) and not self._gpus_managed():
            self.service.prepare(self._spec(trial))

    def discard(self, trial_id: str) -> None:
        """Undo ``prepare`` for a trial that will not start (cancelled while waiting)."""
        if isinstance(self.service, LaunchesAhead):
            self.service.discard(trial_id)

    def _gpus_managed(self) -> bool:
        return self.config.trial.gpu_num is not None and self.config.platform == "local"

    def _spec(self, trial: TrialRecord) -> TrialSpec:
        paths = self.store.trial_paths(trial.id)
        context = TrialContext(
            platform=self.service.platform, experiment_id=self.exp_id, trial_id=trial.id,
            sequence_id=trial.seq, trial_dir=paths.dir, output_dir=paths.dir,
            gen_search_space=None,
        )  # fmt: skip
        env = dict(self._base_env)
        env.update(context.environment())
        if self._gpus_managed():
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpus.assigned.get(trial.id) or ()))
        return TrialSpec(
            trial.id, self.config.trial.command, code_dir=Path(self.config.trial.code_dir),
            trial_dir=paths.dir, stdout=paths.stdout, stderr=paths.stderr, env=env,
        )  # fmt: skip
