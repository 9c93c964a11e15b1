"""One-shot search under torchrun with 2 CPU processes (gloo): every rank ends with the same
weights, BatchNorm statistics, architecture state and export, also when each rank holds
different data (a rank-seeded generator); a script that initialised the
process group itself works too; a run killed after a checkpoint resumes under torchrun to the
same result as an uninterrupted run; ten launches in a row all exit 0 (the group nascli
created is left cleanly at exit), and a group the script created is not touched."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO

pytestmark = pytest.mark.slow

JOB = REPO / "tests" / "e2e" / "jobs" / "ddp_search.py"


def torchrun(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = subprocess.run(
        [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(JOB), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert result.returncode == expect, result.stderr[-3000:]
    return result


def ranks(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


ALGOS = ["darts", "gdas", "spos", "enas", "proxyless", "random"]


def assert_ranks_identical(out: Path) -> None:
    """Both ranks ended with the same export, weights, architecture state and history."""
    zero, one = ranks(out)
    assert zero["world_size"] == one["world_size"] == 2
    assert zero["export"] == one["export"]
    assert zero["weights"] == one["weights"]  # parameters and BatchNorm statistics
    assert zero["arch"] == one["arch"]
    assert zero["history"] == one["history"]


@pytest.mark.parametrize("algo", ["darts", "gdas", "spos", "enas", "proxyless"])
def test_every_rank_ends_identical(algo: str, tmp_path: Path) -> None:
    torchrun("--algo", algo, "--out", str(tmp_path))
    assert_ranks_identical(tmp_path)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_rank_agrees_with_rank_dependent_data(algo: str, tmp_path: Path) -> None:
    # Validation scores, SPOS / random-search rankings and recalibrated BatchNorm statistics
    # are computed on the union of the ranks' data, so decisions cannot diverge.
    torchrun("--algo", algo, "--out", str(tmp_path), "--rank-data")
    assert_ranks_identical(tmp_path)


def test_a_script_that_initialised_the_group_itself(tmp_path: Path) -> None:
    torchrun("--algo", "spos", "--out", str(tmp_path), "--init-self")
    zero, one = ranks(tmp_path)
    assert zero["export"] == one["export"] and zero["weights"] == one["weights"]


def test_resume_under_torchrun_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    torchrun("--algo", "darts", "--out", str(tmp_path / "straight"))
    ckpt = tmp_path / "ckpt"
    crashed = torchrun("--algo", "darts", "--out", str(tmp_path / "crashed"),
                       "--checkpoint-dir", str(ckpt), "--crash-after-epoch", "0",
                       expect=1)  # fmt: skip
    assert not (tmp_path / "crashed").exists(), crashed.stdout
    torchrun("--algo", "darts", "--out", str(tmp_path / "resumed"),
             "--checkpoint-dir", str(ckpt), "--resume", str(ckpt / "last.pt"))  # fmt: skip
    straight, resumed = ranks(tmp_path / "straight"), ranks(tmp_path / "resumed")
    for a, b in zip(straight, resumed, strict=True):
        assert a["export"] == b["export"] and a["weights"] == b["weights"]
        assert a["history"] == b["history"]


EXIT_JOB = REPO / "tests" / "e2e" / "jobs" / "ddp_exit.py"


def test_ten_two_process_launches_all_exit_cleanly() -> None:
    """A rank must not abort at exit ("terminate called without an active exception" from
    gloo's threads outliving the interpreter): the group nascli created is left at exit."""
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    outcomes = []
    for _ in range(10):
        result = subprocess.run(
            [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             str(EXIT_JOB)],
            capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        outcomes.append((result.returncode, "terminate called" in result.stderr))
        assert result.returncode == 0, result.stderr[-3000:]
    assert outcomes == [(0, False)] * 10


def test_a_group_the_script_created_is_left_to_the_script(tmp_path: Path) -> None:
    import torch.distributed as dist

    from nascli.nas.oneshot.distributed import join_process_group, leave_process_group

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)  # fmt: skip
    try:
        assert join_process_group(True).enabled
        leave_process_group()
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
