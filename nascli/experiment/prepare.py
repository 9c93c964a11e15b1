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
from nascli.experiment.config import ConfigError, ExperimentConfig, TunerConfig, load_config
from nascli.experiment.gpu import GpuAllocator, GpuInventory, query_gpus, slot_count

if TYPE_CHECKING:
    from tuners.base import Tuner

__all__ = ["ExperimentPlan", "prepare_experiment", "build_tuner", "gpu_allocator"]


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


def gpu_allocator(config: ExperimentConfig) -> GpuAllocator:
    return GpuAllocator(
        gpu_num=config.trial.gpu_num or 0,
        gpu_indices=config.local.gpu_indices,
        max_trial_num_per_gpu=config.local.max_trial_num_per_gpu,
        use_active_gpu=config.local.use_active_gpu,
    )


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
    try:
        build_tuner(config.tuner, doc)
    except UsageError as exc:
        raise ConfigError(path, [str(exc)]) from None

    inventory = None
    slots = config.trial_concurrency
    gpu_num = config.trial.gpu_num
    if gpu_num:
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
