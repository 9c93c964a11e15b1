"""``BaseOneShotTrainer``: what every one-shot trainer shares, written once.

Lifecycle (who calls what):

1. ``__init__`` takes the model with its choices, the loss, ``metrics(output, target) -> dict``,
   the weight optimizer, the number of epochs and the data, in either seed style: NNI v1.9's
   ``(model, loss, metrics, optimizer, num_epochs, dataset_train, dataset_valid, ...)`` or the
   newer ``(model, loss, metrics, optimizer, num_epochs, dataset, ...)``. The search data
   (``dataset`` / ``dataset_train``) is split at random (``seed``) into a part for the weights
   and a part for the architecture (``train_split``); ``dataset_valid``, when given, is what
   ``validate()`` reports on. The subclass's ``_setup()`` then replaces the choices with its
   modules and builds its architecture parameters / controller.
2. ``fit()`` (alias ``train()``) runs the epochs from where the trainer is (0, or the epoch a
   loaded checkpoint recorded): callbacks' ``on_epoch_begin``, the subclass's
   ``train_one_epoch(epoch)`` (which calls ``on_batch_begin/on_batch_end`` through
   ``_batches``), ``validate()``, callbacks' ``on_epoch_end``, TensorBoard scalars.
3. ``export()`` returns the chosen architecture in the format ``apply_fixed_architecture``
   reads (candidate names where they mean something); ``export(file=...)`` also writes it.
4. ``save_checkpoint(path)`` / ``load_checkpoint(path)`` hold everything a resumed run needs to
   continue exactly as an uninterrupted one with the same seed: weights, architecture
   parameters, controller, optimizers, callbacks' schedulers, grad scaler, the random states
   (torch, the trainer's ``random.Random``, the data order) and the next epoch.

Under ``torchrun`` (or an initialized process group; ``distributed=`` forces or forbids it) the
weights train through DistributedDataParallel on sharded data, architecture state is kept
identical on every rank (``nascli.nas.oneshot.distributed``), and only rank 0 logs, writes
TensorBoard, exports to files and saves checkpoints; every rank can load one to resume.

Extras every trainer gets: ``device`` (default cuda when available), ``workers``, ``amp``
(``"fp16"`` / ``"bf16"``: the forward of weight steps under ``torch.autocast``, with a grad
scaler for fp16 on CUDA; architecture steps stay in fp32), ``grad_clip`` (honoured),
``mutator`` (NNI v1.9's: a mutator built on the model that the trainer steers instead of its
own modules, see ``nascli.nas.oneshot.driven``; DARTS and the single-path trainers take one),
``log_frequency`` (logging every N steps, logger ``nascli.oneshot``), ``progress`` (a rich
progress bar on stderr), ``tensorboard_dir`` (scalars each epoch plus the architecture
weights / sampling probabilities from ``arch_probabilities()``), ``log_dir`` (the one-shot run
log, ``nascli.nas.oneshot.runlog``; ``enable_visualization()`` turns it on in a fresh directory).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from nascli.errors import UsageError
from nascli.nas.mutator import model_search_space
from nascli.nas.oneshot.agreement import all_reduce_sums, shard_for_evaluation
from nascli.nas.oneshot.distributed import join_process_group
from nascli.nas.oneshot.driven import check_mutator, mutator_probabilities
from nascli.nas.oneshot.runlog import RunLog, default_log_dir, uniform_probabilities
from nascli.nas.oneshot.utils import to_device

__all__ = ["BaseOneShotTrainer", "Metrics"]

log = logging.getLogger("nascli.oneshot")

Metrics = Callable[[Any, Any], Mapping[str, float]]

_AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class BaseOneShotTrainer:
    """Base of the one-shot trainers; subclasses implement ``_setup``, ``train_one_epoch``,
    ``export`` and (for checkpoints) ``_extra_state`` / ``_load_extra_state``."""

    #: weight steps run one path, leaving other candidates' parameters without gradients
    single_path_weight_steps = False

    def __init__(
        self,
        model: nn.Module,
        loss: Callable[[Any, Any], torch.Tensor],
        metrics: Metrics,
        optimizer: torch.optim.Optimizer,
        num_epochs: int,
        dataset: Dataset | None = None,
        dataset_valid: Dataset | None = None,
        *,
        dataset_train: Dataset | None = None,
        batch_size: int = 64,
        workers: int = 0,
        device: str | torch.device | None = None,
        log_frequency: int | None = None,
        callbacks: Sequence[Any] | None = None,
        seed: int = 0,
        amp: str | None = None,
        grad_clip: float | None = 5.0,
        train_split: float = 0.5,
        tensorboard_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
        distributed: bool | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        mutator: Any = None,
    ):
        if dataset is None:
            dataset = dataset_train
        elif dataset_train is not None:
            raise UsageError("give the search data as dataset or dataset_train, not both")
        if dataset is None:
            raise UsageError("a one-shot trainer needs data: dataset (or dataset_train)")
        if amp not in (None, "fp16", "bf16"):
            raise UsageError(f"amp must be None, 'fp16' or 'bf16', got {amp!r}")
        if not 0.0 < train_split < 1.0:
            raise UsageError(f"train_split must be between 0 and 1, got {train_split!r}")
        if not isinstance(num_epochs, int) or num_epochs < 0:
            raise UsageError(f"num_epochs must be a non-negative integer, got {num_epochs!r}")
        self.dist = join_process_group(distributed)
        self.rank = self.dist.rank
        if device is None and self.dist.enabled and torch.cuda.is_available():
            device = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.model = model
        self.mutator = None if mutator is None else check_mutator(type(self).__name__, mutator,
                                                                  model)  # fmt: skip
        if self.mutator is not None:
            self.mutator.to(self.device)
        self.loss = loss
        self.metrics = metrics
        self.optimizer = optimizer
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.workers = workers
        self.log_frequency = log_frequency
        self.callbacks = list(callbacks or [])
        self.seed = seed
        self.amp = amp
        self.grad_clip = grad_clip
        self.progress = progress
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.rng = random.Random(seed)
        torch.manual_seed(seed)
        self.data_generator = torch.Generator().manual_seed(seed)
        self.search_space = model_search_space(model)
        self._split(dataset, dataset_valid, train_split)
        scaler_on = amp == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaler_on)
        self.model.to(self.device)
        self._setup()
        self.model.to(self.device)
        self.train_model = self._wrap(self.model)
        self._writer = self._tensorboard(tensorboard_dir) if self.dist.main else None
        self.log_dir: Path | None = None
        self._run_log: RunLog | None = None
        self._fit_depth = 0
        if log_dir is not None:
            self._open_run_log(Path(log_dir))
        for callback in self.callbacks:
            callback.build(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            cls.fit = _logged_fit(cls.__dict__["fit"])  # type: ignore[method-assign]

    # ------------------------------------------------------------------ data

    def _split(self, dataset: Dataset, dataset_valid: Dataset | None, fraction: float) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        cut = max(1, min(n - 1, int(n * fraction)))
        self.dataset_weights = Subset(dataset, order[:cut])
        self.dataset_arch = Subset(dataset, order[cut:])
        self.dataset_valid = dataset_valid if dataset_valid is not None else self.dataset_arch
        # Training data is sharded across ranks; so is evaluation data, whose sums evaluate()
        # all-reduces: every rank scores on the union of the ranks' data and decides alike
        # (nascli.nas.oneshot.agreement), even when each rank holds different data.
        self.train_loader = self._loader(self.dataset_weights, shuffle=True, shard=True)
        self.arch_loader = self._loader(self.dataset_arch, shuffle=True, shard=True)
        self.valid_loader = self._loader(
            shard_for_evaluation(self.dataset_valid, self.dist), shuffle=False
        )

    def _loader(self, dataset: Dataset, shuffle: bool, shard: bool = False) -> DataLoader:
        sampler = None
        if shard and self.dist.enabled:
            sampler = DistributedSampler(
                dataset, self.dist.world_size, self.dist.rank, shuffle=shuffle, seed=self.seed
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle if sampler is None else False,
            sampler=sampler,
            num_workers=self.workers,
            generator=self.data_generator if shuffle and sampler is None else None,
            pin_memory=self.device.type == "cuda",
        )

    def _wrap(self, model: nn.Module) -> nn.Module:
        """The module weight steps run through: DDP when distributed."""
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=self.single_path_weight_steps
        )

    def _batches(self, loader: Iterable[Any], epoch: int, what: str) -> Iterator[tuple[int, Any]]:
        """Batches moved to the device, with batch callbacks and the progress bar around them."""
        bar = _progress(self.progress, f"epoch {epoch + 1}/{self.num_epochs} {what}", loader)
        with bar as advance:
            for step, batch in enumerate(loader):
                for callback in self.callbacks:
                    callback.on_batch_begin(epoch, step)
                yield step, to_device(batch, self.device)
                for callback in self.callbacks:
                    callback.on_batch_end(epoch, step)
                advance()

    # ------------------------------------------------------------------ steps

    @property
    def param_dtype(self) -> torch.dtype:
        """The dtype of the model's weights (architecture parameters are made alike)."""
        return next(self.model.parameters(), torch.zeros(())).dtype

    def autocast(self) -> Any:
        """The autocast context of weight-step forwards (a no-op without ``amp``)."""
        if self.amp is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=_AMP_DTYPES[self.amp])

    def weight_step(self, loss: torch.Tensor, parameters: Iterable[nn.Parameter]) -> None:
        """Backward, unscale, clip (``grad_clip``), step and zero the weight optimizer."""
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(list(parameters), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def _metric_values(self, output: Any, target: Any) -> dict[str, float]:
        if isinstance(output, (tuple, list)):  # (logits, aux_logits): metrics see the logits
            output = output[0]
        with torch.no_grad():
            return {k: float(v) for k, v in self.metrics(output.detach(), target).items()}

    def log_step(self, epoch: int, step: int, total: int, values: Mapping[str, float]) -> None:
        due = self.log_frequency and (step % self.log_frequency == 0 or step + 1 == total)
        if self.dist.main and due:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
            log.info("epoch [%d/%d] step [%d/%d]  %s", epoch + 1, self.num_epochs, step + 1,
                     total, shown)  # fmt: skip

    # ------------------------------------------------------------------ the run

    def fit(self) -> None:
        """Train from the current epoch to ``num_epochs`` (see the module docstring)."""
        while self.epoch < self.num_epochs:
            epoch = self.epoch
            for callback in self.callbacks:
                callback.on_epoch_begin(epoch)
            for loader in (self.train_loader, self.arch_loader):
                if isinstance(loader.sampler, DistributedSampler):
                    loader.sampler.set_epoch(epoch)
            self.model.train()
            train_stats = self.train_one_epoch(epoch) or {}
            self.dist.broadcast_buffers(self.model)
            valid_stats = self.validate()
            self.epoch = epoch + 1
            stats = {**{f"train/{k}": v for k, v in train_stats.items()},
                     **{f"valid/{k}": v for k, v in valid_stats.items()}}  # fmt: skip
            self.history.append(stats)
            if self.dist.main:
                shown = "  ".join(f"{k} {v:.4f}" for k, v in stats.items())
                log.info("epoch %d/%d  %s", epoch + 1, self.num_epochs, shown)
            self._write_tensorboard(epoch, stats)
            self._log_epoch(epoch, stats)
            for callback in self.callbacks:
                callback.on_epoch_end(epoch)

    def train(self, validate: bool = True) -> None:
        """NNI v1.9's name for ``fit()``."""
        self.fit()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Metrics of the currently chosen architecture on the validation data."""
        with self.final_architecture():
            return self.evaluate(self.valid_loader)

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Mean loss and metrics over ``loader`` (eval mode), with the model as it is set now.
        Under torch.distributed the sums and counts are added over ranks (collective: every rank
        calls it), so each rank may hold its shard of the data and all get the same result."""
        was_training = self.model.training
        self.model.eval()
        totals: dict[str, float] = {}
        count = 0
        for x, y in (to_device(b, self.device) for b in loader):
            with self.autocast():
                out = self.model(x)
                loss = self.loss(out, y)
            n = len(y)
            values = {"loss": float(loss), **self._metric_values(out, y)}
            for k, v in values.items():
                totals[k] = totals.get(k, 0.0) + v * n
            count += n
        self.model.train(was_training)
        totals, count = all_reduce_sums(self.dist, totals, count)
        return {k: v / max(count, 1) for k, v in totals.items()}

    def export(self, file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The chosen architecture (``apply_fixed_architecture`` format); written to ``file``
        as JSON when given."""
        arch = self._export()
        if file is not None and self.dist.main:
            Path(file).write_text(json.dumps(arch, indent=2, sort_keys=True))
        return arch

    # ------------------------------------------------------------------ for subclasses

    def _setup(self) -> None:
        raise NotImplementedError

    def train_one_epoch(self, epoch: int) -> dict[str, float] | None:
        """One pass over the weight split: ``before_weight_step`` (the algorithm's architecture
        step or path sampling), then a weight step. Returns the epoch's mean loss and metrics."""
        weights = [p for p in self.model.parameters() if p.requires_grad]
        self._arch_batches = self._cycle(self.arch_loader)
        total = len(self.train_loader)
        sums: dict[str, float] = {}
        for step, (x, y) in self._batches(self.train_loader, epoch, "search"):
            self.before_weight_step(epoch, x, y)
            self.optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                out = self.train_model(x)
                loss = self.loss(out, y)
            self.weight_step(loss, weights)
            values = {"loss": float(loss.detach()), **self._metric_values(out, y)}
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            self.log_step(epoch, step, total, values)
        # Each rank saw its own shard: report the mean over ranks (the same on every rank).
        return {k: self.dist.average(v / max(total, 1)) for k, v in sums.items()}

    def before_weight_step(self, epoch: int, x: Any, y: Any) -> None:
        """Hook: what the algorithm does before each weight step (default: nothing)."""

    def next_arch_batch(self) -> Any:
        """The next batch of the architecture split (cycled), on the device."""
        return to_device(next(self._arch_batches), self.device)

    def _cycle(self, loader: Iterable[Any]) -> Iterator[Any]:
        while True:
            yield from loader

    def _export(self) -> dict[str, Any]:
        raise NotImplementedError

    def final_architecture(self) -> Any:
        """Context in which the model computes with the architecture ``export()`` would give."""
        return nullcontext()

    def arch_probabilities(self) -> dict[str, list[float]]:
        """Per key, the current architecture weights or sampling probabilities (TensorBoard)."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "callbacks": [c.state_dict() for c in self.callbacks],
            "rng": {
                "torch": torch.get_rng_state(),
                "python": self.rng.getstate(),
                "data": self.data_generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.history = list(state["history"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        for callback, cb_state in zip(self.callbacks, state["callbacks"], strict=False):
            callback.load_state_dict(cb_state)
        torch.set_rng_state(state["rng"]["torch"])
        self.rng.setstate(state["rng"]["python"])
        self.data_generator.set_state(state["rng"]["data"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self._load_extra_state(state["extra"])

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write everything a resumed run needs (atomically; under torch.distributed only rank 0
        writes, and every rank waits for it). Returns the path."""
        path = Path(path)
        if self.dist.main:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, path)
        self.dist.barrier()
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore a ``save_checkpoint`` file; ``fit()`` then continues from its epoch."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except FileNotFoundError:
            raise UsageError(f"checkpoint {str(path)!r} does not exist") from None
        self.load_state_dict(state)

    # ------------------------------------------------------------------ the run log

    def enable_visualization(self) -> None:
        """NNI v1.9's switch for its NAS UI: turn on the one-shot run log (what nascli's web UI
        shows) in a fresh directory ``$NASCLI_HOME/oneshot/<run id>``, unless ``log_dir`` was
        given. The directory is ``self.log_dir`` (the same on every rank; rank 0 writes)."""
        if self.log_dir is not None:
            return
        directory = default_log_dir(type(self).__name__) if self.dist.main else None
        self._open_run_log(Path(self.dist.broadcast(str(directory))))

    def _open_run_log(self, directory: Path) -> None:
        self.log_dir = directory
        self._run_log = RunLog(directory) if self.dist.main else None

    def snapshot_export(self) -> dict[str, Any] | None:
        """The architecture the run log records after an epoch (``export()`` by default; None
        when the trainer has none yet). Must not change the run."""
        return self.export()

    def run_log_weights(self) -> dict[str, list[float]]:
        """Per key, the probability of each candidate: ``arch_probabilities()``, and uniform
        sampling probabilities for keys it leaves out (single-path trainers sample uniformly)."""
        if self.mutator is not None:
            probs = mutator_probabilities(self.mutator)
        else:
            probs = self.arch_probabilities()
        return {key: list(probs[key]) if key in probs else uniform_probabilities(spec)
                for key, spec in sorted(self.search_space.items())}  # fmt: skip

    def _log_start(self) -> None:
        if getattr(self, "_run_log", None) is not None:
            self._run_log.start(type(self).__name__, self.num_epochs, self.search_space)

    def _log_epoch(self, epoch: int, stats: Mapping[str, float]) -> None:
        if getattr(self, "_run_log", None) is not None:
            self._run_log.epoch(epoch, stats, self.run_log_weights(), self.snapshot_export())

    def _log_end(self) -> None:
        if getattr(self, "_run_log", None) is not None:
            self._run_log.end(self.snapshot_export())

    # ------------------------------------------------------------------ TensorBoard

    def _tensorboard(self, directory: str | os.PathLike[str] | None) -> Any:
        if directory is None:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UsageError(
                "tensorboard_dir needs the tensorboard package: pip install tensorboard"
            ) from None
        return SummaryWriter(str(directory))

    def _write_tensorboard(self, epoch: int, stats: Mapping[str, float]) -> None:
        if self._writer is None:
            return
        for name, value in stats.items():
            self._writer.add_scalar(name, value, epoch)
        for key, probs in self.arch_probabilities().items():
            for i, p in enumerate(probs):
                self._writer.add_scalar(f"arch/{key}/{i}", p, epoch)
        self._writer.flush()


def _logged_fit(fit: Callable[..., Any]) -> Callable[..., Any]:
    """``fit`` with the run log's start / end records around the outermost call (a subclass's
    ``fit`` that calls ``super().fit()`` and then searches ends the log after its search)."""
    if getattr(fit, "_run_logged", False):
        return fit

    def wrapper(self: BaseOneShotTrainer, *args: Any, **kwargs: Any) -> Any:
        # getattr: a custom trainer may skip BaseOneShotTrainer.__init__ (NNI's guide's does)
        depth = getattr(self, "_fit_depth", 0)
        outermost = depth == 0
        if outermost:
            self._log_start()
        self._fit_depth = depth + 1
        try:
            result = fit(self, *args, **kwargs)
        finally:
            self._fit_depth = depth
        if outermost:
            self._log_end()
        return result

    wrapper.__name__ = fit.__name__
    wrapper.__qualname__ = fit.__qualname__
    wrapper.__doc__ = fit.__doc__
    wrapper._run_logged = True  # type: ignore[attr-defined]
    return wrapper


BaseOneShotTrainer.fit = _logged_fit(BaseOneShotTrainer.fit)  # type: ignore[method-assign]


class _NoBar:
    def __enter__(self) -> Callable[[], None]:
        return lambda: None

    def __exit__(self, *exc: Any) -> None:
        return None


class _RichBar:
    def __init__(self, description: str, total: int | None):
        from rich.progress import Progress

        self.progress = Progress(transient=True)
        self.description = description
        self.total = total

    def __enter__(self) -> Callable[[], None]:
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total)
        return lambda: self.progress.advance(task)

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()


def _progress(enabled: bool, description: str, loader: Iterable[Any]) -> Any:
    if not enabled:
        return _NoBar()
    return _RichBar(description, len(loader) if hasattr(loader, "__len__") else None)
