"""``RayTrainingService``: trials on a Ray cluster, behind the contract of ``base.py``.

The manager is the Ray driver. ``connect()`` joins the cluster named in ``rayConfig`` with the
experiment's ``trial.codeDir`` as the job's ``working_dir`` (Ray zips it once, ships it through its
object store and unpacks it on each node: no shared filesystem). ``launch(spec)`` creates one
``TrialRunner`` actor (``ray_runner.py``) per trial with ``num_cpus`` / ``num_gpus`` from the
config, named after the experiment and trial and detached from the driver, so that a manager
killed with ``kill -9`` does not take its trials down and a resumed manager finds them again by
name (``adopt``). The trial's input files and the variables the manager set travel with it; PATH,
HOME and the rest are the node's.

One poller thread asks every live runner what its trial directory gained (metrics, stdout,
stderr, the trial's own files) every ``poll_interval`` seconds and appends it to the trial's
directory here, so that everything downstream (intermediate results, ``log --follow``, assessors,
the web UI) reads the same files as for local trials. When a runner reports its command ended and
every byte is home, the poller writes the local exit marker, removes the runner, and puts
``TrialExited`` in the inbox. A runner that cannot be reached (its node died, or it was killed)
ends the trial with exit code None and one stderr line naming the cause: the manager records it
FAILED and retries it per ``maxTrialRetries``; it is never lost nor counted twice.

``TrialProcess.pid`` is 0 (the trial has no process on this machine); its ``token`` is
``ray:<actor name>`` and its ``host`` the node. ``cancel`` and ``shutdown`` end the remote process
group (SIGTERM, grace, SIGKILL) through the runner, then remove it: nothing is left on any node.
``stop_remote_trials`` does the same from a CLI process when no manager runs.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nascli._files import open_private, write_private
from nascli.channel import EXIT_FILE
from nascli.errors import NasCliError
from nascli.experiment.config import ExperimentConfig, RayConfig
from nascli.experiment.inbox import Inbox
from nascli.experiment.services.base import TrialExited, TrialPlaced, TrialProcess, TrialSpec
from nascli.experiment.services.ray_runner import TrialRunnerImpl

__all__ = [
    "RayUnavailable", "RaySettings", "RayTrainingService", "actor_name", "probe_cluster",
    "stop_remote_trials", "TOKEN_PREFIX",
]  # fmt: skip

TOKEN_PREFIX = "ray:"
PLACING = "(placing)"  # a trial's host until its runner has answered
_INPUT_LIMIT = 16 << 20  # input files travel inside the actor call
_PLACEMENTS, _PLACE_DELAY = 6, 5.0  # tries at placing a trial whose runner never answered
_UNAVAILABLE_GRACE = 30.0  # seconds a runner may be "temporarily unavailable" before it is lost


class RayUnavailable(NasCliError):
    """Ray is not installed, or the cluster named in ``rayConfig`` cannot be reached."""


@dataclass(frozen=True)
class RaySettings:
    """What the service needs of ``rayConfig`` and ``trial``."""

    address: str = "auto"
    namespace: str = "nascli"
    code_dir: str = "."
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    excludes: tuple[str, ...] = ()
    poll_interval: float = 0.5
    orphan_timeout: float = 600.0


def ray_settings(config: ExperimentConfig, experiment_id: str) -> RaySettings:
    """The service's settings from an experiment's config (``platform: ray``)."""
    ray_config = config.ray or RayConfig()
    return RaySettings(
        address=ray_config.address,
        namespace=f"nascli-{experiment_id}",
        code_dir=config.trial.code_dir,
        cpus_per_trial=ray_config.cpus_per_trial,
        gpus_per_trial=float(config.trial.gpu_num or 0),
        excludes=ray_config.excludes,
        orphan_timeout=float(ray_config.orphan_timeout),
    )


def actor_name(experiment_id: str, trial_id: str) -> str:
    return f"nascli-{experiment_id}-{trial_id}"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(
            "trainingServicePlatform 'ray' needs Ray on this machine and every node: "
            "pip install 'nascli[ray]'"
        ) from exc
    return ray


def _init(ray: Any, address: str, namespace: str, runtime_env: dict[str, Any] | None) -> None:
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, namespace=namespace, runtime_env=runtime_env,
                 logging_level="WARNING", log_to_driver=False)  # fmt: skip
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        raise RayUnavailable(f"cannot join the Ray cluster at {address!r}: {exc}") from exc


def probe_cluster(address: str, timeout: float = 30.0) -> dict[str, float]:
    """The total resources of the cluster at ``address`` (``create`` checks it answers before
    anything starts). Runs in a child process, so that a slow or failing ``ray.init`` can neither
    hang nor pollute the caller. Raises ``RayUnavailable`` with the reason."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import ray\n"
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
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "network_util" not in ln]
    if proc.returncode != 0:
        why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise RayUnavailable(f"rayConfig.address: cannot reach a Ray cluster at {address!r}: {why}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RayUnavailable(f"rayConfig.address: unexpected answer from {address!r}") from exc


class _RemoteRunner(TrialRunnerImpl):
    """The actor: a ``TrialRunnerImpl`` in the node's environment with the trial's variables
    and the GPUs Ray assigned, named by node host and Ray node id."""

    def __init__(self, trial_id: str, command: str, inputs: dict[str, bytes],
                 env: dict[str, str], orphan_timeout: float):  # fmt: skip
        import ray

        super().__init__(
            trial_id, command, inputs, {**os.environ, **env},
            gpu_ids=[str(g) for g in ray.get_gpu_ids()], orphan_timeout=orphan_timeout,
        )  # fmt: skip
        self.node = f"{self.node}/{ray.get_runtime_context().get_node_id()[:8]}"


@dataclass
class _Remote:
    proc: TrialProcess
    actor: Any
    trial_dir: Path
    streams: dict[str, Path]  # the runner's "stdout" / "stderr" -> the spec's files
    offsets: dict[str, int] = field(default_factory=dict)
    place: Any = None  # (attempt) -> (actor, token): a new runner, while none has answered
    placements: int = 1
    place_at: float = 0.0  # when to try the next placement (0: none pending)
    asked: dict[str, Any] = field(default_factory=dict)  # "poll" / "info" -> outstanding ref
    unavailable_since: float | None = None


@dataclass
class RayTrainingService:
    """Runs trials as ``TrialRunner`` actors on a Ray cluster; exits are reported in ``inbox``.
    ``connect()`` joins the cluster; the manager's factory calls it before any ``launch``."""

    inbox: Inbox
    experiment_id: str
    settings: RaySettings
    kill_grace: float = 5.0
    platform: str = "ray"
    _remotes: dict[str, _Remote] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ray: Any = None
    _runner: Any = None

    def connect(self) -> RayTrainingService:
        ray = import_ray()
        excludes = [".git", "__pycache__", *self.settings.excludes]
        _init(ray, self.settings.address, self.settings.namespace,
              {"working_dir": self.settings.code_dir, "excludes": excludes})  # fmt: skip
        self._ray = ray
        self._runner = ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=4)(
            _RemoteRunner
        )
        threading.Thread(target=self._poll_loop, name="ray-poller", daemon=True).start()
        return self

    # ------------------------------------------------------------------ contract

    def launch(self, spec: TrialSpec) -> TrialProcess:
        inputs = _input_files(spec)
        # Only what the manager set for the trial travels; PATH, HOME and the rest are the
        # node's, as for a job started there.
        env = {k: v for k, v in spec.env.items() if os.environ.get(k) != v}
        env["NASCLI_PLATFORM"] = self.platform
        name = actor_name(self.experiment_id, spec.trial_id)
        options: dict[str, Any] = {
            "num_cpus": self.settings.cpus_per_trial,
            "num_gpus": self.settings.gpus_per_trial,
            "name": name,
            "namespace": self.settings.namespace,
            "lifetime": "detached",
        }
        if Path(spec.code_dir).resolve() != Path(self.settings.code_dir).resolve():
            options["runtime_env"] = {"working_dir": str(spec.code_dir)}
        for stream in (spec.stdout, spec.stderr):
            os.close(open_private(stream, append=True))

        def place(attempt: int) -> tuple[Any, str]:
            named = name if attempt == 1 else f"{name}-p{attempt}"
            actor = self._runner.options(**{**options, "name": named}).remote(
                spec.trial_id, spec.command, inputs, env, self.settings.orphan_timeout
            )
            return actor, TOKEN_PREFIX + named

        actor, token = place(1)
        proc = TrialProcess(spec.trial_id, 0, token, time.time(), host=PLACING)
        with self._lock:
            self._remotes[spec.trial_id] = _Remote(
                proc, actor, spec.trial_dir, {"stdout": spec.stdout, "stderr": spec.stderr},
                place=place,
            )  # fmt: skip
        return proc

    def adopt(self, trial_id: str, pid: int, token: str | None, trial_dir: Path) -> bool:
        """Find the runner of a trial an earlier manager launched; False when it is gone."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return False
        try:
            actor = self._ray.get_actor(token[len(TOKEN_PREFIX):],
                                        namespace=self.settings.namespace)  # fmt: skip
            node = self._ray.get(actor.info.remote(), timeout=30)["node"]
        except Exception:  # no such actor, or it died with its node
            return False
        streams = {"stdout": trial_dir / "stdout", "stderr": trial_dir / "stderr"}
        offsets = dict(_local_files(trial_dir))
        offsets.update({name: _size(path) for name, path in streams.items()})
        proc = TrialProcess(trial_id, pid, token, None, host=node)
        with self._lock:
            self._remotes[trial_id] = _Remote(proc, actor, trial_dir, streams, offsets)
        return True

    def running(self) -> dict[str, TrialProcess]:
        with self._lock:
            return {tid: r.proc for tid, r in self._remotes.items()}

    def cancel(self, trial_id: str) -> None:
        with self._lock:
            remote = self._remotes.get(trial_id)
        if remote is not None:
            remote.actor.stop.remote(self.kill_grace)

    def shutdown(self, grace: float) -> None:
        """End every trial's remote process group; returns once each exit was reported."""
        with self._lock:
            remotes = list(self._remotes.values())
        for remote in remotes:
            remote.actor.stop.remote(grace)
        deadline = time.monotonic() + grace + 30
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    # ------------------------------------------------------------------ poller

    def _poll_loop(self) -> None:
        """Keep one poll (and, until the trial is placed, one ``info``) outstanding per runner;
        handle the answers that are ready. A runner that is slow to answer (still being placed,
        or its node is busy) holds up nobody."""
        while not self.inbox.closed:
            with self._lock:
                remotes = list(self._remotes.values())
            refs = self._ask(remotes)
            if not refs:
                time.sleep(self.settings.poll_interval)
                continue
            ready, _ = self._ray.wait(list(refs), num_returns=len(refs),
                                      timeout=self.settings.poll_interval)  # fmt: skip
            for ref in ready:
                remote, kind = refs[ref]
                self._answered(remote, kind, ref)
            if len(ready) == len(refs):
                time.sleep(self.settings.poll_interval)

    def _ask(self, remotes: list[_Remote]) -> dict[Any, tuple[_Remote, str]]:
        now = time.monotonic()
        refs: dict[Any, tuple[_Remote, str]] = {}
        for remote in remotes:
            if remote.place_at:
                if now < remote.place_at:
                    continue
                remote.place_at = 0.0
                remote.placements += 1
                remote.actor, token = remote.place(remote.placements)
                remote.proc = replace(remote.proc, token=token)
                remote.asked = {}
            if "poll" not in remote.asked:
                remote.asked["poll"] = remote.actor.poll.remote(dict(remote.offsets))
            if remote.proc.host == PLACING and "info" not in remote.asked:
                remote.asked["info"] = remote.actor.info.remote()
            refs.update({ref: (remote, kind) for kind, ref in remote.asked.items()})
        return refs

    def _answered(self, remote: _Remote, kind: str, ref: Any) -> None:
        if remote.asked.get(kind) is not ref:
            return  # from a runner replaced meanwhile
        del remote.asked[kind]
        try:
            answer = self._ray.get(ref)
        except Exception as exc:  # its actor died, or is unreachable for now
            if type(exc).__name__ == "ActorUnavailableError" and remote.unavailable_since is None:
                remote.unavailable_since = time.monotonic()
            if (type(exc).__name__ == "ActorUnavailableError"
                    and time.monotonic() - remote.unavailable_since < _UNAVAILABLE_GRACE):
                return  # Ray may get it back (a busy node); asked again next round  # fmt: skip
            self._lost(remote, exc)
            return
        remote.unavailable_since = None
        if kind == "info":
            if remote.proc.host == PLACING:
                remote.proc = replace(remote.proc, host=answer["node"])
                self.inbox.put(TrialPlaced(remote.proc.trial_id, answer["node"],
                                           remote.proc.token))  # fmt: skip
            return
        for rel, data in answer["chunks"].items():
            self._append(remote, rel, data)
        if answer["ended"]:
            code = answer["exit_code"]
            if code is not None:
                write_private(remote.trial_dir / EXIT_FILE, f"{code}\n")
            self._forget(remote, cleanup=True)
            self.inbox.put(TrialExited(remote.proc.trial_id, code, answer["end_time"]))

    def _append(self, remote: _Remote, rel: str, data: bytes) -> None:
        target = remote.streams.get(rel) or (remote.trial_dir / rel).resolve()
        if rel not in remote.streams and remote.trial_dir.resolve() not in target.parents:
            return  # a path outside the trial directory: never written
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(open_private(target, append=True), "ab") as f:
            f.write(data)
        remote.offsets[rel] = remote.offsets.get(rel, 0) + len(data)

    def _lost(self, remote: _Remote, exc: BaseException) -> None:
        if remote.proc.host == PLACING and remote.placements < _PLACEMENTS:
            # No runner of this trial ever answered, so nothing of it ran as far as anyone saw:
            # the node it was placed on died before Ray noticed (health checks take ~15 s).
            # Place it again a little later, on a node Ray then knows to be alive.
            remote.place_at = time.monotonic() + _PLACE_DELAY
            return
        where = f" on {remote.proc.host}" if remote.proc.host != PLACING else ""
        line = (f"nascli: trial lost{where}: its Ray runner died ({type(exc).__name__}); "
                "its node may be gone\n")  # fmt: skip
        with open(open_private(remote.streams["stderr"], append=True), "ab") as f:
            f.write(line.encode())
        self._forget(remote, cleanup=False)
        self.inbox.put(TrialExited(remote.proc.trial_id, None, time.time()))

    def _forget(self, remote: _Remote, cleanup: bool) -> None:
        with self._lock:
            self._remotes.pop(remote.proc.trial_id, None)
        if cleanup:
            try:
                self._ray.get(remote.actor.cleanup.remote(), timeout=30)
            except Exception:
                pass
        try:
            self._ray.kill(remote.actor)
        except Exception:
            pass


