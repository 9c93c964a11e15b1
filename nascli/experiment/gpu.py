"""GPUs for trials: what the machine has (``query_gpus``) and who gets which (``GpuAllocator``).

The inventory comes from NVML when ``pynvml`` is installed and works, else from ``nvidia-smi
--query-gpu=… --format=csv`` (with a timeout, so a hung driver degrades to "no GPU data" with the
reason instead of blocking the manager). A GPU counts as *busy* when a compute process that is not
one of this experiment's trials runs on it (``useActiveGpu`` lets trials share it anyway).

Allocation rule (one rule, documented in ``docs/experiments.md``): a trial asking for ``gpuNum``
GPUs gets that many distinct GPUs among the allowed ones (``gpuIndices``) that are not busy and
run fewer than ``maxTrialNumPerGpu`` of our trials, preferring the least loaded, then the lowest
index. Concurrent trials therefore get disjoint GPUs until GPUs must be shared. When no set fits,
the allocator says why (which GPU is busy or full), and the manager shows that as the wait reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from nascli.errors import GpuUnavailable
from nascli.experiment.processes import terminate_group

__all__ = ["Gpu", "GpuInventory", "GpuAllocator", "GpuUnavailable", "query_gpus", "slot_count"]

_QUERY_GPUS = "index,uuid,name,memory.total,memory.used,utilization.gpu"
_QUERY_APPS = "gpu_uuid,pid,used_memory"


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_total_mb: float | None = None
    memory_used_mb: float | None = None
    utilization: float | None = None
    process_pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class GpuInventory:
    """The GPUs seen, where the data came from, and why there is none when that failed."""

    gpus: tuple[Gpu, ...] = ()
    source: str = "none"
    error: str | None = None

    def by_index(self) -> dict[int, Gpu]:
        return {g.index: g for g in self.gpus}


def query_gpus(timeout: float = 5.0) -> GpuInventory:
    """The machine's GPUs with their compute processes. Never raises: failures are in ``error``."""
    inventory = _query_nvml()
    if inventory is not None:
        return inventory
    return _query_nvidia_smi(timeout)


