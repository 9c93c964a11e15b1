"""A real one-shot search logs its run (``log_dir=``) and the web UI shows it: API and page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nascli.nas.oneshot import DartsTrainer
from tests.oneshot_models import TinyNet, accuracy, tiny_data
from tests.webui.browser import chromium_path, open_browser
from tests.webui.conftest import start_server
from tests.webui.test_browser import painted_pixels


@pytest.mark.slow
def test_a_darts_search_with_log_dir_is_shown(tmp_path: Path):
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    trainer = DartsTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, 2, tiny_data(32),
                           batch_size=16, log_dir=tmp_path / "logs" / "darts")  # fmt: skip
    trainer.fit()
    running = start_server(oneshot=[tmp_path / "logs"])
    try:
        (summary,) = running.get("/api/oneshot").json()
        assert summary["trainer"] == "DartsTrainer"
        assert (summary["epochs_done"], summary["num_epochs"], summary["ended"]) == (2, 2, True)
        run = running.get(f"/api/oneshot/{summary['id']}").json()
        assert set(run["choices"]) == {"op1", "op2", "cell_in"}
        assert run["choices"]["op1"]["candidates"] == ["conv3", "conv5", "pool"]
        for epoch in run["epochs"]:
            assert len(epoch["weights"]["op1"]) == 3 and "train/loss" in epoch["metrics"]
        assert run["export"] == trainer.export() and run["bad_lines"] == 0
        path, why = chromium_path()
        if path is None:
            pytest.skip(f"the page part needs Chromium: {why}")
        with open_browser(tmp_path) as context:
            page = context.new_page()
            page.goto(f"{running.base}/oneshot/{summary['id']}")
            page.wait_for_selector("main[data-loaded='1'] .choice")
            deadline = time.monotonic() + 10
            while painted_pixels(page, "#run-weights") < 1000 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert page.locator("#run-weights .choice").count() == 3
            assert painted_pixels(page, "#run-weights") > 1000
            assert "ENDED" in page.locator("#run-head").inner_text()
            page.screenshot(path=str(tmp_path / "darts_run.png"), full_page=True)
    finally:
        running.server.shutdown()
        running.server.server_close()
