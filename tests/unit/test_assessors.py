"""The built-in assessors on synthetic learning curves, and the assessor registry / loader."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nascli.assessor import Assessor, AssessorArgumentError, AssessResult, as_verdict
from nascli.assessors import (
    AshaAssessor,
    CurvefittingAssessor,
    MedianstopAssessor,
    create_assessor,
    load_custom_assessor,
)
from nascli.assessors.curves import extrapolate

Good, Bad = AssessResult.Good, AssessResult.Bad


def run(assessor: Assessor, trial: str, curve: list, success: bool = True) -> AssessResult:
    """Feed ``curve`` one result at a time; end the trial (``success``) unless stopped.
    Returns Bad if it was stopped."""
    for step in range(1, len(curve) + 1):
        if as_verdict(assessor.assess_trial(trial, curve[:step])) is Bad:
            assessor.trial_end(trial, False)
            return Bad
    assessor.trial_end(trial, success)
    return Good


def first_bad_step(assessor: Assessor, trial: str, curve: list) -> int | None:
    for step in range(1, len(curve) + 1):
        if assessor.assess_trial(trial, curve[:step]) is Bad:
            return step
    return None


# ---------------------------------------------------------------------------- Medianstop


def test_medianstop_without_completed_trials_never_stops():
    a = MedianstopAssessor()
    assert first_bad_step(a, "0", [0.1, 0.1, 0.1]) is None
    assert first_bad_step(a, "1", [0.0, 0.0, 0.0]) is None  # "0" has not completed


def test_medianstop_stops_below_the_median_of_running_averages():
    a = MedianstopAssessor()
    run(a, "0", [0.5, 0.7, 0.9])  # running averages 0.5, 0.6, 0.7
    run(a, "1", [0.3, 0.5, 0.7])  # 0.3, 0.4, 0.5
    run(a, "2", [0.6, 0.8, 1.0])  # 0.6, 0.7, 0.8
    # medians: step1 0.5, step2 0.6, step3 0.7 -> best so far must reach them
    assert first_bad_step(a, "3", [0.55, 0.58, 0.9]) == 2
    # running average (not the raw 0.7) is the reference at step 2: 0.65 >= 0.6 goes on
    assert first_bad_step(a, "4", [0.5, 0.65, 0.75]) is None
    assert "median" in a.stop_reason("3") and "step 2" in a.stop_reason("3")


def test_medianstop_uses_the_lower_median_when_maximizing_and_the_upper_when_minimizing():
    high = MedianstopAssessor()
    low = MedianstopAssessor(optimize_mode="minimize")
    for tid, v in (("a", 1.0), ("b", 2.0)):
        for a in (high, low):
            a.assess_trial(tid, [v])
    for tid in ("a", "b"):
        for a in (high, low):
            a.trial_end(tid, True)
    # even count: maximize compares with 1.0 (lower), minimize with 2.0 (upper)
    assert high.assess_trial("x", [1.5]) is Good
    assert high.assess_trial("y", [0.9]) is Bad
    assert low.assess_trial("x", [1.5]) is Good
    assert low.assess_trial("y", [2.1]) is Bad


def test_medianstop_minimize_mode_stops_high_losses():
    a = MedianstopAssessor(optimize_mode="minimize")
    run(a, "0", [2.0, 1.0, 0.5])
    run(a, "1", [2.2, 1.2, 0.7])
    assert first_bad_step(a, "2", [3.0, 2.5, 2.4]) == 1
    assert first_bad_step(a, "3", [1.5, 0.9, 0.4]) is None


def test_medianstop_excludes_failed_and_early_stopped_trials_from_the_references():
    a = MedianstopAssessor()
    run(a, "ok", [0.2, 0.2, 0.2])
    run(a, "failed", [0.9, 0.9, 0.9], success=False)
    a.assess_trial("stopped", [0.95])
    a.trial_end("stopped", False)
    # only "ok" counts: 0.3 beats its 0.2
    assert first_bad_step(a, "new", [0.3, 0.3, 0.3]) is None


def test_medianstop_start_step_and_shorter_references():
    a = MedianstopAssessor(start_step=3)
    run(a, "0", [0.9, 0.9, 0.9, 0.9])
    run(a, "short", [0.9, 0.9])  # reached only step 2: no reference at step 3
    assert a.assess_trial("1", [0.1]) is Good  # fewer steps than start_step
    assert a.assess_trial("1", [0.1, 0.1]) is Good
    assert a.assess_trial("1", [0.1, 0.1, 0.1]) is Bad
    assert "1 completed trial" in a.stop_reason("1")
    # beyond every completed trial's length: nothing to compare with
    assert a.assess_trial("2", [0.1] * 5) is Good


def test_medianstop_gaps_in_steps_use_the_step_reached():
    a = MedianstopAssessor()
    run(a, "0", [0.1, 0.2, 0.3, 0.9, 0.9])  # running avg at step 4: 0.375
    # first assessed at step 4 (results read in a batch), its best 0.35 < 0.375
    assert a.assess_trial("1", [0.35, 0.3, 0.3, 0.3]) is Bad
    assert a.assess_trial("2", [0.1, 0.1, 0.1, 0.4]) is Good


def test_medianstop_nan_and_inf():
    a = MedianstopAssessor()
    run(a, "0", [math.nan, 0.4, 0.6])  # running averages: none, 0.4, 0.5
    assert a.assess_trial("1", [0.0]) is Good  # no finite reference at step 1
    assert a.assess_trial("1", [0.0, 0.5]) is Good
    assert a.assess_trial("2", [math.nan, math.nan]) is Bad  # all NaN: worst
    assert a.assess_trial("3", [math.inf, math.inf]) is Bad  # inf is no result either
    assert a.assess_trial("4", [{"default": 0.9, "loss": 1}, "garbage"]) is Good
    state = json.loads(json.dumps(a.save_checkpoint(), allow_nan=False))
    assert state  # JSON without NaN


def test_medianstop_refuses_bad_arguments_all_at_once():
    with pytest.raises(AssessorArgumentError) as err:
        MedianstopAssessor(optimize_mode="max", start_step=-1)
    assert "optimize_mode" in str(err.value) and "start_step" in str(err.value)


# ---------------------------------------------------------------------------- curve fitting


@pytest.mark.parametrize(
    "curve",
    [
        lambda x: 0.9 - 0.5 * x**-0.8,  # power law
        lambda x: 0.95 - 0.6 * np.exp(-0.3 * x),  # exponential
        lambda x: 0.97 - 0.7 / (1 + (0.2 * x) ** 1.5),  # MMF
    ],
)
def test_extrapolation_of_saturating_curves_from_their_first_third(curve):
    x = np.arange(1, 31, dtype=float)
    y = curve(x)
    predicted = extrapolate(list(y[:10]), 30)
    assert predicted == pytest.approx(y[-1], abs=0.02)


def test_extrapolation_with_noise_is_close_and_ignores_nan():
    rng = np.random.default_rng(0)
    x = np.arange(1, 21, dtype=float)
    y = 0.9 - 0.5 * x**-0.8 + rng.normal(0, 0.005, 20)
    values = list(y[:10])
    values[4] = math.nan
    assert extrapolate(values, 20) == pytest.approx(0.9 - 0.5 * 20**-0.8, abs=0.03)
    assert extrapolate([0.5, math.nan, math.inf], 10) is None  # fewer than 3 finite points
    assert extrapolate([0.5, 0.5, 0.5, 0.5], 10) == pytest.approx(0.5)


def test_curvefitting_waits_for_a_completed_trial_and_start_step():
    a = CurvefittingAssessor(epoch_num=20, start_step=6)
    bad = [0.1 + 0.01 * i for i in range(20)]
    assert first_bad_step(a, "0", bad) is None  # nothing completed yet
    good = list(0.9 - 0.5 * np.arange(1, 21) ** -0.8)
    run(a, "best", good)
    assert a.assess_trial("1", bad[:5]) is Good  # before start_step
    assert first_bad_step(a, "1", bad) == 6
    assert "predicted" in a.stop_reason("1")
    # a curve heading for the best goes on
    assert first_bad_step(a, "2", [v - 0.01 for v in good]) is None


def test_curvefitting_updates_the_best_from_the_trial_that_ended():
    a = CurvefittingAssessor(epoch_num=10, start_step=3)
    run(a, "low", [0.3] * 10)
    # "high" is assessed last, then "low2" ends: the best must be low's/low2's, not high's
    a.assess_trial("high", [0.9] * 9)
    run(a, "low2", [0.31] * 10)
    assert a.save_checkpoint()["best"] == pytest.approx(0.31)
    a.trial_end("high", False)  # a trial that did not complete never sets the best
    assert a.save_checkpoint()["best"] == pytest.approx(0.31)
    assert a.assess_trial("x", [0.31, 0.31, 0.31]) is Good
    assert a.assess_trial("y", [0.2, 0.2, 0.2]) is Bad


def test_curvefitting_gap_minimize_and_default_epoch_num():
    a = CurvefittingAssessor(start_step=4, gap=3, optimize_mode="minimize")  # threshold 1.05
    run(a, "0", [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2, 0.2])  # epoch_num: 8 (longest)
    loss = [3.0, 2.9, 2.85, 2.8, 2.78, 2.77, 2.76]
    assert [bool(a.assess_trial("1", loss[:s]) is Bad) for s in range(1, 8)] == [
        False,
        False,
        False,
        True,
        False,
        False,
        True,
    ]  # fmt: skip  (assessed at steps 4 and 7 only)
    assert a.assess_trial("2", [1.0, 0.6, 0.4, 0.3]) is Good


def test_curvefitting_arguments():
    with pytest.raises(AssessorArgumentError) as err:
        CurvefittingAssessor(epoch_num=0, start_step=1, threshold=1.5, gap=0)
    text = str(err.value)
    assert all(k in text for k in ("epoch_num", "start_step", "threshold", "gap"))
    with pytest.raises(AssessorArgumentError, match="minimizing"):
        CurvefittingAssessor(optimize_mode="minimize", threshold=0.9)


# ---------------------------------------------------------------------------- ASHA


def test_asha_rungs():
    assert AshaAssessor().rungs_up_to(100) == [1, 4, 16, 64]
    assert AshaAssessor(reduction_factor=3, grace_period=2, max_t=20).rungs_up_to(100) == [2, 6, 18]
    assert AshaAssessor(reduction_factor=2.5).rungs_up_to(10) == [1, 3, 7]


def test_asha_needs_no_completed_trial_and_keeps_the_top_quarter():
    a = AshaAssessor()  # rungs 1, 4, 16, ...
    assert a.assess_trial("0", [0.5]) is Good  # first at rung 1
    assert a.assess_trial("1", [0.4]) is Bad  # below the only value, 0.5
    assert a.assess_trial("2", [0.6]) is Good
    # recorded at rung 1: 0.5, 0.4, 0.6 -> 75th percentile 0.55
    assert a.assess_trial("3", [0.54]) is Bad
    assert "rung 1" in a.stop_reason("3")
    assert a.assess_trial("4", [0.56]) is Good


def test_asha_stopped_trials_count_at_their_rung_only_and_failures_keep_their_values():
    a = AshaAssessor(reduction_factor=2)  # rungs 1, 2, 4
    a.assess_trial("0", [0.9])
    assert a.assess_trial("1", [0.1]) is Bad
    a.trial_end("1", False)
    for step in range(1, 3):
        a.assess_trial("0", [0.9, 0.9][:step])
    a.trial_end("0", False)  # failed after rung 2
    recorded = a.save_checkpoint()["recorded"]
    assert dict((r, set(t)) for r, t in recorded) == {1: {"0", "1"}, 2: {"0"}}
    assert a.assess_trial("2", [0.95, 0.8]) is Bad  # 0.8 < 0.9 at rung 2


def test_asha_gaps_nan_and_minimize():
    a = AshaAssessor(optimize_mode="minimize")
    a.assess_trial("0", [1.0, 0.9, 0.8, 0.5])
    # first assessed at step 5: judged at rung 1 with its step-1 loss, and at rung 4
    assert a.assess_trial("1", [0.9, 2.0, 2.0, 0.6, 0.6]) is Bad
    assert "rung 4" in a.stop_reason("1")
    assert a.assess_trial("2", [math.nan]) is Bad  # NaN is the worst value
    b = AshaAssessor()
    b.assess_trial("0", [math.nan])
    assert b.assess_trial("1", [0.0]) is Good  # above a NaN
    json.dumps(b.save_checkpoint(), allow_nan=False)


def test_asha_arguments():
    with pytest.raises(AssessorArgumentError) as err:
        AshaAssessor(reduction_factor=1, grace_period=0, max_t="10", optimize_mode="up")
    text = str(err.value)
    assert all(k in text for k in ("reduction_factor", "grace_period", "max_t", "optimize_mode"))


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    "make",
    [
        MedianstopAssessor,
        lambda: CurvefittingAssessor(epoch_num=12),
        AshaAssessor,
    ],
)
def test_checkpoint_then_the_same_decisions(make):
    rng = np.random.default_rng(1)
    curves = [list(0.9 * q - 0.5 * np.arange(1, 13) ** -0.7 + rng.normal(0, 0.01, 12))
              for q in rng.uniform(0.6, 1.0, 30)]  # fmt: skip
    whole, resumed = make(), make()
    for i, curve in enumerate(curves[:15]):
        run(whole, str(i), curve)
        run(resumed, str(i), curve)
    # a trial in the middle of its curve when the checkpoint is taken
    whole.assess_trial("mid", curves[15][:5])
    resumed.assess_trial("mid", curves[15][:5])
    restored = make()
    restored.load_checkpoint(json.loads(json.dumps(resumed.save_checkpoint(), allow_nan=False)))
    a = [run(whole, str(i), c) for i, c in enumerate(curves[16:], 16)]
    b = [run(restored, str(i), c) for i, c in enumerate(curves[16:], 16)]
    assert a == b and Bad in a
    whole.trial_end("mid", True)
    restored.trial_end("mid", True)
    assert whole.save_checkpoint() == restored.save_checkpoint()


# ---------------------------------------------------------------------------- registry / loader


def test_create_assessor_names_and_args():
    assert isinstance(create_assessor("ASHA", {"reduction_factor": 3}), AshaAssessor)
    with pytest.raises(AssessorArgumentError, match="did you mean 'Medianstop'"):
        create_assessor("MedianStop")
    with pytest.raises(AssessorArgumentError) as err:
        create_assessor("Medianstop", {"optimise_mode": "maximize", "start_stp": 2})
    text = str(err.value)
    assert "did you mean 'optimize_mode'" in text and "did you mean 'start_step'" in text


def test_as_verdict():
    assert as_verdict(True) is Good and as_verdict(False) is Bad and as_verdict(Bad) is Bad
    with pytest.raises(TypeError):
        as_verdict(1)


NNI_STYLE = '''
from nascli.assessor import Assessor, AssessResult

class ThresholdAssessor(Assessor):
    """Written for NNI; only the import changed."""
    def __init__(self, floor=0.5):
        self.floor = floor
    def assess_trial(self, trial_job_id, trial_history):
        return AssessResult.Bad if trial_history[-1] < self.floor else AssessResult.Good
    def trial_end(self, trial_job_id, success):
        pass
'''


def test_custom_assessor_loads_from_its_file(tmp_path):
    (tmp_path / "mine.py").write_text(NNI_STYLE + "\nclass NotOne:\n    pass\n")
    a = load_custom_assessor(tmp_path, "mine.py", "ThresholdAssessor", {"floor": 0.3})
    assert a.assess_trial("0", [0.2]) is Bad
    with pytest.raises(AssessorArgumentError, match="classFileName.*does not exist"):
        load_custom_assessor(tmp_path, "nope.py", "X")
    with pytest.raises(AssessorArgumentError, match="did you mean 'ThresholdAssessor'"):
        load_custom_assessor(tmp_path, "mine.py", "ThresholdAssesor")
    with pytest.raises(AssessorArgumentError, match="not a subclass"):
        load_custom_assessor(tmp_path, "mine.py", "NotOne")
    with pytest.raises(AssessorArgumentError, match="classArgs.flor"):
        load_custom_assessor(tmp_path, "mine.py", "ThresholdAssessor", {"flor": 1})
    (tmp_path / "broken.py").write_text("raise SystemExit(3)\n")
    with pytest.raises(AssessorArgumentError, match="importing .* failed: SystemExit"):
        load_custom_assessor(tmp_path, "broken.py", "X")


def test_assessors_and_the_assessment_import_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, nascli.assessors, nascli.experiment.assessment; "
        "print([m for m in sys.modules if m == 'torch' or m.startswith('torch.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
