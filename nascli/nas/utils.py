"""What NNI v1.9's ``nni.nas.pytorch.utils`` offered NAS scripts: running averages of training
statistics (``AverageMeter``, ``AverageMeterGroup``, as the DARTS retrain example uses them),
``to_device`` / ``to_list``, the mutable tree node, and the auto-key counter helpers.

Meters hold plain floats: a tensor given to ``update`` is turned into a number first (NNI kept
the tensor, and with it the autograd graph of every step, alive).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from nascli.nas import mutables as _mutables
from nascli.nas.mutator import StructuredMutableTreeNode
from nascli.nas.oneshot.utils import to_device

__all__ = [
    "AverageMeter",
    "AverageMeterGroup",
    "StructuredMutableTreeNode",
    "to_device",
    "to_list",
    "global_mutable_counting",
    "reset_global_mutable_counting",
]


def _number(value: Any) -> float:
    if hasattr(value, "detach"):  # a tensor
        value = value.detach()
        if value.numel() != 1:
            raise ValueError(f"an AverageMeter takes one number per update, got shape "
                             f"{tuple(value.shape)}")  # fmt: skip
        return float(value.item())
    return float(value)


class AverageMeter:
    """The last value and the running (weighted) mean of one statistic.

    Args:
        name: shown by ``str()`` and ``summary()``.
        fmt: a format spec for the numbers, with or without NNI's leading colon (``":4f"``).
    """

    def __init__(self, name: str, fmt: str = ":f"):
        self.name = name
        self.fmt = fmt[1:] if fmt.startswith(":") else fmt
        self.reset()

    def reset(self) -> None:
        self.val = 0.0
        self.avg = 0.0
        self.sum = 0.0
        self.count = 0

    def update(self, val: Any, n: int = 1) -> None:
        """Record ``val`` as the mean of ``n`` samples (a float, an int or a 1-element tensor)."""
        self.val = _number(val)
        self.sum += self.val * n
        self.count += n
        self.avg = self.sum / self.count if self.count else 0.0

    def __str__(self) -> str:
        return f"{self.name} {format(self.val, self.fmt)} ({format(self.avg, self.fmt)})"

    def summary(self) -> str:
        return f"{self.name}: {format(self.avg, self.fmt)}"


class AverageMeterGroup:
    """One ``AverageMeter`` per name, created on first ``update``; ``group["loss"]`` or
    ``group.loss`` is a meter, ``str(group)`` the last values and means, ``summary()`` the
    means."""

    def __init__(self) -> None:
        self.meters: dict[str, AverageMeter] = {}

    def update(self, data: Mapping[str, Any], n: int = 1) -> None:
        for name, value in data.items():
            if name not in self.meters:
                self.meters[name] = AverageMeter(name, ":4f")
            self.meters[name].update(value, n)

    def __getattr__(self, item: str) -> AverageMeter:
        meters = self.__dict__.get("meters", {})
        if item in meters:
            return meters[item]
        raise AttributeError(item)

    def __getitem__(self, item: str) -> AverageMeter:
        return self.meters[item]

    def __contains__(self, item: str) -> bool:
        return item in self.meters

    def __iter__(self) -> Iterator[str]:
        return iter(self.meters)

    def __str__(self) -> str:
        return "  ".join(str(m) for m in self.meters.values())

    def summary(self) -> str:
        return "  ".join(m.summary() for m in self.meters.values())


def to_list(arr: Any) -> list[Any]:
    """A tensor, numpy array, tuple or list as a plain list."""
    if hasattr(arr, "detach"):
        arr = arr.detach().cpu()
    if hasattr(arr, "tolist"):
        return arr.tolist()
    if isinstance(arr, (list, tuple)):
        return list(arr)
    raise ValueError(f"cannot turn {type(arr).__name__} into a list")


def global_mutable_counting() -> int:
    """The next number of the process-wide fallback counter for automatic keys (used only for
    mutables built outside any module's ``__init__``; see ``nascli.nas.mutables``)."""
    return next(_mutables._process_counter)


def reset_global_mutable_counting() -> None:
    """Restart the fallback counter, and the per-model counters of models still being built.
    Keys of mutables built inside a model's ``__init__`` restart at 1 for every model anyway,
    so NNI code that called this between two models gets the same keys either way."""
    _mutables._process_counter = itertools.count(1)
    _mutables._root_counters.clear()


_reset_global_mutable_counting = reset_global_mutable_counting  # NNI's private name
