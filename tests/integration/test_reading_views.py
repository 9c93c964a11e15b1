"""The reading commands at scale keep their outputs (byte for byte against main's goldens) and
show the right trials when paged, sorted and limited; stores made before the read index still
read, and the live views reread only what changed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nascli.experiment import store as store_module
from nascli.experiment.store import ExperimentStore, TrialQuery
from tests import reading_golden
from tests.stores import build_store


@pytest.fixture(scope="module")
def golden_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("golden") / "home"
    return home, reading_golden.build(home)


@pytest.mark.parametrize("name", sorted(reading_golden.COMMANDS))
def test_outputs_are_byte_identical_to_mains(golden_home, name: str) -> None:
    home, ids = golden_home
    which, argv, to_file = reading_golden.COMMANDS[name]
    out = home.parent / f"now-{name}"
    argv = [a.format(id=ids[which], out=out) for a in reading_golden.TODAY.get(name, argv)]
    text = reading_golden.run(home, ids, argv, out if to_file else None)
    golden = (reading_golden.GOLDEN / name).read_text()
    if name.endswith(".txt"):
        text, golden = map(reading_golden.same_but_padding, (text, golden))
    assert text == golden


def nascli(home: Path, *args: str, lines: int = 50) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NASCLI_HOME": str(home), "COLUMNS": "200", "LINES": str(lines)}
    return subprocess.run(
        [sys.executable, "-m", "nascli.cli.main", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def ids_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [row["id"] for row in json.loads(result.stdout)]


def best_first(rows: list[dict], maximize: bool = True) -> list[str]:
    sign = 1 if maximize else -1
    scored = [r for r in rows if r["final"] is not None]
    unscored = [r for r in rows if r["final"] is None]
    score = lambda r: r["final"]["default"] if isinstance(r["final"], dict) else r["final"]  # noqa: E731
    scored.sort(key=lambda r: (-sign * score(r), int(r["id"])))
    unscored.sort(key=lambda r: -int(r["id"]))
    return [r["id"] for r in scored + unscored]


def test_sorted_and_limited_json_show_the_right_trials(golden_home) -> None:
    home, ids = golden_home
    every = json.loads(nascli(home, "trial", "ls", ids["max"], "--json").stdout)
    assert [r["id"] for r in every] == [str(i) for i in range(60)]  # launch order, all
    best = ids_of(nascli(home, "trial", "ls", ids["max"], "--json", "--sort", "best"))
    assert best == best_first(every)
    top5 = ids_of(nascli(home, "trial", "ls", ids["max"], "--json", "--sort", "best", "-n", "5"))
    assert top5 == best_first(every)[:5]
    newest = ids_of(
        nascli(home, "trial", "ls", ids["max"], "--json", "--sort", "newest", "-n", "3")
    )
    assert newest == ["59", "58", "57"]
    failed = ids_of(
        nascli(home, "trial", "ls", ids["max"], "--json", "-s", "failed", "--sort", "newest")
    )
    assert failed == [r["id"] for r in reversed(every) if r["status"] == "FAILED"]
    low = json.loads(nascli(home, "trial", "ls", ids["min"], "--json").stdout)
    lowest = ids_of(nascli(home, "trial", "ls", ids["min"], "--json", "--sort", "best", "-n", "4"))
    assert lowest == best_first(low, maximize=False)[:4]


def test_the_table_shows_the_newest_screenful_and_says_so(golden_home) -> None:
    home, ids = golden_home
    result = nascli(home, "trial", "ls", ids["max"], lines=20)
    assert result.returncode == 0, result.stderr
    shown = [line.split()[0] for line in result.stdout.splitlines()[2:] if line[:1].isdigit()]
    assert shown == [str(i) for i in range(59, 59 - 14, -1)]  # 20 lines - 6, newest first
    assert "14 of 60 trials shown (newest first)" in result.stderr
    best = nascli(home, "trial", "ls", ids["max"], "--sort", "best", "--limit", "3")
    every = json.loads(nascli(home, "trial", "ls", ids["max"], "--json").stdout)
    rows = [line.split()[0] for line in best.stdout.splitlines()[2:] if line[:1].isdigit()]
    assert rows == best_first(every)[:3]


def test_all_streams_every_trial_once_with_one_header(golden_home) -> None:
    home, ids = golden_home
    result = nascli(home, "trial", "ls", ids["max"], "--all", "--sort", "launch")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(1 for line in lines if line.startswith("trial ")) == 1
    assert [line.split()[0] for line in lines[2:] if line[:1].isdigit()] == [
        str(i) for i in range(60)
    ]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--limit", "3"], "--all and --limit"),
        (["--sort", "bset"], "--sort: 'bset' is not an order"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_bad_listing_arguments_are_usage_errors(golden_home, args: list[str], message: str) -> None:
    home, ids = golden_home
    result = nascli(home, "trial", "ls", ids["max"], *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_keyset_pages_cover_every_trial_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    store = build_store(97, seed=5, metrics_per_trial=1, running=3)
    for sort in ("launch", "newest", "best"):
        for statuses in (None, ["SUCCEEDED"], ["FAILED", "RUNNING"]):
            whole = [t.id for t in store.trials_page(TrialQuery(sort, statuses))]
            paged, after = [], None
            while True:
                query = TrialQuery(sort, statuses, limit=8, after=after)
                page = [t.id for t in store.trials_page(query)]
                if not page:
                    break
                paged += page
                after = page[-1]
            assert paged == whole and len(set(whole)) == len(whole), (sort, statuses)
    assert list(store.trials_page(TrialQuery("best", after="no-such-trial"))) == []
    with pytest.raises(Exception, match="sort must be one of"):
        store.trials_page(TrialQuery("random"))


def test_a_store_made_before_the_read_index_still_reads_and_gains_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    store = build_store(40, seed=2, metrics_per_trial=2)
    expected = store.best_trial().id
    db = store.dir / "experiment.sqlite"
    store.close()
    conn = sqlite3.connect(db, isolation_level=None)  # today's schema: no trials_score index
    for name in ("trials_score", "trials_scored", "trials_unscored"):
        conn.execute(f"DROP INDEX {name}")
    conn.execute("BEGIN IMMEDIATE")  # a writer (an older manager) holds the write lock
    try:
        reader = ExperimentStore(store.dir)
        assert reader.best_trial().id == expected  # answered by a scan, without waiting
        assert reader.ensure_read_indexes() is False
    finally:
        conn.execute("COMMIT")
        conn.close()
    reader = ExperimentStore(store.dir)
    assert reader.best_trial().id == expected
    names = {r[0] for r in reader._conn.execute("SELECT name FROM sqlite_master")}
    assert "trials_score" in names  # made by the first read that could write
    plan = reader._conn.execute(
        f"EXPLAIN QUERY PLAN SELECT MAX({store_module._SCORE}) FROM trials "
        "WHERE status = 'SUCCEEDED'"
    ).fetchall()
    assert "trials_score" in str([tuple(r) for r in plan])
    assert {"trials_scored", "trials_unscored"} <= names


def _plan(store: ExperimentStore, sql: str) -> str:
    return str([tuple(r) for r in store._conn.execute(f"EXPLAIN QUERY PLAN {sql}")])


def test_best_first_pages_are_indexed_and_break_ties_in_launch_order(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    store = build_store(60, seed=6, metrics_per_trial=1, running=2)
    # Ties: every third succeeded trial gets the same score, plain or as a dict's default.
    with store.transaction():
        for t in store.trials(["SUCCEEDED"])[::3]:
            final = 0.75 if int(t.id) % 2 else {"default": 0.75, "loss": 0.25}
            store.update_trial(t.id, final=final)
    trials = store.trials()
    for maximize in (True, False):
        scored = [t for t in trials if t.final is not None]
        value = lambda t: t.final["default"] if isinstance(t.final, dict) else t.final  # noqa: E731
        scored.sort(key=lambda t: ((-1 if maximize else 1) * value(t), t.seq))
        unscored = sorted((t for t in trials if t.final is None), key=lambda t: -t.seq)
        expected = [t.id for t in scored + unscored]
        assert [t.id for t in store.trials_page(TrialQuery("best", maximize=maximize))] == expected
        for size in (1, 7, 45):
            paged, after = [], None
            while page := [t.id for t in store.trials_page(TrialQuery(
                    "best", limit=size, after=after, maximize=maximize))]:  # fmt: skip
                paged += page
                after = page[-1]
            assert paged == expected, (maximize, size)
        query = TrialQuery("best", ["FAILED", "RUNNING"], maximize=maximize)
        only = [t.id for t in store.trials_page(query)]
        assert only == [i for i in expected if store.trial(i).status in ("FAILED", "RUNNING")]
    # Each of the two parts reads an index in order, without sorting the table.
    score = store_module._SCORE
    scored_plan = _plan(
        store, f"SELECT id FROM trials WHERE {score} IS NOT NULL ORDER BY {score} DESC, seq LIMIT 5"
    )
    assert "trials_scored" in scored_plan and "RIGHT PART" in scored_plan
    unscored_plan = _plan(
        store, f"SELECT id FROM trials WHERE {score} IS NULL ORDER BY seq DESC LIMIT 5"
    )
    assert "trials_unscored" in unscored_plan and "TEMP B-TREE" not in unscored_plan


def test_top_drops_ended_experiments_before_summarising_them(tmp_path, monkeypatch) -> None:
    from nascli.cli.top import TopFrames
    from nascli.experiment import report

    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    build_store(30).close()
    running = build_store(12, running=2)

    summarised: list[str] = []
    real = report.experiment_summary

    def counting(store):
        summarised.append(store.id)
        return real(store)

    monkeypatch.setattr(report, "experiment_summary", counting)
    frames = TopFrames(include_ended=False)
    frames.frame()
    assert summarised == [running.id]
    everything = TopFrames(include_ended=True)
    everything.frame()
    everything.frame()  # the ended experiment's part is reused, the running one reread
    assert summarised.count(running.id) == 3 and len(summarised) == 4


def test_the_foreground_view_rereads_only_when_the_store_changed(tmp_path, monkeypatch) -> None:
    from rich.console import Console

    from nascli.cli.live import ForegroundView
    from nascli.experiment import report

    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    store = build_store(20, running=2)
    reads: list[int] = []
    real = report.experiment_summary
    monkeypatch.setattr(report, "experiment_summary", lambda *a: reads.append(1) or real(*a))
    view = ForegroundView(store.dir, Console(file=open(os.devnull, "w")))  # noqa: SIM115
    first = view.frame()
    assert view.frame() is first and len(reads) == 1
    from nascli.experiment.trials import Ledger, TrialStatus

    with store.transaction():
        Ledger(store).finish("18", TrialStatus.SUCCEEDED, None, 2e9, 0, final=0.5)
    assert view.frame() is not first and len(reads) == 2


def test_report_pages_for_the_web_ui_walk_every_trial(tmp_path, monkeypatch) -> None:
    from nascli.experiment.report import trials_page

    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    store = build_store(45, seed=9, metrics_per_trial=2)
    seen, after = [], None
    while True:
        page = trials_page(store, "best", ["SUCCEEDED"], limit=10, after=after)
        assert page.total == store.status_counts()["SUCCEEDED"]
        seen += [row["id"] for row in page.rows]
        assert all(len(row["intermediate"]) == 2 for row in page.rows)
        if page.next_after is None:
            break
        after = page.next_after
    expected = [t.id for t in store.trials_page(TrialQuery("best", ["SUCCEEDED"]))]
    assert seen == expected and len(seen) == page.total
    assert seen[0] == store.best_trial().id


def test_the_live_view_reads_only_new_and_unfinished_trials(tmp_path, monkeypatch) -> None:
    from rich.console import Console

    from nascli.cli.liveframes import LATEST, LiveFrames
    from nascli.experiment import report
    from nascli.experiment.trials import Ledger, TrialStatus

    monkeypatch.setenv("NASCLI_HOME", str(tmp_path))
    store = build_store(30, running=2)  # 28 and 29 still run
    calls: list[dict] = []
    real = report.iter_trial_rows

    def spy(*args, **kwargs):
        calls.append({k: v for k, v in kwargs.items() if k != "space"})
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "iter_trial_rows", spy)
    console = Console(file=open(os.devnull, "w"), width=220)  # noqa: SIM115
    frames = LiveFrames(ExperimentStore(store.dir), console)
    frames.frame()
    assert list(frames._rows) == [str(i) for i in range(30 - LATEST, 30)]
    kept = dict(frames._trial_lines)
    assert set(kept) == {str(i) for i in range(30 - LATEST, 28)}  # ended trials' lines only
    calls.clear()
    with store.transaction():
        Ledger(store).finish("28", TrialStatus.SUCCEEDED, None, 2e9, 0, final=0.5)
        store.add_trial("30", 30, 30, store.trial("29").parameters)
    frame = frames.frame()
    # Only the trials shown that had not ended, and those launched since: never the ended ones.
    assert calls == [
        {"ids": ["28", "29"]},
        {"sort": "newest", "limit": LATEST, "newer_than": "29"},
    ]
    assert list(frames._rows) == [str(i) for i in range(31 - LATEST, 31)]
    assert frames._rows["28"]["status"] == "SUCCEEDED" and frames._rows["30"]["status"] == "WAITING"
    for trial_id in range(31 - LATEST, 28):  # drawn once, not again
        assert frames._trial_lines[str(trial_id)] is kept[str(trial_id)]
    assert str(30 - LATEST) not in frames._trial_lines  # scrolled out, forgotten
    calls.clear()
    assert frames.frame() is frame and calls == []  # nothing committed: nothing read
    text = "".join(s.text for line in frame.lines for s in line)
    assert "skipin=[" in text and "30 " in text and "1 WAITING" in text
    from rich.segment import Segment

    narrow = LiveFrames(ExperimentStore(store.dir), Console(file=open(os.devnull, "w"), width=60))  # noqa: SIM115
    lines = narrow.frame().lines
    assert max(Segment.get_line_length(line) for line in lines) == 60  # cropped, not wrapped
    assert len(lines) == len(frame.lines)