def stop_remote_trials(settings: RaySettings, tokens: list[str], grace: float) -> None:
    """End the remote process groups of trials whose manager is gone (``nascli stop`` of a
    crashed experiment): each named runner stops its trial and is removed."""
    ray = import_ray()
    _init(ray, settings.address, settings.namespace, None)
    actors = []
    for token in tokens:
        if token.startswith(TOKEN_PREFIX):
            try:
                actors.append(ray.get_actor(token[len(TOKEN_PREFIX):],
                                            namespace=settings.namespace))  # fmt: skip
            except ValueError:
                continue
    refs = [a.stop.remote(grace) for a in actors]
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=grace + 30)
    for actor in actors:
        try:
            ray.get(actor.cleanup.remote(), timeout=30)
        except Exception:
            pass
        ray.kill(actor)


def _input_files(spec: TrialSpec) -> dict[str, bytes]:
    inputs, total = {}, 0
    for entry in os.scandir(spec.trial_dir):
        if entry.is_file(follow_symlinks=False) and entry.name not in ("stdout", "stderr"):
            data = Path(entry.path).read_bytes()
            total += len(data)
            if total > _INPUT_LIMIT:
                raise OSError(f"trial {spec.trial_id}: input files exceed {_INPUT_LIMIT} bytes")
            inputs[entry.name] = data
    return inputs


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _local_files(trial_dir: Path) -> list[tuple[str, int]]:
    found = []
    for dirpath, _, filenames in os.walk(trial_dir):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                found.append((os.path.relpath(path, trial_dir), os.stat(path).st_size))
    return found
