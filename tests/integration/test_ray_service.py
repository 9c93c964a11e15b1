"""The Ray training service on a real two-node Ray cluster (``tests/ray_cluster.py``): the
training-service contract every service passes, run inside the cluster's namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray_cluster import ray_cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_ray_service_passes_the_training_service_contract(ray_cluster):  # noqa: F811
    env = ray_cluster.env()
    env["NASCLI_TEST_RAY_ADDRESS"] = ray_cluster.address
    proc = subprocess.run(
        ray_cluster.command([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/ray_contract_inner.py"]),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    tail = "\n".join(proc.stdout.splitlines()[-40:])
    assert proc.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail, tail
