"""``ProxylessNasTrainer``: NNI v1.9's ProxylessNAS trainer signature on nascli's
``ProxylessTrainer``.

``ProxylessNasTrainer(model, model_optim, device, train_loader, valid_loader, ...)`` trains with
label-smoothed cross entropy, a per-epoch cosine learning-rate schedule from ``init_lr``, weight
steps on ``train_loader`` and, after the warm-up, ``grad_update_steps`` architecture steps on
``valid_loader`` every ``grad_update_arch_param_every`` weight steps. With ``ckpt_path`` every
epoch ends with a full checkpoint there (weights, alpha, both optimizers, the schedule, random
states: ``load_ckpt=True`` resumes exactly) and, with ``arch_path``, the exported architecture.

Differences from NNI's: ``binary_mode`` is accepted but every mode uses the two-path binary-gate
estimator (NNI's ``full``/``two`` modes were broken, ``full_v2`` ran every candidate in the
backward pass); the model is not wrapped in DataParallel; candidates need no ``is_zero_layer``;
validation runs in eval mode; the export is human-readable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nascli.errors import UsageError
from nascli.nas.oneshot.adapters import LoaderData
from nascli.nas.oneshot.callbacks import Callback, LRSchedulerCallback
from nascli.nas.oneshot.proxyless import ProxylessTrainer

__all__ = ["ProxylessNasTrainer", "topk_accuracy"]

BINARY_MODES = ("full_v2", "full", "two", None)


def topk_accuracy(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy, and top-5 when there are more than 5 classes."""
    out = {"acc1": float((output.argmax(1) == target).float().mean())}
    if output.shape[1] > 5:
        top5 = output.topk(5, 1).indices
        out["acc5"] = float((top5 == target.view(-1, 1)).any(1).float().mean())
    return out


class _SaveEveryEpoch(Callback):
    def __init__(self, ckpt_path: Path, arch_path: Path | None):
        self.ckpt_path = ckpt_path
        self.arch_path = arch_path

    def on_epoch_end(self, epoch: int) -> None:
        self.trainer.save_checkpoint(self.ckpt_path)
        if self.arch_path is not None:
            self.arch_path.parent.mkdir(parents=True, exist_ok=True)
            self.trainer.export(file=self.arch_path)


class ProxylessNasTrainer(ProxylessTrainer):
    def __init__(
        self,
        model: nn.Module,
        model_optim: torch.optim.Optimizer,
        device: Any,
        train_loader: Any,
        valid_loader: Any,
        label_smoothing: float = 0.1,
        n_epochs: int = 120,
        init_lr: float = 0.025,
        binary_mode: str | None = "full_v2",
        arch_init_type: str = "normal",
        arch_init_ratio: float = 1e-3,
        arch_optim_lr: float = 1e-3,
        arch_weight_decay: float = 0,
        grad_update_arch_param_every: int = 5,
        grad_update_steps: int = 1,
        warmup: bool = True,
        warmup_epochs: int = 25,
        arch_valid_frequency: int = 1,
        load_ckpt: bool = False,
        ckpt_path: str | os.PathLike[str] | None = None,
        arch_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ):
        if binary_mode not in BINARY_MODES:
            raise UsageError(
                f"binary_mode must be one of {list(BINARY_MODES)}, got {binary_mode!r}"
            )
        if arch_init_type not in ("normal", "uniform"):
            raise UsageError(
                f"arch_init_type must be 'normal' or 'uniform', got {arch_init_type!r}"
            )
        for name, value in (("grad_update_arch_param_every", grad_update_arch_param_every),
                            ("grad_update_steps", grad_update_steps),
                            ("arch_valid_frequency", arch_valid_frequency)):  # fmt: skip
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if load_ckpt and ckpt_path is None:
            raise UsageError("load_ckpt=True needs ckpt_path")
        self.binary_mode = binary_mode
        self.grad_update_arch_param_every = grad_update_arch_param_every
        self.grad_update_steps = grad_update_steps
        self.arch_valid_frequency = arch_valid_frequency
        self._loaders = LoaderData(train_loader, valid_loader)
        self._steps_in_epoch = (-1, 0)
        for group in model_optim.param_groups:
            group["lr"] = init_lr
            group.setdefault("initial_lr", init_lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(model_optim, max(1, n_epochs))
        callbacks = [LRSchedulerCallback(schedule), *(kwargs.pop("callbacks", None) or [])]
        if ckpt_path is not None:
            callbacks.append(_SaveEveryEpoch(Path(ckpt_path), None if arch_path is None
                                             else Path(arch_path)))  # fmt: skip
        super().__init__(
            model, nn.CrossEntropyLoss(label_smoothing=label_smoothing), topk_accuracy,
            model_optim, n_epochs, self._loaders.dataset(train_loader), device=device,
            callbacks=callbacks, arc_learning_rate=arch_optim_lr,
            warmup_epochs=warmup_epochs if warmup else 0, **kwargs,
        )  # fmt: skip
        with torch.no_grad():
            for alpha in self.alpha.values():
                if arch_init_type == "normal":
                    alpha.normal_(0, arch_init_ratio)
                else:
                    alpha.uniform_(-arch_init_ratio, arch_init_ratio)
        for group in self.ctrl_optim.param_groups:
            group["weight_decay"] = arch_weight_decay
        if load_ckpt:
            self.load_checkpoint(ckpt_path)  # type: ignore[arg-type]

    def _split(self, dataset: Any, dataset_valid: Any, fraction: float) -> None:
        self._loaders.install(self)

    def before_weight_step(self, epoch: int, x: Any, y: Any) -> None:
        seen_epoch, step = self._steps_in_epoch
        step = step + 1 if seen_epoch == epoch else 0
        self._steps_in_epoch = (epoch, step)
        if epoch >= self.warmup_epochs and step % self.grad_update_arch_param_every == 0:
            for _ in range(self.grad_update_steps):
                self._arch_step(*self.next_arch_batch())
        self._sample_single()

    def validate(self) -> dict[str, float]:
        """Validation metrics; inside ``fit()`` only every ``arch_valid_frequency`` epochs (and
        after the last), an empty dict otherwise."""
        due = (self.epoch + 1) % self.arch_valid_frequency == 0 or self.epoch + 1 >= self.num_epochs
        if self._fit_depth > 0 and not due:
            return {}
        return super().validate()
