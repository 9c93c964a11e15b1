"""``PdartsTrainer``: progressive DARTS (Chen et al. 2019), NNI v1.9's
``nni.nas.pytorch.pdarts.PdartsTrainer`` with its arguments, and with resume.

The search runs in stages (``len(pdarts_num_to_drop)`` of them). Stage ``s``:

1. ``model_creator(init_layers + pdarts_num_layers[s])`` returns ``(model, criterion, optimizer,
   lr_scheduler)`` (the scheduler may be None): the network grows stage by stage;
2. candidates dropped in earlier stages are deleted from the model's layer choices, so the
   stage trains only what is left (input choices keep every input);
3. a ``DartsTrainer`` runs ``num_epochs`` epochs on it (``lr_scheduler`` stepped every epoch);
4. in every layer choice the ``pdarts_num_to_drop[s]`` remaining candidates with the smallest
   softmax(alpha) are switched off (at least one always stays).

Callbacks are the stage's (NNI's meaning): ``build(pdarts_trainer)``, then
``on_epoch_begin(stage)`` / ``on_epoch_end(stage)`` around each stage. ``export()`` is the last
stage's DARTS export expressed over the original candidates, in the human-readable format
``apply_fixed_architecture`` reads (NNI's was a raw bool list).

Keys name the same decision in every stage. Automatic keys restart for each model nascli builds,
so they are stable too (NNI needed explicit keys); a key that first appears in a later stage
starts with every candidate on.

Resume (NNI had none): with ``checkpoint_dir``, ``<checkpoint_dir>/pdarts.pt`` is rewritten after
every epoch and every stage (stage, switches, history, the stage's full DARTS trainer state,
random states). ``trainer.load_checkpoint(path)`` then ``fit()`` continues where it stopped,
with the same result as an uninterrupted run; ``save_checkpoint(path)`` writes one on demand.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.mutables import LayerChoice
from nascli.nas.mutator import model_search_space
from nascli.nas.oneshot.callbacks import Callback, LRSchedulerCallback
from nascli.nas.oneshot.darts import DartsTrainer
from nascli.nas.oneshot.runlog import RunLog, default_log_dir

__all__ = ["PdartsTrainer"]

CHECKPOINT_FILE = "pdarts.pt"
Switches = dict[str, list[bool]]


class _StageHook(Callback):
    """Inside a stage's DARTS trainer: after each epoch, the P-DARTS run log and checkpoint."""

    def __init__(self, owner: PdartsTrainer):
        self.owner = owner

    def on_epoch_end(self, epoch: int) -> None:
        self.owner._after_inner_epoch(epoch)


