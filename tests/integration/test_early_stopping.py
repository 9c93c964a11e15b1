"""Early stopping in the manager (in-process) with real trial subprocesses
(tests/e2e/trials/curve_trial.py)."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

from nascli.experiment.manager import Manager
from nascli.experiment.report import experiment_summary, export_csv, export_json, trial_rows
from nascli.experiment.store import ExperimentStore
from tests.experiments import TRIALS, make_experiment

CURVE = {"command": f"{sys.executable} curve_trial.py", "codeDir": str(TRIALS)}


def run(store: ExperimentStore, **kw) -> str:
    return Manager(store, tick=0.1, kill_grace=2.0, **kw).run(handle_signals=False)


def curve_experiment(tmp_path: Path, assessor: dict, **overrides) -> ExperimentStore:
    settings = {"trialConcurrency": 1, "maxTrialNum": 5, "maxTrialRetries": 1, **overrides}
    return make_experiment(tmp_path, trial=CURVE, assessor=assessor, **settings)


@pytest.fixture
def curves(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("CURVE_TRIAL_QUALITY", "0.9")
    monkeypatch.setenv("CURVE_TRIAL_STEP_SLEEP", "0.2")
    monkeypatch.setenv("CURVE_TRIAL_BAD_SEQ", "1,3")
    return monkeypatch


def test_bad_trials_are_stopped_early_and_the_good_ones_finish(tmp_path: Path, curves) -> None:
    store = curve_experiment(tmp_path, {"builtinAssessorName": "Medianstop"})
    assert run(store) == "DONE"
    trials = {t.id: t for t in store.trials()}
    assert len(trials) == 5  # the freed slots were refilled, no retries
    assert [trials[i].status for i in "01234"] == [
        "SUCCEEDED", "EARLY_STOPPED", "SUCCEEDED", "EARLY_STOPPED", "SUCCEEDED",
    ]  # fmt: skip
    for tid in ("1", "3"):
        stopped = trials[tid]
        assert stopped.reason.startswith("Medianstop at step 1: its best result 0.01 is worse")
        assert stopped.final is None and stopped.ended is not None
        metrics = store.metrics(tid)
        assert [m[2] for m in metrics] == ["PERIODICAL"]  # stopped long before its 6 results
        # the verdict was in the store before the trial was signalled
        assert (store.trial_paths(tid).dir / "sigterm_status").read_text() == "EARLY_STOPPED"
    counts = store.status_counts()
    assert counts["EARLY_STOPPED"] == 2 and counts["FAILED"] == 0
    # the tuner heard a failed end for the stopped trials, no result
    state = store.experiment().tuner_state
    assert len(state["history"]) == 3 and state["proposed"] == []
    events = [e for e in store.events(100) if e[2] == "early_stopped"]
    assert [e[1] for e in events] == ["1", "3"]
    # status, trial ls and the exports carry the status and the reason
    summary = experiment_summary(store)
    assert summary["trials"]["EARLY_STOPPED"] == 2
    assert summary["assessor"] == {"name": "Medianstop", "error": None}
    rows = trial_rows(store, "EARLY_STOPPED")
    assert [r["id"] for r in rows] == ["1", "3"] and "Medianstop" in rows[0]["reason"]
    as_json, as_csv = io.StringIO(), io.StringIO()
    export_json(store, as_json)
    export_csv(store, as_csv)
    assert '"reason": "Medianstop at step 1' in as_json.getvalue()
    header, *lines = as_csv.getvalue().splitlines()
    assert header.endswith(",reason") and "EARLY_STOPPED" in lines[1] and "Medianstop" in lines[1]


def test_include_intermediate_results_tells_the_tuner_the_last_one(tmp_path: Path, curves) -> None:
    tuner = {"builtinTunerName": "Random", "classArgs": {"seed": 1},
             "includeIntermediateResults": True}  # fmt: skip
    store = curve_experiment(tmp_path, {"builtinAssessorName": "Medianstop"}, tuner=tuner)
    assert run(store) == "DONE"
    history = store.experiment().tuner_state["history"]
    assert sorted(reward for _, reward in history) == pytest.approx(
        [0.01, 0.01] + [0.9 * (1 - 0.5**6)] * 3
    )
    assert store.status_counts()["EARLY_STOPPED"] == 2


def test_asha_stops_without_any_completed_trial(tmp_path: Path, curves) -> None:
    curves.setenv("CURVE_TRIAL_BAD_SEQ", "1,2")
    store = curve_experiment(tmp_path, {"builtinAssessorName": "ASHA"}, maxTrialNum=3)
    assert run(store) == "DONE"
    assert [t.status for t in store.trials()] == ["SUCCEEDED", "EARLY_STOPPED", "EARLY_STOPPED"]
    assert "ASHA at step 1" in store.trial("1").reason


BROKEN = """
import time
from nascli.assessor import Assessor

class Raising(Assessor):
    def assess_trial(self, trial_job_id, trial_history):
        raise ValueError("no idea")

class Hanging(Assessor):
    def assess_trial(self, trial_job_id, trial_history):
        time.sleep(60)
