"""Everything ``nascli create`` checks before it starts anything, and the tuner factory the
manager shares with it.

``prepare_experiment(path)`` loads the config, gets the search space (from ``searchSpacePath``,
or by running the trial command once as ``ss_gen`` does), builds the tuner and gives it the space,
and checks the GPU request against the machine. It writes nothing; any problem raises a
``UsageError`` naming the config file and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nascli import space as spaces
from nascli.errors import SearchSpaceError, TrialCommandError, UsageError
from nascli.experiment.config import (
    AssessorConfig,
    ConfigError,
    ExperimentConfig,
    TunerConfig,
    load_config,
)
from nascli.experiment.gpu import GpuAllocator, GpuInventory, query_gpus, slot_count

if TYPE_CHECKING:
    from tuners.base import Tuner

__all__ = [
    "ExperimentPlan",
    "prepare_experiment",
    "build_tuner",
    "build_assessor",
    "gpu_allocator",
]


@dataclass(frozen=True)
class ExperimentPlan:
    config: ExperimentConfig
    config_text: str
    search_space: dict[str, Any]
    search_space_origin: str
    gpu_inventory: GpuInventory | None
    slots: int
    notes: tuple[str, ...]


def build_tuner(tuner: TunerConfig, search_space: dict[str, Any]) -> Tuner:
    """The configured tuner, given its search space. Raises ``UsageError`` (tuner errors name
    the ``tuner.*`` field)."""
    from tuners import create_tuner, load_custom_tuner

    if tuner.builtin_name is not None:
        instance = create_tuner(tuner.builtin_name, tuner.class_args)
    else:
        instance = load_custom_tuner(
            tuner.code_dir or ".",
            tuner.class_file_name or "",
            tuner.class_name or "",
            tuner.class_args,
        )
    instance.update_search_space(search_space)
    return instance


def build_assessor(assessor: AssessorConfig) -> Any:
    """The configured assessor. Raises ``UsageError`` (naming the ``assessor.*`` field, with
    every problem of its ``classArgs``)."""
    from nascli.assessors import create_assessor, load_custom_assessor

    if assessor.builtin_name is not None:
        return create_assessor(assessor.builtin_name, assessor.class_args)
    return load_custom_assessor(
        assessor.code_dir or ".",
        assessor.class_file_name or "",
        assessor.class_name or "",
        assessor.class_args,
    )


def gpu_allocator(config: ExperimentConfig) -> GpuAllocator:
    return GpuAllocator(
        gpu_num=config.trial.gpu_num or 0,
        gpu_indices=config.local.gpu_indices,
        max_trial_num_per_gpu=config.local.max_trial_num_per_gpu,
        use_active_gpu=config.local.use_active_gpu,
    )


def _check_ray_cluster(path: Path, config: ExperimentConfig) -> list[str]:
    """Refuse a Ray cluster that cannot be reached or can never hold one trial; notes on what
    it holds."""
    from nascli.experiment.services.ray import RayUnavailable, import_ray, probe_cluster

    ray_config = config.ray
    assert ray_config is not None  # the config checker sets it for the ray platform
    try:
        import_ray()
        resources = probe_cluster(ray_config.address, timeout=ray_config.connect_timeout)
    except RayUnavailable as exc:
        raise ConfigError(path, [f"trainingServicePlatform ray: {exc}"]) from None
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    gpu_num = config.trial.gpu_num or 0
    problems = []
    if ray_config.cpus_per_trial > cpus:
        problems.append(f"rayConfig.cpusPerTrial: {ray_config.cpus_per_trial:g} CPUs per trial, "
                        f"but the cluster at {ray_config.address} has {cpus:g} in all")  # fmt: skip
    if gpu_num > gpus:
        problems.append(f"trial.gpuNum: {gpu_num} GPU(s) per trial, but the cluster at "
                        f"{ray_config.address} has {gpus:g} in all")  # fmt: skip
    if problems:
        raise ConfigError(path, problems)
    return [f"Ray cluster at {ray_config.address}: {cpus:g} CPUs, {gpus:g} GPUs in all"]


def prepare_experiment(config_path: str | Path, ss_gen_timeout: float = 600.0) -> ExperimentPlan:
    """Check everything an experiment needs; return the plan ``create`` stores and starts."""
    from nascli.experiment.search_space_gen import generate_search_space

    path = Path(config_path).expanduser()
    config = load_config(path)
    notes = list(config.warnings)
    if config.search_space_path:
        try:
            space = spaces.load_search_space(config.search_space_path)
        except SearchSpaceError as exc:
            raise ConfigError(path, [f"searchSpacePath: {line}" for line in exc.problems]) from None
        origin = config.search_space_path
    else:
        try:
            space = generate_search_space(
                config.trial.command, config.trial.code_dir, timeout=ss_gen_timeout
            )
        except (TrialCommandError, SearchSpaceError) as exc:
            raise UsageError(
                f"{path}: searchSpacePath is not set, so the search space was generated from "
                f"trial.command, which failed: {exc}"
            ) from None
        origin = f"generated from trial.command {config.trial.command!r}"
    doc = spaces.search_space_to_json(space)
    problems = []
    try:
        build_tuner(config.tuner, doc)
    except UsageError as exc:
        problems.append(str(exc))
    if config.assessor is not None:
        try:
            build_assessor(config.assessor)
        except UsageError as exc:
            problems.extend(getattr(exc, "problems", None) or [str(exc)])
    if problems:
        raise ConfigError(path, problems)

    inventory = None
    slots = config.trial_concurrency
    gpu_num = config.trial.gpu_num
    if config.platform == "ray":
        notes.extend(_check_ray_cluster(path, config))
    elif gpu_num:
        allocator = gpu_allocator(config)
        inventory = query_gpus()
        problems = allocator.check(inventory)
        if problems:
            raise ConfigError(path, problems)
        usable = len(allocator.usable(inventory))
        gpu_slots = slot_count(usable, gpu_num, config.local.max_trial_num_per_gpu)
        slots = min(slots, gpu_slots)
        if gpu_slots < config.trial_concurrency:
            notes.append(
                f"at most {gpu_slots} trial(s) run at once: {usable} usable GPU(s) x "
                f"maxTrialNumPerGpu {config.local.max_trial_num_per_gpu} / gpuNum {gpu_num} "
                f"(trialConcurrency is {config.trial_concurrency})"
            )
    elif gpu_num is None and query_gpus().gpus:
        notes.append(
            "trial.gpuNum is not set: trials see the GPUs of this shell's environment "
            "(set gpuNum to have nascli give each trial its own GPUs, 0 to hide them)"
        )
    return ExperimentPlan(
        config=config,
        config_text=path.read_text(encoding="utf-8"),
        search_space=doc,
        search_space_origin=origin,
        gpu_inventory=inventory,
        slots=slots,
        notes=tuple(notes),
    )
