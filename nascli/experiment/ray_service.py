"""``RayTrainingService``: trials on a Ray cluster, behind the same contract as the local service.

The manager is the Ray driver. ``connect()`` joins the cluster named in ``rayConfig`` with the
experiment's ``trial.codeDir`` as the job's ``working_dir`` (Ray zips it, ships it through its
object store and unpacks it on each node: no shared filesystem). ``launch(spec)`` creates one
``TrialRunner`` actor (``ray_runner.py``) per trial with ``num_cpus`` / ``num_gpus`` from the
config, named after the experiment and trial in the experiment's namespace and detached from the
driver, so that a manager killed with ``kill -9`` does not take its trials down and a resumed
manager finds them again by name (``adopt``).

One poller thread asks every live runner for what its trial's files gained (metrics, stdout,
stderr) every ``poll_interval`` seconds and appends it to the trial's directory in the store,
so that everything downstream — intermediate results, ``log --follow``, assessors, the web UI —
reads the same files as for local trials. When a runner reports its command ended and every byte
is home, the poller writes the local exit marker, removes the runner, and puts ``TrialExited`` in
the inbox: the manager learns of it as of a local exit. A runner that cannot be reached
(``RayActorError``: its node died or it was killed) ends the trial with exit code None and one
stderr line naming the cause, so the manager records it FAILED and retries it per
``maxTrialRetries``; it is never lost nor counted twice.

``cancel`` and ``shutdown`` end the remote process group (SIGTERM, grace, SIGKILL) through the
runner, then remove it. Nothing of a trial is left on any node.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nascli.errors import NasCliError
from nascli.experiment.channel import EXIT_FILE
from nascli.experiment.inbox import Inbox
from nascli.experiment.launcher import TrialExited, TrialProcess, TrialSpec
from nascli.experiment.ray_runner import STREAMED_FILES, TrialRunnerImpl

__all__ = ["RayUnavailable", "RaySettings", "RayTrainingService", "actor_name", "probe_cluster"]

TOKEN_PREFIX = "ray:"


class RayUnavailable(NasCliError):
    """Ray is not installed, or the cluster named in ``rayConfig`` cannot be reached."""


@dataclass(frozen=True)
class RaySettings:
    """``rayConfig`` as the service needs it."""

    address: str = "auto"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    namespace: str = "nascli"
    code_dir: str = "."
    excludes: tuple[str, ...] = ()
    poll_interval: float = 0.5
    orphan_timeout: float = 600.0
    connect_timeout: float = 30.0


def actor_name(experiment_id: str, trial_id: str) -> str:
    return f"nascli-{experiment_id}-{trial_id}"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RayUnavailable(
            "trainingServicePlatform 'ray' needs Ray: pip install 'nascli[ray]'"
        ) from exc
    return ray


def probe_cluster(address: str, timeout: float = 30.0) -> dict[str, float]:
    """Check that the cluster at ``address`` answers (at ``create``, before anything starts):
    the cluster's total resources. Runs in a child process so that a slow or failing
    ``ray.init`` cannot hang or pollute the caller; raises ``RayUnavailable`` with the reason."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, ray\n"
        "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
        "print(json.dumps(ray.cluster_resources()))\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, address], capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise RayUnavailable(
            f"rayConfig.address: no Ray cluster answered at {address!r} within {timeout:g} s"
        ) from exc
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = last[-1] if last else f"exit code {proc.returncode}"
        raise RayUnavailable(f"rayConfig.address: cannot reach a Ray cluster at {address!r}: {why}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RayUnavailable(f"rayConfig.address: unexpected answer from {address!r}") from exc


def _runner_class(ray: Any) -> Any:
    return ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=4)(_RemoteRunner)


class _RemoteRunner(TrialRunnerImpl):
    """The actor: ``TrialRunnerImpl`` with the GPUs Ray assigned, in the node's environment
    updated with the trial's variables."""

    def __init__(self, trial_id: str, command: str, parameters: bytes, env: dict[str, str],
                 orphan_timeout: float):  # fmt: skip
        import ray

        env = {**os.environ, **env}

        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        super().__init__(
            trial_id, command, parameters, env, gpu_ids=gpu_ids, orphan_timeout=orphan_timeout
        )
        context = ray.get_runtime_context()
        self.node = f"{self.node}/{context.get_node_id()[:8]}"


@dataclass
class _Remote:
    proc: TrialProcess
    actor: Any
    trial_dir: Path
    offsets: dict[str, int] = field(default_factory=dict)
    node: str | None = None
    stopping: bool = False


