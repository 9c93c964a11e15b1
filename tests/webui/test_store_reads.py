"""The store and report read functions the web UI added: paged trial reads, the store version,
experiment paths."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from nascli.experiment import report
from nascli.experiment.store import (
    ExperimentNotFoundError,
    ExperimentStore,
    TrialQuery,
    experiment_path,
)
from tests.webui.synthetic import make_store


def test_trials_page_after_limit_ids(tmp_path: Path):
    store = make_store(tmp_path, 12, failed_every=4)
    ids = lambda trials: [t.id for t in trials]  # noqa: E731
    assert ids(store.trials_page(TrialQuery(after="9"))) == ["10", "11"]
    assert ids(store.trials_page(TrialQuery(after="2", limit=3))) == ["3", "4", "5"]
    assert ids(store.trials_page(TrialQuery(ids=["7", "1", "nope"]))) == ["1", "7"]
    assert ids(store.trials_page(TrialQuery(ids=[]))) == []
    assert ids(store.trials_page(TrialQuery("newest", ids=["7", "1", "3"], limit=2))) == ["7", "3"]
    assert ids(store.trials_page(TrialQuery(statuses=["FAILED"], after="4"))) == ["5", "9"]
    many = TrialQuery(ids=[str(i) for i in range(5000)])
    assert ids(store.trials_page(many)) == [str(i) for i in range(12)]
    whole = report.trial_rows(store)
    assert report.trial_rows(store, after="3", limit=4) == whole[4:8]
    assert report.trial_rows(store, ids=["11", "0"]) == [whole[0], whole[11]]
    assert report.trial_rows(store, "FAILED", after="4") == [r for r in whole[5:] if
                                                             r["status"] == "FAILED"]  # fmt: skip
    with pytest.raises(report.TrialNotFoundError, match="no trial 'nope'"):
        report.trial_rows(store, after="nope")


def test_version_changes_with_every_commit_and_not_with_reads(tmp_path: Path):
    store = make_store(tmp_path, 3)
    watcher = ExperimentStore(store.dir)
    try:
        first = watcher.version()
        report.trial_rows(ExperimentStore(store.dir))
        assert watcher.version() == first
        store.add_metric("0", 77, "PERIODICAL", 0.1, time.time())
        second = watcher.version()
        assert second != first
        store.update_trial("1", reason="x")
        assert watcher.version() not in (first, second)
        store.close()
        shutil.rmtree(store.dir)
        assert watcher.version() is None
    finally:
        watcher.close()


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", "a\0b"])
def test_experiment_path_refuses_anything_but_a_bare_id(bad: str):
    with pytest.raises(ExperimentNotFoundError):
        experiment_path(bad)


def test_experiment_path_is_under_the_home(home: Path):
    assert experiment_path("abc123") == home / "abc123"
