"""GPU inventory and allocation, against a fake nvidia-smi with 4 GPUs (GPU 2 busy with a
process that is not ours)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nascli.experiment.gpu import GpuAllocator, GpuUnavailable, query_gpus, slot_count
from tests.fake_gpus import install, path_with


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = install(tmp_path / "bin")
    monkeypatch.setenv("PATH", path_with(directory))
    return directory


def allocator(**kw) -> GpuAllocator:
    kw.setdefault("gpu_num", 1)
    return GpuAllocator(**kw)


def test_inventory_from_nvidia_smi(fake_smi: Path) -> None:
    inv = query_gpus()
    assert inv.error is None and inv.source == "nvidia-smi"
    assert [g.index for g in inv.gpus] == [0, 1, 2, 3]
    assert inv.gpus[2].process_pids == (1,)
    assert inv.gpus[2].memory_used_mb == 30000
    assert all(not g.process_pids for i, g in enumerate(inv.gpus) if i != 2)


def test_concurrent_trials_get_distinct_gpus_and_the_busy_one_is_skipped(fake_smi: Path) -> None:
    alloc = allocator()
    got = [alloc.allocate(str(i)) for i in range(3)]
    assert sorted(got) == [(0,), (1,), (3,)]
    with pytest.raises(GpuUnavailable) as why:
        alloc.allocate("3")
    reason = str(why.value)
    assert "GPU2 busy" in reason and "useActiveGpu" in reason
    assert "GPU0 full (1/1 trials" in reason
    alloc.release("1")
    assert alloc.allocate("4") == got[1]


def test_use_active_gpu_shares_the_busy_gpu(fake_smi: Path) -> None:
    alloc = allocator(use_active_gpu=True)
    assert sorted(alloc.allocate(str(i)) for i in range(4)) == [(0,), (1,), (2,), (3,)]


def test_max_trials_per_gpu_spreads_before_sharing(fake_smi: Path) -> None:
    alloc = allocator(max_trial_num_per_gpu=2)
    first = [alloc.allocate(str(i)) for i in range(3)]
    assert sorted(first) == [(0,), (1,), (3,)]
    second = [alloc.allocate(str(i)) for i in range(3, 6)]
    assert sorted(second) == [(0,), (1,), (3,)]
    with pytest.raises(GpuUnavailable, match="2/2 trials"):
        alloc.allocate("6")


def test_gpu_indices_filter(fake_smi: Path) -> None:
    alloc = allocator(gpu_indices=(1, 2))
    assert alloc.allocate("0") == (1,)
    with pytest.raises(GpuUnavailable) as why:
        alloc.allocate("1")
    assert "GPU1 full" in str(why.value) and "GPU2 busy" in str(why.value)
    assert "GPU0" not in str(why.value)


def test_multi_gpu_trials_get_disjoint_sets(fake_smi: Path) -> None:
    alloc = allocator(gpu_num=2, use_active_gpu=True)
    a, b = alloc.allocate("a"), alloc.allocate("b")
    assert len(a) == len(b) == 2 and not set(a) & set(b)
    with pytest.raises(GpuUnavailable, match="waiting for 2 GPU"):
        alloc.allocate("c")


def test_our_own_trial_processes_are_not_foreign(fake_smi: Path) -> None:
    (fake_smi / "apps.csv").write_text(f"GPU-aaaa, {os.getpid()}, 100\n")
    alloc = allocator()
    ours = {os.getpgid(os.getpid())}
    got = {alloc.allocate(str(i), own_groups=ours) for i in range(4)}
    assert got == {(0,), (1,), (2,), (3,)}


def test_foreign_process_blocks_when_not_ours(fake_smi: Path) -> None:
    (fake_smi / "apps.csv").write_text(f"GPU-aaaa, {os.getpid()}, 100\n")
    alloc = allocator(gpu_indices=(0,))
    with pytest.raises(GpuUnavailable, match="GPU0 busy"):
        alloc.allocate("x", own_groups=())


def test_create_time_checks(fake_smi: Path) -> None:
    inv = query_gpus()
    assert allocator(gpu_num=5).check(inv) == [
        "trial.gpuNum: 5 GPUs per trial, but only 4 are usable"
    ]
    missing = allocator(gpu_indices=(0, 7)).check(inv)
    assert missing == [
        "localConfig.gpuIndices: GPU 7 does not exist (this machine has GPU 0, 1, 2, 3)"
    ]
    busy = allocator(gpu_num=4).check(inv)
    assert len(busy) == 1
    assert "GPU2 has 1 foreign process(es)" in busy[0] and "useActiveGpu: true" in busy[0]
    assert allocator(gpu_num=4, use_active_gpu=True).check(inv) == []
    assert allocator(gpu_num=0).check(inv) == []


def test_no_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    inv = query_gpus()
    assert inv.gpus == () and "nvidia-smi is not on PATH" in (inv.error or "")
    problems = allocator().check(inv)
    assert problems == ["trial.gpuNum: 1 GPU(s) per trial, but nvidia-smi is not on PATH "
                        "(no NVIDIA driver?)"]  # fmt: skip


def test_failing_nvidia_smi_degrades_with_the_reason(
    fake_smi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SMI_FAIL", "1")
    inv = query_gpus()
    assert "couldn't communicate" in (inv.error or "")
    with pytest.raises(GpuUnavailable, match="no GPU data"):
        allocator().allocate("0")


def test_hanging_nvidia_smi_times_out(fake_smi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SMI_SLEEP", "5")
    start = time.monotonic()
    inv = query_gpus(timeout=0.5)
    assert time.monotonic() - start < 3
    assert "did not answer in 0.5 s" in (inv.error or "")


def test_slot_count() -> None:
    assert slot_count(4, 1, 1) == 4
    assert slot_count(4, 2, 1) == 2
    assert slot_count(3, 1, 2) == 6
    assert slot_count(4, 0, 1) == 0