def _query_nvml() -> GpuInventory | None:
    try:
        import pynvml  # optional: nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any NVML failure means: fall back to nvidia-smi
        return None
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
            gpus.append(
                Gpu(
                    index=i,
                    uuid=str(pynvml.nvmlDeviceGetUUID(h)),
                    name=str(pynvml.nvmlDeviceGetName(h)),
                    memory_total_mb=mem.total / 2**20,
                    memory_used_mb=mem.used / 2**20,
                    utilization=float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                    process_pids=tuple(p.pid for p in procs),
                )
            )
        return GpuInventory(tuple(gpus), "nvml")
    except Exception:  # noqa: BLE001
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _run_smi(exe: str, query: str, timeout: float) -> list[list[str]]:
    proc = subprocess.Popen(
        [exe, query, "--format=csv,noheader,nounits"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        terminate_group(proc.pid, grace=0.5, leader=proc)
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, exe, out, err)
    return [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]" and friends


def _query_nvidia_smi(timeout: float) -> GpuInventory:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return GpuInventory(error="nvidia-smi is not on PATH (no NVIDIA driver?)")
    try:
        rows = _run_smi(exe, f"--query-gpu={_QUERY_GPUS}", timeout)
        apps = _run_smi(exe, f"--query-compute-apps={_QUERY_APPS}", timeout)
    except subprocess.TimeoutExpired:
        return GpuInventory(source="nvidia-smi", error=f"nvidia-smi did not answer in {timeout} s")
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        why = detail[-1] if detail else f"exit code {exc.returncode}"
        return GpuInventory(source="nvidia-smi", error=f"nvidia-smi failed: {why}")
    except OSError as exc:
        return GpuInventory(source="nvidia-smi", error=f"cannot run nvidia-smi: {exc}")
    pids: dict[str, list[int]] = {}
    for app in apps:
        if len(app) >= 2 and app[1].isdigit():
            pids.setdefault(app[0], []).append(int(app[1]))
    gpus = []
    for row in rows:
        if len(row) < 3 or not row[0].isdigit():
            return GpuInventory(
                source="nvidia-smi", error=f"unexpected nvidia-smi output line: {','.join(row)!r}"
            )
        gpus.append(
            Gpu(
                index=int(row[0]),
                uuid=row[1],
                name=row[2],
                memory_total_mb=_number(row[3]) if len(row) > 3 else None,
                memory_used_mb=_number(row[4]) if len(row) > 4 else None,
                utilization=_number(row[5]) if len(row) > 5 else None,
                process_pids=tuple(pids.get(row[1], ())),
            )
        )
    return GpuInventory(tuple(gpus), "nvidia-smi")


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def slot_count(gpu_count: int, gpu_num: int, max_per_gpu: int) -> int:
    """How many trials of ``gpu_num`` GPUs can run at once on ``gpu_count`` GPUs."""
    return (gpu_count * max_per_gpu) // gpu_num if gpu_num > 0 else 0


@dataclass
class GpuAllocator:
    """Hands out GPU sets to trials. Used by one manager thread; not thread-safe.

    ``own_groups()`` returns the process groups of this experiment's running trials, so that
    their processes on a GPU are not mistaken for foreign ones.
    """

    gpu_num: int
    gpu_indices: tuple[int, ...] | None = None
    max_trial_num_per_gpu: int = 1
    use_active_gpu: bool = False
    query: Callable[[], GpuInventory] = query_gpus
    assigned: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def allowed(self, inventory: GpuInventory) -> list[Gpu]:
        gpus = inventory.by_index()
        if self.gpu_indices is None:
            return sorted(gpus.values(), key=lambda g: g.index)
        return [gpus[i] for i in self.gpu_indices if i in gpus]

    def usable(self, inventory: GpuInventory) -> list[Gpu]:
        """Allowed GPUs a trial may get now: not busy with foreign processes (unless
        ``useActiveGpu``). At ``create`` no trial of ours runs, so every process is foreign."""
        allowed = self.allowed(inventory)
        return allowed if self.use_active_gpu else [g for g in allowed if not g.process_pids]

    def check(self, inventory: GpuInventory) -> list[str]:
        """Problems that make the request impossible (``create`` refuses to start on these)."""
        if self.gpu_num == 0:
            return []
        if inventory.error:
            return [f"trial.gpuNum: {self.gpu_num} GPU(s) per trial, but {inventory.error}"]
        present = inventory.by_index()
        problems = []
        if self.gpu_indices is not None:
            missing = [i for i in self.gpu_indices if i not in present]
            if missing:
                problems.append(
                    f"localConfig.gpuIndices: GPU {', '.join(map(str, missing))} does not exist "
                    f"(this machine has GPU {', '.join(map(str, sorted(present))) or 'none'})"
                )
        allowed = self.allowed(inventory)
        if self.gpu_num > len(allowed):
            problems.append(
                f"trial.gpuNum: {self.gpu_num} GPUs per trial, but only {len(allowed)} "
                f"{'is' if len(allowed) == 1 else 'are'} usable"
                + (" (localConfig.gpuIndices)" if self.gpu_indices is not None else "")
            )
        elif not self.use_active_gpu:
            idle = [g for g in allowed if not g.process_pids]
            if len(idle) < self.gpu_num:
                busy = ", ".join(
                    f"GPU{g.index} has {len(g.process_pids)} foreign process(es)"
                    for g in allowed
                    if g.process_pids
                )
                problems.append(
                    f"trial.gpuNum: {self.gpu_num} GPU(s) per trial, but only {len(idle)} "
                    f"allowed GPU(s) are idle ({busy}); set localConfig.useActiveGpu: true to "
                    "share busy GPUs"
                )
        return problems

    def allocate(self, trial_id: str, own_groups: Collection[int] = ()) -> tuple[int, ...]:
        """GPUs for ``trial_id``; raises ``GpuUnavailable`` with the reason when none fit."""
        if self.gpu_num == 0:
            return ()
        inventory = self.query()
        if inventory.error:
            raise GpuUnavailable(f"no GPU data: {inventory.error}")
        load = self._load()
        free, why = [], []
        for gpu in self.allowed(inventory):
            ours = load.get(gpu.index, 0)
            foreign = [p for p in gpu.process_pids if _process_group(p) not in own_groups]
            if ours >= self.max_trial_num_per_gpu:
                why.append(
                    f"GPU{gpu.index} full ({ours}/{self.max_trial_num_per_gpu} trials, "
                    "localConfig.maxTrialNumPerGpu)"
                )
            elif foreign and not self.use_active_gpu:
                why.append(
                    f"GPU{gpu.index} busy ({len(foreign)} process(es) not started by this "
                    "experiment; localConfig.useActiveGpu: true shares it)"
                )
            else:
                free.append((ours, gpu.index))
        if len(free) < self.gpu_num:
            raise GpuUnavailable(
                f"waiting for {self.gpu_num} GPU(s): " + ("; ".join(why) or "no allowed GPU")
            )
        chosen = tuple(sorted(index for _, index in sorted(free)[: self.gpu_num]))
        self.assigned[trial_id] = chosen
        return chosen

    def adopt(self, trial_id: str, gpus: Iterable[int]) -> None:
        """Count GPUs held by a trial this manager did not start (resume)."""
        self.assigned[trial_id] = tuple(gpus)

    def release(self, trial_id: str) -> None:
        self.assigned.pop(trial_id, None)

    def _load(self) -> dict[int, int]:
        load: dict[int, int] = {}
        for gpus in self.assigned.values():
            for index in gpus:
                load[index] = load.get(index, 0) + 1
        return load
