"""One-shot run logs (``oneshot.jsonl``): the reader and ``/api/oneshot`` over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from nascli.webui.runlog import RUN_LOG_FILE, read_run_log
from tests.webui.conftest import start_server

CHOICES = {
    "cell0_op": {"type": "layer_choice", "candidates": ["conv3x3", "maxpool", "skip"]},
    "cell0_in": {"type": "input_choice", "candidates": ["x0", "x1"], "n_chosen": 1},
}


def write_log(log_dir: Path, epochs: int, end: bool = False, tail: str = "") -> Path:
    """A run log as the trainers write it: start, one line per epoch, maybe an end."""
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = [{"kind": "start", "time": 1000.0, "trainer": "DartsTrainer", "num_epochs": 4,
              "choices": CHOICES}]  # fmt: skip
    for i in range(epochs):
        w = [round(x, 6) for x in (0.2 + 0.2 * i, 0.5 - 0.1 * i, 0.3 - 0.1 * i)]
        export = {"cell0_op": "conv3x3" if i else "maxpool", "cell0_in": ["x0"]}
        lines.append({"kind": "epoch", "time": 1001.0 + i, "epoch": i,
                      "metrics": {"loss": 1.0 / (i + 1), "acc": None},
                      "weights": {"cell0_op": w, "cell0_in": [0.6, 0.4]},
                      "export": export})  # fmt: skip
    if end:
        lines.append({"kind": "end", "time": 1010.0,
                      "export": {"cell0_op": "conv3x3", "cell0_in": ["x0"]}})  # fmt: skip
    path = log_dir / RUN_LOG_FILE
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + tail)
    return path


def test_a_log_being_written_is_read_up_to_its_last_whole_line(tmp_path: Path):
    path = write_log(tmp_path / "run", 2, tail='{"kind": "epoch", "time": 10')
    run = read_run_log(path)
    assert run["trainer"] == "DartsTrainer" and run["num_epochs"] == 4
    assert [e["epoch"] for e in run["epochs"]] == [0, 1]
    assert run["writing"] and not run["ended"] and run["bad_lines"] == 0
    assert run["epochs"][1]["weights"]["cell0_op"] == [0.4, 0.4, 0.2]
    assert run["epochs"][0]["metrics"] == {"loss": 1.0, "acc": None}
    assert run["export"] == {"cell0_op": "conv3x3", "cell0_in": ["x0"]}
    assert run["choices"]["cell0_in"]["n_chosen"] == 1


def test_garbage_lines_are_skipped_and_counted(tmp_path: Path):
    path = write_log(tmp_path / "run", 1)
    with path.open("a") as f:
        f.write("not json\n[1, 2]\n" + '{"kind": "mystery"}\n' + "\xff\n")
        f.write(json.dumps({"kind": "epoch", "epoch": 1, "metrics": {"loss": "high"},
                            "weights": {"cell0_op": [1, "x", None]}}) + "\n")  # fmt: skip
    run = read_run_log(path)
    assert run["bad_lines"] == 4
    assert run["epochs"][1]["metrics"] == {"loss": None}
    assert run["epochs"][1]["weights"]["cell0_op"] == [1, None, None]


def test_a_log_without_its_start_line_names_candidates_by_index(tmp_path: Path):
    path = tmp_path / RUN_LOG_FILE
    path.write_text(json.dumps({"kind": "epoch", "time": 5.0, "epoch": 0, "metrics": {},
                                "weights": {"k": [0.1, 0.9]}}) + "\n")  # fmt: skip
    run = read_run_log(path)
    assert run["choices"] == {"k": {"type": None, "candidates": ["0", "1"]}}


def test_oneshot_api_lists_runs_and_follows_a_growing_log(tmp_path: Path):
    root = tmp_path / "logs"
    write_log(root / "a", 4, end=True)
    path_b = write_log(root / "nested" / "b", 1)
    running = start_server(oneshot=[root])
    try:
        runs = running.get("/api/oneshot").json()
        assert sorted(Path(r["path"]).name for r in runs) == ["a", "b"]
        b = next(r for r in runs if r["path"].endswith("b"))
        assert (b["epochs_done"], b["ended"], b["trainer"]) == (1, False, "DartsTrainer")
        reply = running.get(f"/api/oneshot/{b['id']}").json()
        assert len(reply["epochs"]) == 1
        write_log(path_b.parent, 3, end=True)  # the trainer went on and finished
        reply = running.get(f"/api/oneshot/{b['id']}").json()
        assert len(reply["epochs"]) == 3 and reply["ended"]
        assert running.get("/api/oneshot/000000000000").status == 404
        assert running.get("/api/oneshot/../../etc").status == 404
        # A non-finite value written by another writer is null on the wire.
        with path_b.open("a") as f:
            f.write('{"kind": "epoch", "time": 2, "epoch": 3, "metrics": {"loss": NaN}, '
                    '"weights": {"cell0_op": [Infinity, 0, 0]}}\n')  # fmt: skip
        raw = running.get(f"/api/oneshot/{b['id']}").body
        assert b"NaN" not in raw and b"Infinity" not in raw
        assert json.loads(raw)["epochs"][-1]["weights"]["cell0_op"][0] is None
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_a_resumed_run_goes_on_in_the_same_log(tmp_path: Path):
    path = write_log(tmp_path / "run", 2, end=True)
    first = read_run_log(path)["started"]
    with path.open("a") as f:  # resumed: a new start, epochs numbered on
        f.write(json.dumps({"kind": "start", "time": 2000.0, "trainer": "DartsTrainer",
                            "num_epochs": 4, "choices": CHOICES}) + "\n")  # fmt: skip
        f.write(json.dumps({"kind": "epoch", "time": 2001.0, "epoch": 2, "metrics": {},
                            "weights": {"cell0_op": [1, 0, 0]}}) + "\n")  # fmt: skip
    run = read_run_log(path)
    assert [e["epoch"] for e in run["epochs"]] == [0, 1, 2]
    assert not run["ended"] and run["started"] == first


def test_runs_logged_under_nascli_home_are_found_without_oneshot(home: Path):
    # enable_visualization() without log_dir logs to $NASCLI_HOME/oneshot/<run id>/.
    write_log(home / "oneshot" / "20261201-093000-darts-abc123", 1)
    running = start_server()
    try:
        (run,) = running.get("/api/oneshot").json()
        assert run["path"].endswith("20261201-093000-darts-abc123")
    finally:
        running.server.shutdown()
        running.server.server_close()
