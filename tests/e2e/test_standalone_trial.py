"""``python trial/trial.py`` runs standalone: first candidates, real training, printed reports."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers import PYTHON, REPO


@pytest.mark.slow
def test_trial_runs_standalone_and_learns():
    result = subprocess.run(
        [PYTHON, "trial/trial.py", "--epochs", "6"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "standalone mode" in result.stderr
    assert "'first_conv': 0, 'mid_conv': 'conv3x3', 'skip': 0" in result.stderr
    reports = re.findall(r"\[nascli\] intermediate result: ([0-9.]+)", result.stdout)
    final = re.findall(r"\[nascli\] final result: ([0-9.]+)", result.stdout)
    assert len(reports) == 6 and len(final) == 1
    assert float(final[0]) > 0.8  # a CNN on the digits set learns well past chance (0.1)
