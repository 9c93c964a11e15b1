"""Under torchrun, ``enable_visualization()`` gives every rank the same log directory and only
rank 0 writes the run log (one start, one record per epoch, one end)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO

pytestmark = pytest.mark.slow

JOB = REPO / "tests" / "compat" / "jobs" / "ddp_runlog.py"


def test_only_rank_zero_writes_the_run_log(tmp_path: Path) -> None:
    env = dict(os.environ, NASCLI_HOME=str(tmp_path / "home"),
               PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")  # fmt: skip
    result = subprocess.run(
        [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(JOB), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    dirs = {(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)}
    assert len(dirs) == 1
    log_dir = Path(dirs.pop())
    assert log_dir.parent == tmp_path / "home" / "oneshot"
    assert list((tmp_path / "home" / "oneshot").iterdir()) == [log_dir]
    kinds = [json.loads(line)["kind"] for line in (log_dir / "oneshot.jsonl").open()]
    assert kinds == ["start", "epoch", "end"]
