"""A real local Ray cluster for tests: a head and more nodes started with ``ray start``, all in a
loopback-only network namespace, with Ray's temp dir, auth token and HOME inside a temp dir.

Ray binds every interface and reaches out for its own address; inside a fresh network namespace
(``unshare -n``, as root) only 127.0.0.1 exists, so nothing leaves the machine. Every command that
talks to the cluster (``nascli``, a driver script) runs through ``RayCluster.command()``, which
enters that namespace. ``stop()`` ends every process of the namespace, whatever happened.

Tests using it skip, with the reason, when Ray is not installed or the namespace cannot be made.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HEAD_PORT = 6390


def ray_bin() -> Path:
    return Path(sys.executable).parent / "ray"


def skip_reason() -> str | None:
    """Why a Ray cluster cannot run here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'nascli[ray]')"
    if not ray_bin().exists():
        return f"no ray command beside {sys.executable}"
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        return "a loopback-only network namespace needs root, unshare and nsenter"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -n is not allowed here: {probe.stderr.decode().strip()}"
    return None


def _sessions_in_netns(ns_inode: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") == ns_inode:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rfind(b")") + 2 :].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


@dataclass
class RayCluster:
    """``nodes``: (cpus, gpus) per node, the first is the head."""

    nodes: list[tuple[int, int]]
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nr", dir="/tmp")))
    _holder: subprocess.Popen[bytes] | None = None
    _ns_pid: int = 0
    _ns_inode: str = ""
    _node_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{HEAD_PORT}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.root / "home"),
            RAY_USAGE_STATS_ENABLED="0",
            RAY_TMPDIR=str(self.root),
            RAY_AUTH_MODE="token",  # as a shared cluster should run (docs/ray.md)
            RAY_AUTH_TOKEN_PATH=str(self.root / "home" / "auth_token"),
            PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        )
        return env

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the cluster's network namespace."""
        return ["nsenter", "-t", str(self._ns_pid), "-n", "--", *argv]

    def start(self, timeout: float = 120.0) -> RayCluster:
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        token = self.root / "home" / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self._holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", "ip link set lo up 2>/dev/null; exec sleep 100000"],
            start_new_session=True,
        )
        self._ns_pid = self._holder.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the holder has entered its namespace once exec'd
            try:
                inode = os.readlink(f"/proc/{self._ns_pid}/ns/net")
            except OSError:
                inode = ""
            if inode and inode != os.readlink("/proc/self/ns/net"):
                self._ns_inode = inode
                break
            time.sleep(0.02)
        for index, (cpus, gpus) in enumerate(self.nodes):
            argv = [str(ray_bin()), "start", "--block", "--disable-usage-stats",
                    f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                    "--object-store-memory=100000000"]  # fmt: skip
            if index == 0:
                argv += [
                    "--head", f"--port={HEAD_PORT}", "--node-ip-address=127.0.0.1",
                    "--include-dashboard=false", f"--temp-dir={self.root / 'ray'}",
                ]  # fmt: skip
            else:
                argv += [f"--address={self.address}"]
            log = open(self.root / f"node{index}.log", "ab")  # noqa: SIM115 - kept by Popen
            self._node_procs.append(
                subprocess.Popen(self.command(argv), env=self.env(), stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
            )
            self._wait_started(index, timeout)
        self._wait_nodes(len(self.nodes), timeout)
        return self

    def _wait_started(self, index: int, timeout: float) -> None:
        """Until ``ray start --block`` of node ``index`` says its processes are up."""
        log = self.root / f"node{index}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._node_procs[index].poll() is None:
            if "will now block forever" in log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"ray start of node {index} did not come up: "
                           f"{log.read_text(errors='replace')[-3000:]}")  # fmt: skip

    def _wait_nodes(self, count: int, timeout: float) -> None:
        code = (
            "import ray, sys\n"
            "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
            "print(sum(1 for n in ray.nodes() if n['Alive']))\n"
        )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._node_procs):
                break
            try:
                proc = subprocess.run(
                    self.command([sys.executable, "-c", code, self.address]), env=self.env(),
                    capture_output=True, text=True, timeout=max(5.0, deadline - time.monotonic()),
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                break
            last = proc.stderr.strip().splitlines()[-1:] or [proc.stdout]
            if proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        logs = "\n".join(
            (self.root / f"node{i}.log").read_text(errors="replace")[-2000:]
            for i in range(len(self._node_procs))
        )
        raise RuntimeError(f"Ray cluster did not come up with {count} nodes: {last}\n{logs}")

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index`` and everything it started (its trials too), as a lost machine."""
        leader = self._node_procs[index].pid
        victims = [leader, *descendants(leader)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._node_procs[index].wait()

    def processes(self) -> list[int]:
        """Every process in the cluster's namespace except the namespace holder."""
        return [p for p in _sessions_in_netns(self._ns_inode) if p != self._ns_pid]

    def stop(self) -> None:
        for proc in reversed(self._node_procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(p.poll() is None for p in self._node_procs):
            time.sleep(0.1)
        if self._ns_inode:
            for pid in self.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self._node_procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A head (2 CPUs, 2 fake GPUs) and a second node (2 CPUs, 2 fake GPUs)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = RayCluster([(2, 2), (2, 2)])
    try:
        yield cluster.start()
    finally:
        cluster.stop()
