"""The training-service protocol: what the manager needs from whatever runs its trials.

The manager never learns which platform runs a trial; it calls only these methods, from its own
thread, and learns of exits through its ``Inbox``. A service is built by a ``ServiceFactory``
given that inbox (``LocalTrainingService`` by default; a Ray service, later, the same way).

Contract (``tests/service_contract.py`` checks it for every service):

- ``launch(spec)`` starts ``spec.command`` and returns at once with its ``TrialProcess``. When it
  is called, ``spec.trial_dir`` exists and holds the trial's input files (``parameter.json``,
  written by the manager through ``nascli.channel``); ``spec.env`` is the trial's whole
  environment (the ``NASCLI_*`` identity variables included, ``NASCLI_PLATFORM`` being the
  service's ``platform`` name). The command runs with ``spec.code_dir`` as its
  working directory (a remote service ships that directory and the trial directory to the node).
  Whatever the trial writes into its directory (``metrics.jsonl``, through the channel), its
  stdout and stderr (into ``spec.stdout`` / ``spec.stderr``, which exist once ``launch``
  returns, even for a command that cannot start) and the ``exit`` marker end up in
  ``spec.trial_dir`` on this machine: a remote service streams them back while the trial runs,
  so the manager reads intermediate metrics and ``nascli log`` follows output as for local
  trials. A command that cannot be started at all raises ``OSError``.
- When the command ends, the service puts ``TrialExited(trial_id, exit_code, end_time)`` in the
  inbox, once, after nothing of the trial (its whole process group, on its node) is left and its
  files are complete. ``exit_code`` is the command's code, ``-N`` for signal N, None when unknown.
- ``cancel(trial_id)`` ends the trial's whole process group (SIGTERM, the service's kill grace,
  SIGKILL) without blocking; its exit then arrives as usual. Unknown or ended ids are ignored.
- ``shutdown(grace)`` does that to every trial, with ``grace``, and returns once they are gone.
- ``adopt(trial_id, pid, token, trial_dir)`` re-attaches to a trial launched by an earlier
  manager (``resume``) from the handles its ``TrialProcess`` gave (``pid`` and ``token``, stored
  by the manager; for a remote service they may name a remote process or task). True when the
  trial still runs: its exit is then reported like a launched one's (exit code from the exit
  marker). False when it is gone: the manager ingests it from its files.
- ``running()`` is every trial the service watches that has not been reported ended.
- Optionally (``LaunchesAhead``), ``prepare(spec)`` gets a trial ready to start before its slot
  frees (the manager calls it for a trial proposed ahead), so that a later ``launch`` with an
  equal spec starts the command at once; nothing of the trial runs and no marker is written
  before that ``launch``. ``discard(trial_id)`` undoes a ``prepare`` whose trial will not be
  launched; ``shutdown`` discards every one. Neither raises.
- ``TrialProcess.host`` names the node the trial runs on (``localhost`` for local trials); a
  service that learns it only once the trial is placed (Ray) puts ``TrialPlaced`` in the inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nascli.experiment.inbox import Inbox

__all__ = [
    "TrialSpec", "TrialProcess", "TrialPlaced", "TrialExited", "TrainingService", "ServiceFactory",
    "LaunchesAhead",
]  # fmt: skip


@dataclass(frozen=True)
class TrialSpec:
    """What to start; ``trial_dir`` exists already with the trial's input files."""

    trial_id: str
    command: str
    code_dir: Path
    trial_dir: Path
    stdout: Path
    stderr: Path
    env: Mapping[str, str]


@dataclass(frozen=True)
class TrialProcess:
    """A running trial: its process group leader's ``pid`` and a ``token`` telling it apart
    from a later process reusing the pid (None until known); ``started`` is when it was
    launched (None: adopted); ``host`` is the node it runs on."""

    trial_id: str
    pid: int
    token: str | None
    started: float | None = None
    host: str = "localhost"


@dataclass(frozen=True)
class TrialPlaced:
    """Where a trial runs, once a service that places trials after ``launch`` returned knows
    it (put in the inbox at most once per trial; the manager records it as the trial's node)."""

    trial_id: str
    host: str
    token: str | None = None  # a new handle for ``adopt``, when placing it changed the old one


@dataclass(frozen=True)
class TrialExited:
    """A trial's command ended; ``exit_code`` is None when it is unknown (no marker)."""

    trial_id: str
    exit_code: int | None
    end_time: float


class TrainingService(Protocol):
    """Where trials run (see the module docstring for the contract)."""

    platform: str

    def launch(self, spec: TrialSpec) -> TrialProcess: ...

    def adopt(self, trial_id: str, pid: int, token: str | None, trial_dir: Path) -> bool: ...

    def cancel(self, trial_id: str) -> None: ...

    def running(self) -> dict[str, TrialProcess]: ...

    def shutdown(self, grace: float) -> None: ...


@runtime_checkable
class LaunchesAhead(Protocol):
    """A service that can get a trial ready before its slot frees (the module docstring)."""

    def prepare(self, spec: TrialSpec) -> None: ...

    def discard(self, trial_id: str) -> None: ...


#: Builds a service reporting exits to the manager's inbox.
ServiceFactory = Callable[["Inbox"], TrainingService]