"""


@pytest.mark.parametrize(
    ("cls", "message"), [("Raising", "raised ValueError: no idea"), ("Hanging", "did not answer")]
)
def test_a_raising_or_hanging_assessor_does_not_stop_the_experiment(
    tmp_path: Path, curves, cls: str, message: str
) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    assessor = {"codeDir": str(tmp_path), "classFileName": "broken.py", "className": cls}
    store = curve_experiment(tmp_path / "exp", assessor, maxTrialNum=3)
    curves.setenv("CURVE_TRIAL_STEP_SLEEP", "0.05")
    assert run(store, assess_timeout=0.5) == "DONE"
    assert [t.status for t in store.trials()] == ["SUCCEEDED"] * 3
    error = experiment_summary(store)["assessor"]["error"]
    assert message in error and cls in error
    log = store.manager_log.read_text()
    assert log.count("assessor ") == 1  # logged once, though every call failed
    assert [e for e in store.events(100) if e[2] == "assessor_error"]


@pytest.mark.parametrize("every", [3, 1000])
def test_a_restarted_assessment_is_in_the_same_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    """Rebuilt from the store (checkpoint + replayed log), the assessor holds what the one that
    made the calls holds, and decides the same from then on."""
    import nascli.experiment.assessment as assessment_module
    from nascli.experiment.assessment import Assessment
    from nascli.experiment.config import AssessorConfig

    monkeypatch.setattr(assessment_module, "CHECKPOINT_EVERY", every)
    store = curve_experiment(tmp_path, {"builtinAssessorName": "ASHA"})
    config = AssessorConfig(builtin_name="ASHA", class_args={"reduction_factor": 2})
    live = Assessment(config, store)
    live.start()
    curves = {str(i): [0.1 * ((i * 7) % 10) + 0.01 * s for s in range(1, 9)] for i in range(12)}
    for i, (tid, curve) in enumerate(curves.items()):
        for step in range(1, len(curve) + 1):
            with store.transaction():
                store.add_metric(tid, step, "PERIODICAL", curve[step - 1], 0.0)
                stop = live.observe(tid, [curve[step - 1]])
                if stop is not None or step == len(curve):
                    live.ended(tid, stop is None, [], stopped=stop is not None)
                live.save()
            if stop is not None or (i == 11 and step == 4):
                break
    rebuilt = Assessment(config, store)
    rebuilt.start()
    assert rebuilt.assessor.save_checkpoint() == live.assessor.save_checkpoint()
    assert store.assessor_checkpoint()[0] is not None or every == 1000
    # the trial cut in the middle goes on the same way
    later = [0.1 * (11 * 7 % 10) + 0.01 * s for s in range(5, 9)]
    with store.transaction():
        for step, value in enumerate(later, 5):
            store.add_metric("11", step, "PERIODICAL", value, 0.0)
        assert live.observe("11", later) == rebuilt.observe("11", later)


RECORDER = """
from nascli.assessor import Assessor

class Recorder(Assessor):
    def __init__(self):
        self.calls = []
    def assess_trial(self, trial_job_id, trial_history):
        self.calls.append([trial_job_id, list(trial_history)])
        return len(trial_history) < 3
    def trial_end(self, trial_job_id, success):
        self.calls.append([trial_job_id, success])
"""


def test_an_assessor_without_checkpoints_is_rebuilt_by_replaying_every_call(
    tmp_path: Path,
) -> None:
    from nascli.experiment.assessment import Assessment
    from nascli.experiment.config import AssessorConfig

    (tmp_path / "recorder.py").write_text(RECORDER)
    config = AssessorConfig(code_dir=str(tmp_path), class_file_name="recorder.py",
                            class_name="Recorder")  # fmt: skip
    store = curve_experiment(tmp_path / "exp", {"builtinAssessorName": "Medianstop"})

    def feed(assessment: Assessment, tid: str, values: list[float]) -> None:
        with store.transaction():
            for step, value in enumerate(values, 1):
                store.add_metric(tid, step, "PERIODICAL", value, 0.0)
            stop = assessment.observe(tid, values)
            assessment.ended(tid, stop is None, [], stopped=stop is not None)
            assessment.save()

    first = Assessment(config, store)
    first.start()
    feed(first, "0", [0.5, 0.6])
    feed(first, "1", [0.1, 0.2, 0.3, 0.4])
    second = Assessment(config, store)
    second.start()
    assert second.assessor.calls == first.assessor.calls
    assert first.assessor.calls[-2:] == [["1", [0.1, 0.2, 0.3]], ["1", False]]  # stopped at 3
    feed(second, "2", [0.7])
    third = Assessment(config, store)
    third.start()
    assert third.assessor.calls == second.assessor.calls  # nothing replayed twice


def test_stop_without_a_manager_ends_a_stopped_trial_it_never_signalled(tmp_path: Path) -> None:
    """A manager killed between recording EARLY_STOPPED and signalling leaves the trial running:
    ``nascli stop`` (no manager) ends its process group and records its end."""
    import subprocess

    from nascli.experiment.control import stop_experiment
    from nascli.experiment.processes import process_token
    from nascli.experiment.trials import Ledger
    from tests.helpers import pid_alive

    store = curve_experiment(tmp_path, {"builtinAssessorName": "Medianstop"})
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        with store.transaction():
            store.add_trial("0", 0, 0, {})
            ledger = Ledger(store)
            ledger.launch("0", proc.pid, process_token(proc.pid), time.time(), None)
            ledger.early_stop("0", "Medianstop at step 1: x")
        stop_experiment(store, grace=1.0, timeout=10.0)
        assert proc.wait(timeout=10) is not None and not pid_alive(proc.pid)
        trial = store.trial("0")
        assert trial.status == "EARLY_STOPPED" and trial.ended is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
