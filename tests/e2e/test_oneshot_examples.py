"""Every one-shot example runs end to end on the digits set (shortened): search, export an
architecture that applies to a fresh model, retrain, print the comparison."""

from __future__ import annotations

import json
import subprocess

import pytest

from nascli.nas import apply_fixed_architecture
from tests.helpers import PYTHON, REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("algo", ["darts", "enas", "proxyless", "spos", "random"])
def test_example_searches_exports_and_retrains(algo: str, tmp_path) -> None:
    out = tmp_path / "arch.json"
    result = subprocess.run(
        [PYTHON, f"examples/oneshot/{algo}/search.py", "--epochs", "2", "--retrain-epochs", "2",
         "--random-archs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "searched architecture" in result.stdout and "random architectures mean" in result.stdout
    arch = json.loads(out.read_text())
    assert set(arch) == {"block1", "block2", "block3", "skip"}
    import sys

    sys.path.insert(0, str(REPO / "examples" / "oneshot"))
    from digits_space import DigitsNet

    model = DigitsNet()
    apply_fixed_architecture(model, arch)
    import torch

    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
