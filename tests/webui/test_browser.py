"""The web UI in headless Chromium (Debian's, driven by Playwright): what a person sees.

Screenshots go to each test's temp dir (and to $NASCLI_WEBUI_SHOTS when set, to look at them or
refresh docs/webui.png). Few tests, each loading several pages, to stay fast.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nascli.experiment.store import ExperimentStore
from nascli.experiment.trials import Ledger
from tests.webui.browser import chromium_path, open_browser
from tests.webui.conftest import Running, start_server
from tests.webui.synthetic import make_store, parameters
from tests.webui.test_runlog import write_log

_PATH, _WHY = chromium_path()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_PATH is None, reason=f"browser tests need Chromium: {_WHY}"),
]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with open_browser(tmp_path) as context:
        page = context.new_page()
        page.problems = []  # console errors (a CSP violation is one) and uncaught exceptions
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.set_default_timeout(30_000)
        yield page


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if target := os.environ.get("NASCLI_WEBUI_SHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


def painted_pixels(page: Any, selector: str) -> int:
    """Non-transparent pixels on the canvases under ``selector``: a drawn chart has many."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel + ' canvas')].reduce((n, c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let k = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) k++; return n + k; }, 0)""",
        selector,
    )


def wait_until(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression from here (Playwright's wait_for_function evaluates strings with
    eval, which the page's Content Security Policy rightly refuses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.1)


def open_experiment_page(page: Any, base: str, exp_id: str) -> None:
    page.goto(f"{base}/experiments/{exp_id}")
    page.wait_for_selector("main[data-loaded='1']")


def test_pages_of_a_real_experiment(
    page: Any, webui: Running, real_experiment: str, tmp_path: Path
):
    exp = real_experiment
    status = webui.get(f"/api/experiments/{exp}").json()
    page.goto(webui.base + "/")
    row = page.locator(f"#experiments tr[data-experiment='{exp}']")
    assert row.locator("td").nth(4).inner_text() == "6"  # trials
    shot(page, tmp_path, "list")
    row.locator("a").click()
    page.wait_for_selector("main[data-loaded='1']")
    assert page.locator("#trial-count").inner_text() == "6"
    best = status["best"]
    assert page.locator("#best-trial").inner_text() == best["id"]
    keys = page.locator("#best-arch th").all_inner_texts()
    values = page.locator("#best-arch td").all_inner_texts()
    arch = best["architecture"]
    assert keys == sorted(arch)
    assert values == [v if isinstance(v, str) else "+".join(map(str, v)) for v in arch.values()]
    # Curves drawn: the best 10 (here the 5 that succeeded) and any running trial.
    assert page.locator("#curves").get_attribute("data-series") == "5"
    assert painted_pixels(page, "#curves") > 500
    assert painted_pixels(page, "#best-trials") > 500
    assert painted_pixels(page, "#best-time") > 500
    # Per choice: every succeeded trial counted once under each key.
    counts = page.locator(".choice[data-key='conv1'] .cand").evaluate_all(
        "gs => gs.map(g => Number(g.dataset.count))"
    )
    assert sum(counts) == 5 and len(counts) == 4
    assert page.locator("#trials tbody tr").count() == 6
    shot(page, tmp_path, "experiment")
    # Filter by status: only the crashed trial is left.
    page.select_option("#status-filter", "FAILED")
    assert page.locator("#trials tbody tr").count() == 1
    assert page.locator("#table-info").inner_text().startswith("1–1 of 1 trials")
    page.locator("#trials tbody tr a").click()
    page.wait_for_selector("main[data-loaded='1'] #stderr")
    wait_until(page, "document.querySelector('#stderr').textContent.length > 0")
    assert "crashes on purpose" in page.locator("#stderr").inner_text()
    assert "FAILED" in page.locator("#trial-head").inner_text()
    assert painted_pixels(page, "#trial-curve") > 100
    shot(page, tmp_path, "trial")
    # Back to the experiment through the page's own links; a per-choice candidate filters.
    page.go_back()
    page.wait_for_selector("main[data-loaded='1'] .choice")
    picked = page.locator(".choice[data-key='conv1'] .cand").filter(has_not=page.locator(".none"))
    name = picked.first.get_attribute("data-candidate")
    n = int(picked.first.get_attribute("data-count"))
    picked.first.click()
    assert page.locator("#choice-filter").inner_text().startswith(f"conv1 = {name}")
    assert page.locator("#trials tbody tr[data-status='SUCCEEDED']").count() == n
    assert page.problems == []


def test_ten_thousand_trials_stay_usable(page: Any, webui: Running, tmp_path: Path):
    store = make_store(tmp_path / "big", 10_000, running=2, failed_every=9)
    began = time.monotonic()
    open_experiment_page(page, webui.base, store.id)
    first_render = time.monotonic() - began
    assert page.locator("#trial-count").inner_text() == "10002"
    assert page.locator("#table-info").inner_text().startswith("1–50 of 10,002 trials")
    assert page.locator("#trials tbody tr").count() == 50
    assert int(page.locator("#best-trials").get_attribute("data-points")) > 2 * 8_000
    assert painted_pixels(page, "#best-trials") > 2_000
    # The newest first by default; sorted by final, the best trial heads the table.
    assert page.locator("#trials tbody tr").first.get_attribute("data-trial") == "10001"
    page.locator("th[data-col='final']").click()
    best = webui.get(f"/api/experiments/{store.id}").json()["best"]
    assert page.locator("#trials tbody tr").first.get_attribute("data-trial") == best["id"]
    page.locator("#next-page").click()
    assert page.locator("#page-info").inner_text() == "page 2 of 201"
    page.select_option("#status-filter", "FAILED")
    failed = store.status_counts()["FAILED"]
    assert page.locator("#table-info").get_attribute("data-matching") == str(failed)
    page.fill("#text-filter", "conv1=skip")
    wait_until(page, f"document.querySelector('#table-info').dataset.matching !== '{failed}'"
    )
    texts = page.locator("#trials tbody td.arch").all_inner_texts()
    assert texts and all("conv1=skip" in t for t in texts)
    shot(page, tmp_path, "ten_thousand")
    assert page.problems == []
    print(f"first full render of 10,002 trials: {first_render:.2f} s")


def test_odd_data_is_shown_escaped_and_the_page_says_what_is_missing(
    page: Any, webui: Running, tmp_path: Path
):
    empty = make_store(tmp_path / "empty", 0, status="RUNNING", name="empty")
    open_experiment_page(page, webui.base, empty.id)
    assert page.locator("#trial-count").inner_text() == "0"
    assert "No succeeded trial" in page.locator("#best").inner_text()
    assert "No intermediate results yet" in page.locator("#curves").inner_text()
    assert "No trials yet" in page.locator("#trials").inner_text()
    shot(page, tmp_path, "empty")

    odd = make_store(tmp_path / "odd", 6, failed_every=3, name="<b>odd</b> & NaN", running=1)
    odd.add_metric("0", 50, "PERIODICAL", float("nan"), time.time())
    odd.add_metric("4", 50, "PERIODICAL", float("inf"), time.time())
    hostile = "<img src=x onerror=\"document.body.dataset.pwned=1\">"
    script = "<script>document.body.dataset.pwned=1</script>"
    odd.update_trial("2", reason=f"exit code 1 {hostile} {script}")
    conn = sqlite3.connect(odd.dir / "experiment.sqlite")
    params = parameters(__import__("random").Random(5))
    params["conv1"] = {"_value": hostile, "_idx": 9}  # not in the search space
    conn.execute(
        "UPDATE trials SET parameters = ?, final = '1e999' WHERE id = '3'", (json.dumps(params),)
    )
    conn.execute("UPDATE trials SET final = NULL WHERE id = '5'")
    conn.commit()
    conn.close()
    (odd.trial_paths("2").dir).mkdir(parents=True, exist_ok=True)
    odd.trial_paths("2").stderr.write_bytes(b"\xff\xfe binary <script>x</script>\x1b[31m\n")
    open_experiment_page(page, webui.base, odd.id)
    assert page.locator("h1").first.inner_text() == "<b>odd</b> & NaN"
    assert hostile in page.locator("#trials").inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.locator("#unusable").inner_text().startswith("2 succeeded trial(s)")
    assert painted_pixels(page, "#curves") > 100
    shot(page, tmp_path, "odd")
    page.goto(f"{webui.base}/experiments/{odd.id}/trials/2")
    wait_until(page, "document.querySelector('#stderr')?.textContent.includes('binary')")
    assert "<script>x</script>" in page.locator("#stderr").inner_text()
    assert page.evaluate("document.body.dataset.pwned") is None
    # Deleted while shown: the page says so; the server goes on serving.
    page.goto(f"{webui.base}/experiments/{odd.id}")
    page.wait_for_selector("main[data-loaded='1']")
    odd.close()
    shutil.rmtree(odd.dir)
    page.wait_for_selector("main[data-gone='1']", timeout=30_000)
    assert "does not exist" in page.locator("#banner").inner_text()
    shot(page, tmp_path, "deleted")
    assert webui.get("/api/experiments").status == 200
    assert page.problems == [] or all("404" in p for p in page.problems)


def test_running_trials_update_live(page: Any, webui: Running, tmp_path: Path):
    store = make_store(tmp_path, 8, running=1, status="RUNNING")
    open_experiment_page(page, webui.base, store.id)
    assert page.locator("#curves").get_attribute("data-running") == "1"
    before = int(page.locator("#curves").get_attribute("data-points"))
    writer = ExperimentStore(store.dir)
    try:
        with writer.transaction():  # the running trial reports, a new trial starts
            writer.add_metric("8", 40, "PERIODICAL", 0.91, time.time())
            writer.add_trial("9", 9, 9, parameters(__import__("random").Random(2)))
            Ledger(writer).launch("9", pid=0, token=None, started=time.time(), gpus=None)
            writer.add_metric("9", 0, "PERIODICAL", 0.5, time.time())
    finally:
        writer.close()
    wait_until(page, "document.querySelector('#trial-count').textContent === '10'")
    wait_until(page, f"Number(document.querySelector('#curves').dataset.points) >= {before + 2}"
    )
    assert page.locator("#curves").get_attribute("data-running") == "2"
    assert page.locator("#trials tbody tr").first.get_attribute("data-trial") == "9"
    assert page.problems == []


def test_oneshot_run_page_shows_weights_per_choice_and_the_export(page: Any, tmp_path: Path):
    log = write_log(tmp_path / "logs" / "darts", 2)
    running = start_server(oneshot=[tmp_path / "logs"])
    try:
        page.goto(running.base + "/")
        page.locator("#runs a").click()
        page.wait_for_selector("main[data-loaded='1'] .choice")
        assert page.locator("#run-weights .choice").count() == 2
        op = page.locator(".choice[data-key='cell0_op']")
        assert op.locator(".chart").get_attribute("data-series") == "3"
        assert painted_pixels(page, ".choice[data-key='cell0_op']") > 300
        assert op.locator(".barrow").count() == 3
        assert "conv3x3" in page.locator("#export").inner_text()
        assert "RUNNING" in page.locator("#run-head").inner_text()
        write_log(log.parent, 4, end=True)  # the trainer finishes
        wait_until(page, "document.querySelector('#run-head').textContent.includes('ENDED')")
        assert page.locator("#run-metrics").get_attribute("data-points") == "4"
        shot(page, tmp_path, "oneshot")
        assert page.problems == []
    finally:
        running.server.shutdown()
        running.server.server_close()
