"""The experiment store: layout, records, idempotent metrics, lookup by id prefix, the manager
lock, and readers that never wait for the writer."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nascli.experiment.manager import Manager
from nascli.experiment.store import (
    ExperimentBusyError,
    ExperimentNotFoundError,
    ExperimentStore,
    delete_experiment,
    list_experiment_dirs,
    nascli_home,
    open_experiment,
)
from tests.experiments import make_experiment

PARAMS = {"conv1": {"_value": "skip", "_idx": 3}}


def test_layout_under_nascli_home(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    assert store.dir.parent == nascli_home()
    for name in ("experiment.sqlite", "config.yml", "search_space.json", "trials"):
        assert (store.dir / name).exists(), name
    exp = store.experiment()
    assert exp.status == "RUNNING" and exp.started is None and exp.name == "quick"
    assert exp.config["trial_concurrency"] == 2
    assert store.trial_paths("3").dir == store.dir / "trials" / "3"


def test_trial_rows_and_status_counts(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    with store.transaction():
        added = store.add_trial("0", 0, 0, PARAMS)
        store.add_trial("1", 1, 1, PARAMS)
    assert added == store.trial("0")  # the record returned is what a read gives
    store.change_trial_status("1", ["WAITING"], "SUCCEEDED", final={"default": 0.5}, gpus=[1, 3])
    assert [t.id for t in store.trials()] == ["0", "1"]
    done = store.trials(["SUCCEEDED"])
    assert len(done) == 1 and done[0].final == {"default": 0.5} and done[0].gpus == [1, 3]
    assert store.status_counts()["WAITING"] == 1 and store.status_counts()["SUCCEEDED"] == 1
    assert store.next_trial_seq() == 2
    assert store.trial("0").parameters == PARAMS


def test_metrics_are_idempotent(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    assert store.add_metric("0", 0, "PERIODICAL", 0.1, 1.0)
    assert not store.add_metric("0", 0, "PERIODICAL", 0.1, 1.0)
    assert store.add_metric("0", 1, "FINAL", {"default": 0.2}, 2.0)
    assert [m[3] for m in store.metrics("0")] == [0.1, {"default": 0.2}]


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        store.add_trial("0", 0, 0, PARAMS)
        raise RuntimeError("boom")
    assert store.trials() == []


def test_lookup_by_prefix_latest_and_errors(tmp_path: Path) -> None:
    with pytest.raises(ExperimentNotFoundError, match="no experiments"):
        open_experiment()
    a = make_experiment(tmp_path / "a")
    b = make_experiment(tmp_path / "b")
    assert [d.name for d in list_experiment_dirs()] == [a.id, b.id]
    assert open_experiment().id == b.id
    assert open_experiment(a.id[:5]).id == a.id
    with pytest.raises(ExperimentNotFoundError, match="no experiment 'zzzz'"):
        open_experiment("zzzz")


def test_ambiguous_prefix(tmp_path: Path) -> None:
    a = make_experiment(tmp_path / "a")
    b = make_experiment(tmp_path / "b")
    a.dir.rename(a.dir.with_name("abc11111"))
    b.dir.rename(b.dir.with_name("abc22222"))
    with pytest.raises(ExperimentNotFoundError, match="several experiments"):
        open_experiment("abc")


def test_two_managers_never_run_one_experiment(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    lock = store.manager_lock()
    lock.acquire()
    try:
        assert store.manager_running()
        with pytest.raises(ExperimentBusyError, match="already running"):
            Manager(ExperimentStore(store.dir)).run(handle_signals=False)
        with pytest.raises(ExperimentBusyError):
            delete_experiment(ExperimentStore(store.dir))
    finally:
        lock.release()
    assert not store.manager_running()


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    writer = make_experiment(tmp_path)
    seen: list[str] = []
    with writer.transaction():
        writer.change_experiment_status("DONE")
        thread = threading.Thread(
            target=lambda: seen.append(ExperimentStore(writer.dir).experiment().status)
        )
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the reader waited for the writer's transaction"
    assert seen == ["RUNNING"]  # the last committed state
    assert ExperimentStore(writer.dir).experiment().status == "DONE"


def test_delete(tmp_path: Path) -> None:
    store = make_experiment(tmp_path)
    path = delete_experiment(store)
    assert not path.exists()
    assert list_experiment_dirs() == []
