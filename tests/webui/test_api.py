"""The web UI's JSON API over plain HTTP against a real server on loopback."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from nascli.experiment.store import ExperimentStore
from nascli.experiment.trials import Ledger, TrialStatus
from tests.helpers import run_nascli
from tests.webui.conftest import Running, fetch
from tests.webui.synthetic import make_store, parameters


def strict_json(data: bytes):
    """Parse as a browser would: NaN / Infinity are not JSON."""

    def refuse(token: str):
        raise ValueError(f"non-JSON constant {token}")

    return json.loads(data, parse_constant=refuse)


def cli_json(*args: str):
    result = run_nascli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_api_returns_what_the_cli_json_commands_print(
    webui: Running, real_experiment: str, tmp_path: Path
):
    exp = real_experiment
    assert webui.get("/api/experiments").json() == cli_json("experiment", "list", "--all", "--json")
    assert webui.get("/api/experiments?running=1").json() == cli_json(
        "experiment", "list", "--json"
    )
    assert webui.get(f"/api/experiments/{exp}").json() == cli_json("status", exp, "--json")
    trials = webui.get(f"/api/experiments/{exp}/trials").json()
    assert trials == cli_json("trial", "ls", exp, "--json")
    assert len(trials) == 6 and [t["status"] for t in trials].count("FAILED") == 1
    failed = webui.get(f"/api/experiments/{exp}/trials?status=failed").json()
    assert failed == cli_json("trial", "ls", exp, "--status", "FAILED", "--json")
    for sort in ("best", "newest"):
        page = webui.get(f"/api/experiments/{exp}/trials?sort={sort}&limit=3").json()
        assert page == cli_json("trial", "ls", exp, "--sort", sort, "--limit", "3", "--json")
    # The failed trial's page data: its reason and the traceback at the end of its stderr.
    detail = webui.get(f"/api/experiments/{exp}/trials/{failed[0]['id']}").json()
    assert detail["status"] == "FAILED" and detail["reason"]
    assert "crashes on purpose" in detail["stderr_tail"]["text"]
    assert [m["type"] for m in detail["metrics"]] == ["PERIODICAL"]
    ok = next(t for t in trials if t["status"] == "SUCCEEDED")
    detail = webui.get(f"/api/experiments/{exp}/trials/{ok['id']}").json()
    assert [m["type"] for m in detail["metrics"]] == ["PERIODICAL", "FINAL"]
    assert detail["metrics"][-1]["value"] == ok["final"] and detail["metrics"][-1]["time"] > 0
    # Exports are the CLI's files, byte for byte.
    for kind in ("csv", "json"):
        reply = webui.get(f"/api/experiments/{exp}/export?type={kind}")
        assert reply.status == 200 and "attachment" in reply.headers["Content-Disposition"]
        out = tmp_path / f"export.{kind}"
        result = run_nascli("experiment", "export", exp, "--type", kind, "--file", str(out))
        assert result.returncode == 0, result.stderr
        assert reply.body == out.read_bytes()


def test_trials_are_read_incrementally(webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 30, running=2)
    base = f"/api/experiments/{store.id}/trials"
    summary = webui.get(f"/api/experiments/{store.id}").json()
    every = webui.get(base).json()
    assert [t["id"] for t in every] == [str(i) for i in range(32)]
    assert webui.get(f"{base}?after=9").json() == every[10:]
    assert webui.get(f"{base}?after=31").json() == []
    assert webui.get(f"{base}?after=9&limit=5").json() == every[10:15]
    assert webui.get(f"{base}?ids=3,30,31").json() == [every[3], every[30], every[31]]
    assert [t["id"] for t in webui.get(f"{base}?status=RUNNING").json()] == ["30", "31"]
    assert webui.get(f"{base}?sort=newest&after=29&limit=2").json() == every[27:29][::-1]
    assert webui.get(f"{base}?sort=newest&ids=3,30").json() == [every[30], every[3]]
    both = webui.get(f"{base}?status=running,succeeded").json()
    assert both == [t for t in every if t["status"] in ("RUNNING", "SUCCEEDED")]
    # A running trial ends and a new one starts: the two polls the page makes see both.
    with store.transaction():
        Ledger(store).finish("30", TrialStatus.SUCCEEDED, None, time.time(), 0, final=0.99)
        store.add_trial("32", 32, 32, parameters(__import__("random").Random(1)))
    assert [t["id"] for t in webui.get(f"{base}?after=31").json()] == ["32"]
    assert webui.get(f"{base}?ids=30,31").json()[0]["final"] == 0.99
    # The cached whole list and status follow the store at once.
    assert len(webui.get(base).json()) == 33
    now = webui.get(f"/api/experiments/{store.id}").json()
    assert now["trials"]["SUCCEEDED"] == summary["trials"]["SUCCEEDED"] + 1
    assert now["best"]["id"] == "30" and now["best"]["metric"] == 0.99


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ("after=nosuchtrial", 404, "no trial 'nosuchtrial'"),
        ("status=DONE", 400, "status must be one of"),
        ("sort=worst", 400, "sort must be one of"),
        ("limit=0", 400, "limit must be between"),
        ("limit=ten", 400, "limit must be an integer"),
        ("after=../x", 400, "not valid"),
        ("ids=1,a/b", 400, "not valid"),
    ],
)
def test_bad_queries_get_one_clear_error(webui: Running, tmp_path: Path, query, status, needle):
    store = make_store(tmp_path, 3)
    reply = webui.get(f"/api/experiments/{store.id}/trials?{query}")
    assert reply.status == status
    assert needle in reply.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/experiments/nosuchexp",
        "/api/experiments/nosuchexp/trials",
        "/api/experiments/..%2F..%2Fetc",
        "/api/experiments/../../etc/passwd",
        "/api/experiments/%2e%2e/trials",
        "/api/oneshot/nosuchrun",
        "/api/nosuchroute",
        "/static/../server.py",
        "/static/%2e%2e/api.py",
        "/static/vendor/../../api.py",
        "/etc/passwd",
    ],
)
def test_unknown_ids_and_path_traversal_get_404_json(webui: Running, tmp_path: Path, path: str):
    make_store(tmp_path, 2)
    reply = webui.get(path)
    assert reply.status == 404, (path, reply.body[:200])
    assert reply.headers["Content-Type"] == "application/json"
    assert "error" in reply.json()
    assert b"import " not in reply.body and b"root:" not in reply.body


def test_unknown_trial_is_404(webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 2)
    reply = webui.get(f"/api/experiments/{store.id}/trials/77")
    assert reply.status == 404 and "no trial '77'" in reply.json()["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_only_get_and_head_are_allowed(webui: Running, tmp_path: Path, method: str):
    store = make_store(tmp_path, 2)
    reply = webui.get(f"/api/experiments/{store.id}", method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"
    assert "read-only" in reply.json()["error"]
    assert store.experiment().status == "DONE" and len(store.trials()) == 2


def test_head_has_the_headers_and_no_body(webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 2)
    get = webui.get(f"/api/experiments/{store.id}/trials")
    head = webui.get(f"/api/experiments/{store.id}/trials", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] != "0"


def test_every_response_carries_the_security_headers(webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 2)
    for path in ["/", f"/experiments/{store.id}", "/static/app.js", "/api/experiments", "/nope"]:
        reply = webui.get(path)
        csp = reply.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["X-Frame-Options"] == "DENY"
    assert webui.get("/api/experiments").headers["Cache-Control"] == "no-store"


def test_page_and_vendored_chart_library_are_served(webui: Running):
    index = webui.get("/").body.decode()
    vendor = Path(__file__).resolve().parents[2] / "nascli/webui/static/vendor"
    (js,) = vendor.glob("uPlot-*.iife.min.js")
    assert f"/static/vendor/{js.name}" in index
    assert "https://" not in index and "http://" not in index  # nothing from a CDN
    served = webui.get(f"/static/vendor/{js.name}")
    assert served.status == 200 and served.body == js.read_bytes()
    assert served.headers["Content-Type"].startswith("text/javascript")
    assert (vendor / js.name.replace(".iife.min.js", ".LICENSE")).read_text().startswith(
        "The MIT License"
    )
    etag = served.headers["ETag"]
    assert webui.get(f"/static/vendor/{js.name}", headers={"If-None-Match": etag}).status == 304
    gz = webui.get(f"/static/vendor/{js.name}", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip" and len(gz.body) < len(js.read_bytes())


def test_requests_addressed_to_another_host_are_refused_on_loopback(webui: Running):
    # A page on evil.example resolving its name to 127.0.0.1 (DNS rebinding) sends its own Host.
    assert webui.get("/api/experiments", headers={"Host": "evil.example"}).status == 421
    assert webui.get("/api/experiments", headers={"Host": "evil.example:8080"}).status == 421
    assert webui.get("/api/experiments", headers={"Host": "localhost:8080"}).status == 200


def test_a_non_loopback_host_needs_the_token():
    from nascli.webui.api import WebApi
    from nascli.webui.security import Access
    from nascli.webui.server import WebUIServer

    # Bound to loopback for the test, with the access rule of a server bound to 0.0.0.0.
    access = Access("0.0.0.0")
    assert access.token and len(access.token) >= 32
    assert Access("0.0.0.0").token != access.token  # random per server
    server = WebUIServer(("127.0.0.1", 0), WebApi(), access, verbose=False)
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    serve.daemon = True
    serve.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert "token=" in server.url
        assert fetch(base + "/api/experiments").status == 401
        assert fetch(base + "/").status == 401
        assert fetch(base + "/api/experiments?token=wrong").status == 401
        wrong = {"Cookie": "nascli_webui=wrong"}
        assert fetch(base + "/api/experiments", headers=wrong).status == 401
        entry = fetch(f"{base}/experiments/x?token={access.token}&a=1")
        assert entry.status == 303
        assert entry.headers["Location"] == "/experiments/x?a=1"  # the token leaves the URL
        cookie = entry.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = cookie.split(";")[0]
        assert fetch(base + "/api/experiments", headers={"Cookie": jar}).status == 200
        bearer = {"Authorization": f"Bearer {access.token}"}
        assert fetch(base + "/api/experiments", headers=bearer).status == 200
        elsewhere = {"Host": "anything.example", **bearer}  # no Host rule off loopback
        assert fetch(base + "/api/experiments", headers=elsewhere).status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_non_finite_and_missing_metrics_are_valid_json(webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 4)
    # A store written by something else (an older version, a hand edit): NaN / inf inside.
    store.add_metric("1", 99, "PERIODICAL", float("nan"), time.time())
    store.add_metric("2", 99, "PERIODICAL", float("inf"), time.time())
    conn = sqlite3.connect(store.dir / "experiment.sqlite")
    conn.execute("UPDATE trials SET final = '1e999' WHERE id = '3'")  # valid JSON, infinite
    conn.execute("UPDATE trials SET final = NULL, status = 'SUCCEEDED' WHERE id = '0'")
    conn.commit()
    conn.close()
    for path in ["", "/trials", "/trials/1", "/trials?after=0"]:
        reply = webui.get(f"/api/experiments/{store.id}{path}")
        assert reply.status == 200, path
        strict_json(reply.body)
    rows = {t["id"]: t for t in strict_json(webui.get(f"/api/experiments/{store.id}/trials").body)}
    assert rows["1"]["intermediate"][-1] is None and rows["2"]["intermediate"][-1] is None
    assert rows["3"]["final"] is None and rows["0"]["final"] is None


def test_an_experiment_deleted_while_served_is_404_and_the_server_lives(
    webui: Running, tmp_path: Path
):
    store = make_store(tmp_path, 3)
    assert webui.get(f"/api/experiments/{store.id}").status == 200
    store.close()
    shutil.rmtree(store.dir)
    for path in ["", "/trials", "/trials/1", "/space"]:
        reply = webui.get(f"/api/experiments/{store.id}{path}")
        assert reply.status == 404, (path, reply.body)
    assert webui.get("/api/experiments").json() == []


def test_a_store_being_written_is_read_consistently(webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 10, status="RUNNING")
    writer = ExperimentStore(store.dir)
    stop = threading.Event()

    def write() -> None:
        import random

        rng = random.Random(0)
        seq = 10
        while not stop.is_set() and seq < 400:
            with writer.transaction():
                writer.add_trial(str(seq), seq, seq, parameters(rng))
                writer.add_metric(str(seq), 0, "PERIODICAL", 0.5, time.time())
            seq += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        seen = []
        while thread.is_alive() and len(seen) < 200:
            reply = webui.get(f"/api/experiments/{store.id}/trials")
            assert reply.status == 200
            rows = reply.json()
            assert [r["id"] for r in rows] == [str(i) for i in range(len(rows))]
            summary = webui.get(f"/api/experiments/{store.id}")
            assert summary.status == 200
            seen.append(len(rows))
        assert seen == sorted(seen)
    finally:
        stop.set()
        thread.join()
        writer.close()


def test_an_empty_experiment_and_an_empty_home(webui: Running, tmp_path: Path):
    assert webui.get("/api/experiments").json() == []
    store = make_store(tmp_path, 0, status="RUNNING")
    assert webui.get(f"/api/experiments/{store.id}/trials").json() == []
    summary = webui.get(f"/api/experiments/{store.id}").json()
    assert summary["best"] is None and sum(summary["trials"].values()) == 0
    space = webui.get(f"/api/experiments/{store.id}/space").json()
    assert space["shortcut"] == {"type": "input_choice", "candidates": ["stem", "conv1", "conv2"],
                                 "n_chosen": 1}  # fmt: skip


def test_api_index_lists_the_routes(webui: Running):
    routes = webui.get("/api").json()["routes"]
    assert "/api/experiments/{id}/trials" in routes and "/api/oneshot/{run}" in routes


def test_an_experiment_being_created_does_not_break_the_list(
    webui: Running, tmp_path: Path, home: Path
):
    store = make_store(tmp_path, 2)
    half = home / "halfmade"  # `create` between making the database file and its first row
    half.mkdir()
    sqlite3.connect(half / "experiment.sqlite").close()
    assert [r["id"] for r in webui.get("/api/experiments").json()] == [store.id]
    reply = webui.get("/api/experiments/halfmade")
    assert reply.status == 503 and "cannot be read right now" in reply.json()["error"]
