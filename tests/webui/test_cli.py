"""``nascli webui`` as a user runs it: the real command in a subprocess, its URL, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascli.experiment.control import stop_experiment
from nascli.experiment.store import ExperimentStore, list_experiment_dirs
from tests.experiments import quick_config
from tests.helpers import REPO, nascli_command, run_nascli, torch_modules_after
from tests.webui.conftest import fetch
from tests.webui.synthetic import make_store


@pytest.mark.slow
def test_webui_prints_its_url_serves_and_stops_on_ctrl_c(tmp_path: Path):
    store = make_store(tmp_path, 3)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [*nascli_command(), "webui", "--port", "0"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("nascli web UI on http://127.0.0.1:"), line
        url = line.split()[4]
        rows = fetch(url + "api/experiments").json()
        assert [r["id"] for r in rows] == [store.id]
        assert fetch(url + f"experiments/{store.id}").body.startswith(b"<!doctype html>")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "web UI stopped" in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_arguments_get_one_clear_message(tmp_path: Path):
    result = run_nascli("webui", "--oneshot", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "--oneshot" in result.stderr and "is not a directory" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_nascli("webui", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_webui_and_its_server_import_no_torch():
    assert torch_modules_after(["webui", "--help"]) == []
    code = "import sys, nascli.webui.server; print(any(m == 'torch' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.slow
def test_create_prints_how_to_watch_the_experiment(tmp_path: Path):
    config = quick_config(tmp_path, maxTrialNum=1)
    try:
        result = run_nascli("create", "--config", str(config))
        assert result.returncode == 0, result.stderr
        (exp_dir,) = list_experiment_dirs()
        assert "nascli webui" in result.stdout
        assert f"http://127.0.0.1:8080/experiments/{exp_dir.name}" in result.stdout
    finally:
        for exp_dir in list_experiment_dirs():
            store = ExperimentStore(exp_dir)
            deadline = time.monotonic() + 30
            while store.experiment().status == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.2)
            if store.experiment().status in ("RUNNING", "NO_MORE_TRIAL"):
                stop_experiment(store, grace=1.0, timeout=10.0)
