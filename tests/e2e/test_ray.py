"""``trainingServicePlatform: ray`` end to end: the real ``nascli`` against a real two-node Ray
cluster (``tests/ray_cluster.py``: a head and a second node, two fake GPUs each, token auth, all
on loopback in a network namespace). The tests share one cluster and run in file order; the last
one kills the second node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, nascli_command
from tests.ray_cluster import ray_cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

TRIAL_DIR = Path(__file__).resolve().parent / "ray_trial"


def nascli(cluster, home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = cluster.env()
    env["NASCLI_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(cluster.command([*nascli_command(), *args]), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def config(tmp_path: Path, address: str, sleep: float = 1.0, **overrides) -> Path:
    doc = {
        "experimentName": "ray-e2e", "trialConcurrency": 4, "maxTrialNum": 8,
        "trainingServicePlatform": "ray",
        "rayConfig": {"address": address, "cpusPerTrial": 0.5, "orphanTimeout": "5m"},
        "searchSpacePath": str(TRIAL_DIR / "search_space.json"),
        "tuner": {"builtinTunerName": "Random", "classArgs": {"seed": 3}},
        "trial": {"command": f"RAY_TRIAL_SLEEP={sleep} python trial.py",
                  "codeDir": str(TRIAL_DIR), "gpuNum": 1},
    }  # fmt: skip
    doc.update(overrides)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def wait_status(cluster, home: Path, statuses: set[str], timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = json.loads(nascli(cluster, home, "status", "--json").stdout)
        if status["status"] in statuses or time.monotonic() > deadline:
            return status
        time.sleep(1.0)


def trials(cluster, home: Path) -> list[dict]:
    return json.loads(nascli(cluster, home, "trial", "ls", "--json").stdout)


def trial_processes(cluster) -> list[int]:
    found = []
    for pid in cluster.processes():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        argv = cmdline.split(b"\0")
        if b"trial.py" in argv and b"python" in argv[0]:  # the trial, not its /bin/sh launcher
            found.append(pid)
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_eight_trials_on_two_nodes_with_disjoint_gpus(ray_cluster, home, tmp_path):  # noqa: F811
    created = nascli(ray_cluster, home, "create", "--config",
                     str(config(tmp_path, ray_cluster.address)))  # fmt: skip
    assert created.returncode == 0, created.stderr
    status = wait_status(ray_cluster, home, {"DONE", "ERROR", "STOPPED"})
    assert status["status"] == "DONE", status
    rows = trials(ray_cluster, home)
    assert [r["status"] for r in rows] == ["SUCCEEDED"] * 8
    assert all(len(r["intermediate"]) == 2 and r["final"] is not None for r in rows)
    assert len({r["node"] for r in rows}) == 2, [r["node"] for r in rows]  # both nodes used
    spans = []
    for row in rows:
        trial_dir = home / status["id"] / "trials" / row["id"]
        span = json.loads((trial_dir / "span.json").read_text())  # streamed back from its node
        assert span["cuda"] in ("0", "1")
        spans.append((row["node"], span["cuda"], span["start"], span["end"]))
    for i, (node, gpu, start, end) in enumerate(spans):  # one trial per GPU at a time
        for other in spans[i + 1 :]:
            if other[:2] == (node, gpu):
                assert end <= other[2] or other[3] <= start, (spans[i], other)
    assert trial_processes(ray_cluster) == []


def test_stop_leaves_no_trial_process_on_any_node(ray_cluster, home, tmp_path):  # noqa: F811
    path = config(tmp_path, ray_cluster.address, sleep=30, maxTrialNum=20)
    assert nascli(ray_cluster, home, "create", "--config", str(path)).returncode == 0
    deadline = time.monotonic() + 120
    while len(trial_processes(ray_cluster)) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(trial_processes(ray_cluster)) == 4
    stopped = nascli(ray_cluster, home, "stop")
    assert stopped.returncode == 0, stopped.stderr
    deadline = time.monotonic() + 30
    while trial_processes(ray_cluster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert trial_processes(ray_cluster) == []
    assert {r["status"] for r in trials(ray_cluster, home)} == {"USER_CANCELED"}


def test_manager_killed_then_resumed_reattaches_to_running_trials(
    ray_cluster, home, tmp_path  # noqa: F811
) -> None:
    path = config(tmp_path, ray_cluster.address, sleep=6, maxTrialNum=4)
    assert nascli(ray_cluster, home, "create", "--config", str(path)).returncode == 0
    deadline = time.monotonic() + 120
    while len(trial_processes(ray_cluster)) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    status = json.loads(nascli(ray_cluster, home, "status", "--json").stdout)
    os.kill(status["manager"]["pid"], signal.SIGKILL)
    running = trial_processes(ray_cluster)
    assert len(running) == 4  # the trials outlive their manager
    resumed = nascli(ray_cluster, home, "resume", status["id"])
    assert resumed.returncode == 0, resumed.stderr
    status = wait_status(ray_cluster, home, {"DONE", "ERROR", "STOPPED"})
    assert status["status"] == "DONE", status
    rows = trials(ray_cluster, home)
    assert [r["status"] for r in rows] == ["SUCCEEDED"] * 4  # adopted, each counted once
    assert all(len(r["intermediate"]) == 2 for r in rows)


def test_a_lost_node_fails_its_trials_and_they_are_retried(
    ray_cluster, home, tmp_path  # noqa: F811
) -> None:
    path = config(tmp_path, ray_cluster.address, sleep=8, maxTrialNum=4, maxTrialRetries=1)
    assert nascli(ray_cluster, home, "create", "--config", str(path)).returncode == 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = trials(ray_cluster, home)
        if len({r["node"] for r in rows if r["status"] == "RUNNING"} - {"(placing)"}) == 2:
            break
        time.sleep(0.5)
    ray_cluster.kill_node(1)
    status = wait_status(ray_cluster, home, {"DONE", "ERROR", "STOPPED"}, timeout=400)
    assert status["status"] == "DONE", status
    rows = trials(ray_cluster, home)
    lost = [r for r in rows if r["status"] == "FAILED"]
    assert lost and all("trial lost" in (r["reason"] or "") for r in lost), rows
    succeeded = [r for r in rows if r["status"] == "SUCCEEDED"]
    assert sorted({r["parameter_id"] for r in succeeded}) == [0, 1, 2, 3]  # every one finished
    assert all(r["attempt"] == 2 for r in succeeded if r["parameter_id"] in
               {x["parameter_id"] for x in lost})  # fmt: skip