@dataclass
class RayTrainingService:
    """Runs trials as ``TrialRunner`` actors on a Ray cluster; exits are reported in ``inbox``.

    ``connect()`` must be called once before ``launch`` / ``adopt``.
    """

    inbox: Inbox
    experiment_id: str
    settings: RaySettings
    kill_grace: float = 5.0
    _remotes: dict[str, _Remote] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ray: Any = None
    _runner: Any = None
    _closed: threading.Event = field(default_factory=threading.Event)

    # ------------------------------------------------------------------ life

    def connect(self) -> None:
        ray = import_ray()
        excludes = [".git", "__pycache__", *self.settings.excludes]
        try:
            ray.init(
                address=self.settings.address,
                namespace=self.settings.namespace,
                runtime_env={"working_dir": self.settings.code_dir, "excludes": excludes},
                logging_level="WARNING",
                log_to_driver=False,
            )
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            raise RayUnavailable(f"cannot join the Ray cluster at {self.settings.address!r}: "
                                 f"{exc}") from exc  # fmt: skip
        self._ray = ray
        self._runner = _runner_class(ray)
        threading.Thread(target=self._poll_loop, name="ray-poller", daemon=True).start()

    def close(self) -> None:
        self._closed.set()

    # ------------------------------------------------------------------ contract

    def launch(self, spec: TrialSpec) -> TrialProcess:
        ray = self._ray
        parameters = (spec.trial_dir / "parameter.json").read_bytes()
        options: dict[str, Any] = {
            "num_cpus": self.settings.cpus_per_trial,
            "num_gpus": self.settings.gpus_per_trial,
            "name": actor_name(self.experiment_id, spec.trial_id),
            "lifetime": "detached",
        }
        # Only what the manager set for the trial travels; PATH, HOME and the rest come from
        # the node the trial runs on, as they would for a job started there.
        env = {k: v for k, v in spec.env.items() if os.environ.get(k) != v}
        actor = self._runner.options(**options).remote(
            spec.trial_id, spec.command, parameters, env, self.settings.orphan_timeout
        )
        proc = TrialProcess(spec.trial_id, 0, TOKEN_PREFIX + options["name"], time.time())
        remote = _Remote(proc, actor, spec.trial_dir, {n: 0 for n in STREAMED_FILES})
        with self._lock:
            self._remotes[spec.trial_id] = remote
        del ray
        return proc

    def adopt(self, trial_id: str, pid: int, token: str | None, trial_dir: Path) -> bool:
        """Find the runner of a trial an earlier manager launched; False when it is gone."""
        name = token[len(TOKEN_PREFIX):] if token and token.startswith(TOKEN_PREFIX) else None
        if name is None:
            return False
        try:
            actor = self._ray.get_actor(name, namespace=self.settings.namespace)
        except ValueError:
            return False
        offsets = {n: _size(trial_dir / n) for n in STREAMED_FILES}
        proc = TrialProcess(trial_id, pid, token)
        with self._lock:
            self._remotes[trial_id] = _Remote(proc, actor, trial_dir, offsets)
        return True

    def running(self) -> dict[str, TrialProcess]:
        with self._lock:
            return {tid: r.proc for tid, r in self._remotes.items()}

    def nodes(self) -> dict[str, str]:
        """Where each live trial runs (node host name), once its runner has answered."""
        with self._lock:
            return {tid: r.node for tid, r in self._remotes.items() if r.node}

    def cancel(self, trial_id: str) -> None:
        with self._lock:
            remote = self._remotes.get(trial_id)
        if remote is not None and not remote.stopping:
            remote.stopping = True
            remote.actor.stop.remote(self.kill_grace)

    def shutdown(self, grace: float) -> None:
        """End every trial's remote process group; returns once each runner has done so."""
        with self._lock:
            remotes = list(self._remotes.values())
        refs = [r.actor.stop.remote(grace) for r in remotes]
        if refs:
            try:
                self._ray.wait(refs, num_returns=len(refs), timeout=grace + 10)
            except Exception:  # a dead runner has nothing left to stop
                pass
        deadline = time.monotonic() + grace + 10
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    # ------------------------------------------------------------------ poller

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                remotes = list(self._remotes.values())
            if remotes:
                self._poll(remotes)
            self._closed.wait(self.settings.poll_interval)

    def _poll(self, remotes: list[_Remote]) -> None:
        ray = self._ray
        refs = {r.proc.trial_id: r.actor.poll.remote(dict(r.offsets)) for r in remotes}
        for remote in remotes:
            if remote.node is None:
                try:
                    remote.node = ray.get(remote.actor.info.remote(), timeout=30)["node"]
                except Exception:
                    pass
        for remote in remotes:
            try:
                answer = ray.get(refs[remote.proc.trial_id], timeout=60)
            except Exception as exc:
                self._lost(remote, exc)
                continue
            self._append(remote, answer["chunks"])
            if answer["ended"]:
                self._ended(remote, answer["exit_code"], answer["end_time"])

    def _append(self, remote: _Remote, chunks: dict[str, bytes]) -> None:
        for name, data in chunks.items():
            if data:
                with open(remote.trial_dir / name, "ab") as f:
                    f.write(data)
                remote.offsets[name] += len(data)

    def _ended(self, remote: _Remote, code: int | None, end_time: float) -> None:
        if code is not None:
            (remote.trial_dir / EXIT_FILE).write_text(f"{code}\n")
        self._forget(remote, cleanup=True)
        self.inbox.put(TrialExited(remote.proc.trial_id, code, end_time or time.time()))

    def _lost(self, remote: _Remote, exc: BaseException) -> None:
        why = type(exc).__name__
        where = f" on node {remote.node}" if remote.node else ""
        line = f"nascli: trial lost{where}: its Ray runner died ({why}); the node may be gone\n"
        with open(remote.trial_dir / "stderr", "ab") as f:
            f.write(line.encode())
        self._forget(remote, cleanup=False)
        self.inbox.put(TrialExited(remote.proc.trial_id, None, time.time()))

    def _forget(self, remote: _Remote, cleanup: bool) -> None:
        with self._lock:
            self._remotes.pop(remote.proc.trial_id, None)
        try:
            if cleanup:
                self._ray.get(remote.actor.cleanup.remote(), timeout=30)
        except Exception:
            pass
        try:
            self._ray.kill(remote.actor)
        except Exception:
            pass


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