class PdartsTrainer:
    """Args as NNI v1.9's (positional order kept):

    Args:
        model_creator: ``layers -> (model, criterion, optimizer, lr_scheduler | None)``.
        init_layers: layers of the first stage's network.
        metrics: ``(output, target) -> {name: value}``.
        num_epochs: DARTS epochs per stage.
        dataset_train / dataset_valid: as ``DartsTrainer``'s.
        pdarts_num_layers: layers added to ``init_layers`` in each stage ([0, 6, 12]).
        pdarts_num_to_drop: candidates dropped per layer choice after each stage ([3, 2, 1]).
        mutator: None (the stage's own DARTS modules), or a factory ``model -> mutator`` called
            on each stage's pruned model (e.g. ``DartsMutator``); a mutator instance cannot
            serve several models and is refused (NNI silently ignored it).
        batch_size / workers / device / log_frequency / callbacks / unrolled: as
            ``DartsTrainer``'s (callbacks per stage, see the module doc).
        checkpoint_dir: where the resume checkpoint is kept (None: no automatic checkpoint).
        log_dir: the one-shot run log (see ``enable_visualization()``).
        **darts_kwargs: further ``DartsTrainer`` keywords (``seed``, ``arc_learning_rate``,
            ``grad_clip``, ``amp``, ...), the same for every stage.
    """

    def __init__(
        self,
        model_creator: Callable[[int], tuple[nn.Module, Any, torch.optim.Optimizer, Any]],
        init_layers: int,
        metrics: Any,
        num_epochs: int,
        dataset_train: Any,
        dataset_valid: Any = None,
        pdarts_num_layers: Sequence[int] = (0, 6, 12),
        pdarts_num_to_drop: Sequence[int] = (3, 2, 1),
        mutator: Any = None,
        batch_size: int = 64,
        workers: int = 0,
        device: Any = None,
        log_frequency: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        unrolled: bool = False,
        *,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        **darts_kwargs: Any,
    ):
        if len(pdarts_num_layers) != len(pdarts_num_to_drop) or not pdarts_num_to_drop:
            raise UsageError(
                f"pdarts_num_layers ({list(pdarts_num_layers)}) and pdarts_num_to_drop "
                f"({list(pdarts_num_to_drop)}) must list one value per stage, the same count"
            )
        if any(not isinstance(n, int) or n < 0 for n in [*pdarts_num_layers, *pdarts_num_to_drop]):
            raise UsageError("pdarts_num_layers and pdarts_num_to_drop take non-negative integers")
        if mutator is not None and (not callable(mutator) or isinstance(mutator, nn.Module)):
            raise UsageError(
                "PdartsTrainer builds a new model in every stage, so it takes a mutator factory "
                "(model -> mutator, e.g. DartsMutator), not a mutator instance"
            )
        self.model_creator = model_creator
        self.init_layers = init_layers
        self.metrics = metrics
        self.num_epochs = num_epochs
        self.dataset_train = dataset_train
        self.dataset_valid = dataset_valid
        self.pdarts_num_layers = list(pdarts_num_layers)
        self.pdarts_num_to_drop = list(pdarts_num_to_drop)
        self.mutator_factory = mutator
        self.darts_kwargs = dict(batch_size=batch_size, workers=workers, device=device,
                                 log_frequency=log_frequency, unrolled=unrolled,
                                 **darts_kwargs)  # fmt: skip
        self.callbacks = list(callbacks or [])
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.stage = 0
        self.switches: Switches | None = None  # per key of the original space: candidate on?
        self.space: spaces.SearchSpace | None = None  # the original (first stage's) space
        self.history: list[dict[str, float]] = []  # every inner epoch, stage after stage
        self.trainer: DartsTrainer | None = None  # the current (or last) stage's trainer
        self.model: nn.Module | None = None
        self._resume_inner: dict[str, Any] | None = None
        self._rng_at_stage: torch.Tensor | None = None
        self._stage_kept: dict[str, list[int]] = {}  # per key: original indices the stage has
        self.log_dir: Path | None = None
        self._run_log: RunLog | None = None
        if log_dir is not None:
            self.log_dir = Path(log_dir)
        for callback in self.callbacks:
            callback.build(self)

    # ------------------------------------------------------------------ the run

    @property
    def num_stages(self) -> int:
        return len(self.pdarts_num_to_drop)

    @property
    def rank(self) -> int:
        """This process's rank under torch.distributed (0 otherwise); callbacks read it."""
        return 0 if self.trainer is None else self.trainer.rank

    def fit(self) -> None:
        """Run the stages from where the trainer is (0, or a loaded checkpoint's)."""
        while self.stage < self.num_stages:
            stage = self.stage
            for callback in self.callbacks:
                callback.on_epoch_begin(stage)
            self._rng_at_stage = torch.get_rng_state()
            trainer = self._build_stage(stage)
            if self._resume_inner is not None:
                trainer.load_state_dict(self._resume_inner)
                self._resume_inner = None
            self._log_start()
            trainer.fit()
            self._drop(stage)
            self.stage = stage + 1
            self._resume_inner = None
            self._autosave()
            for callback in self.callbacks:
                callback.on_epoch_end(stage)
        self._log_end()

    def train(self, validate: bool = True) -> None:
        """NNI v1.9's name for ``fit()``."""
        self.fit()

    def validate(self) -> dict[str, float]:
        """The last stage trainer's validation metrics."""
        if self.trainer is None:
            raise UsageError("PdartsTrainer.validate(): no stage has been built yet; fit() first")
        return self.trainer.validate()

    def _build_stage(self, stage: int) -> DartsTrainer:
        built = self.model_creator(self.init_layers + self.pdarts_num_layers[stage])
        if not isinstance(built, (tuple, list)) or len(built) != 4:
            raise UsageError(
                "model_creator(layers) must return (model, criterion, optimizer, lr_scheduler); "
                f"got {type(built).__name__}"
            )
        model, criterion, optimizer, scheduler = built
        space = model_search_space(model)
        if self.space is None:
            self.space = space
            self.switches = {k: [True] * s.n_candidates for k, s in space.items()}
        self._check_and_extend(space, stage)
        self._prune(model)
        self._stage_kept = {key: self._kept(key) for key in self.space}
        callbacks: list[Callback] = [] if scheduler is None else [LRSchedulerCallback(scheduler)]
        callbacks.append(_StageHook(self))
        mutator = None if self.mutator_factory is None else self.mutator_factory(model)
        self.model = model
        self.trainer = DartsTrainer(model, criterion, self.metrics, optimizer, self.num_epochs,
                                    self.dataset_train, self.dataset_valid, mutator,
                                    callbacks=callbacks, **self.darts_kwargs)  # fmt: skip
        return self.trainer

    def _check_and_extend(self, space: spaces.SearchSpace, stage: int) -> None:
        assert self.space is not None and self.switches is not None
        for key, spec in space.items():
            known = self.space.get(key)
            if known is None:  # new in this stage: every candidate on
                self.space[key] = spec
                self.switches[key] = [True] * spec.n_candidates
            elif known != spec:
                raise UsageError(
                    f"stage {stage}: choice {key!r} changed between stages ({_describe(known)} "
                    f"before, {_describe(spec)} now); every stage's model must give a key the "
                    "same candidates"
                )

    def _prune(self, model: nn.Module) -> None:
        assert self.switches is not None and self.space is not None
        for module in model.modules():
            if isinstance(module, LayerChoice):
                names = self.space[module.key].names
                for name, on in zip(names, self.switches[module.key], strict=True):
                    if not on:
                        del module[name]

    def _kept(self, key: str) -> list[int]:
        assert self.switches is not None
        return [i for i, on in enumerate(self.switches[key]) if on]

    def _drop(self, stage: int) -> None:
        assert self.trainer is not None and self.switches is not None and self.space is not None
        probs = self.trainer.arch_probabilities()
        n_drop = self.pdarts_num_to_drop[stage]
        for key, spec in self.space.items():
            if not isinstance(spec, spaces.LayerChoiceSpec) or key not in probs:
                continue
            kept = self._kept(key)
            drop = min(n_drop, len(kept) - 1)
            ranked = sorted(range(len(kept)), key=lambda i: (probs[key][i], -i))
            for i in ranked[:drop]:
                self.switches[key][kept[i]] = False

    # ------------------------------------------------------------------ results

    def _original_weights(self) -> dict[str, list[float]]:
        """The stage trainer's per-candidate weights over the original candidates (0 for the
        dropped ones)."""
        assert self.trainer is not None and self.space is not None
        inner = self.trainer.run_log_weights()
        out: dict[str, list[float]] = {}
        for key, spec in sorted(self.space.items()):
            if key not in inner:
                continue
            if isinstance(spec, spaces.LayerChoiceSpec):
                row = [0.0] * spec.n_candidates
                for i, p in zip(self._stage_kept[key], inner[key], strict=True):
                    row[i] = p
                out[key] = row
            else:
                out[key] = list(inner[key])
        return out

    def export(self, file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The architecture found (after ``fit()``: its last stage's), over the original
        candidates; written to ``file`` as JSON when given."""
        if self.trainer is None or self.space is None:
            raise UsageError("PdartsTrainer.export(): no stage has been trained yet; fit() first")
        inner_space = self.trainer.search_space
        inner = spaces.normalize_architecture(inner_space, self.trainer.export(), "stage export")
        decisions: dict[str, list[bool]] = {}
        for key, spec in self.space.items():
            if key not in inner:
                continue
            picked = [bool(v) for v in inner[key]]
            if isinstance(spec, spaces.LayerChoiceSpec):
                row = [False] * spec.n_candidates
                for i, on in zip(self._stage_kept[key], picked, strict=True):
                    row[i] = on
                picked = row
            decisions[key] = picked
        arch = spaces.human_architecture(self.space, decisions)
        if file is not None and self.trainer.dist.main:
            spaces.write_json_atomic(file, arch)
        return arch

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "switches": self.switches,
            "space": None if self.space is None else spaces.search_space_to_json(self.space),
            "history": self.history,
            "inner": None if self._between_stages() else self.trainer.state_dict(),  # type: ignore
            "rng_at_stage": self._rng_at_stage if not self._between_stages() else None,
            "rng": torch.get_rng_state(),
            "callbacks": [c.state_dict() for c in self.callbacks],
        }

    def _between_stages(self) -> bool:
        return self.trainer is None or self.trainer.epoch >= self.num_epochs

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = int(state["stage"])
        self.switches = state["switches"]
        self.space = None if state["space"] is None else spaces.parse_search_space(state["space"])
        self.history = list(state["history"])
        self._resume_inner = state["inner"]
        for callback, cb_state in zip(self.callbacks, state["callbacks"], strict=False):
            callback.load_state_dict(cb_state)
        # Mid-stage: rebuild the stage's model from the RNG state it was built with (its
        # weights are then replaced by the checkpoint's); between stages: continue the stream.
        rng = state["rng_at_stage"] if state["inner"] is not None else state["rng"]
        torch.set_rng_state(rng)

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write the resume state to ``path`` (atomically; rank 0 only). Returns the path."""
        path = Path(path)
        if self.trainer is None or self.trainer.dist.main:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, path)
        if self.trainer is not None:
            self.trainer.dist.barrier()
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore a checkpoint; ``fit()`` then continues from it."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            raise UsageError(f"checkpoint {str(path)!r} does not exist") from None
        self.load_state_dict(state)

    def _autosave(self) -> None:
        if self.checkpoint_dir is not None:
            self.save_checkpoint(self.checkpoint_dir / CHECKPOINT_FILE)

    def _after_inner_epoch(self, epoch: int) -> None:
        assert self.trainer is not None
        stats = self.trainer.history[-1]
        self.history.append({"stage": float(self.stage), **stats})
        if self._run_log is not None and self.trainer.dist.main:
            number = self.stage * self.num_epochs + epoch
            self._run_log.epoch(number, stats, self._original_weights(), self.export())
        if epoch + 1 < self.num_epochs:  # the stage's last epoch is saved once its drop is done
            self._autosave()

    # ------------------------------------------------------------------ the run log

    def enable_visualization(self) -> None:
        """Turn on the one-shot run log in a fresh ``$NASCLI_HOME/oneshot/<run id>`` (unless
        ``log_dir`` was given); the directory is ``self.log_dir``."""
        if self.log_dir is None:
            self.log_dir = default_log_dir(type(self).__name__)

    def _log_start(self) -> None:
        if self.log_dir is None or self._run_log is not None:
            return
        assert self.trainer is not None and self.space is not None
        if self.trainer.dist.enabled:  # rank 0's directory everywhere
            self.log_dir = Path(self.trainer.dist.broadcast(str(self.log_dir)))
        if not self.trainer.dist.main:
            return
        self._run_log = RunLog(self.log_dir)
        self._run_log.start(type(self).__name__, self.num_epochs * self.num_stages, self.space)

    def _log_end(self) -> None:
        if self._run_log is not None:
            self._run_log.end(self.export())


def _describe(spec: spaces.ChoiceSpec) -> str:
    if isinstance(spec, spaces.LayerChoiceSpec):
        return f"layer choice of {list(spec.names)}"
    return f"input choice of {spec.n_candidates} inputs, n_chosen={spec.n_chosen}"
