"""Web-UI fixtures: a real server on a free loopback port (shut down whatever happens), plain
HTTP helpers, and real experiments (one run by the real manager, others written through the
store's own write path by ``synthetic.make_store``)."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nascli.experiment.control import stop_experiment
from nascli.experiment.store import ExperimentStore, list_experiment_dirs
from nascli.webui.server import WebUIServer, make_server
from tests.experiments import quick_config
from tests.helpers import run_nascli


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Reply:
    """One HTTP request (no redirects followed); any status is returned, not raised."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=60) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read())


@dataclass
class Running:
    server: WebUIServer
    base: str

    def get(self, path: str, **kwargs: Any) -> Reply:
        return fetch(self.base + path, **kwargs)


def start_server(oneshot: list[Path] | None = None, host: str = "127.0.0.1") -> Running:
    server = make_server(host, 0, oneshot or [])
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    serve.daemon = True
    serve.start()
    port = server.server_address[1]
    return Running(server, f"http://127.0.0.1:{port}")


@pytest.fixture
def webui() -> Iterator[Running]:
    running = start_server()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


@pytest.fixture
def real_experiment(tmp_path: Path) -> Iterator[str]:
    """An experiment run to its end by the real `nascli create --foreground` (6 quick trials,
    one of which crashes); its id."""
    config = quick_config(tmp_path / "cfg")
    try:
        result = run_nascli(
            "create", "--config", str(config), "--foreground", timeout=180,
            env={"QUICK_TRIAL_CRASH_SEQ": "2"},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        (exp_dir,) = list_experiment_dirs()
        yield exp_dir.name
    finally:
        for exp_dir in list_experiment_dirs():
            store = ExperimentStore(exp_dir)
            if store.experiment().status in ("RUNNING", "NO_MORE_TRIAL"):
                stop_experiment(store, grace=1.0, timeout=10.0)


@pytest.fixture
def home() -> Path:
    return Path(os.environ["NASCLI_HOME"])
