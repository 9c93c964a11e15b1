"""Helpers shared by one-shot trainers: replacing choices with algorithm modules, moving batches
to a device, gradients without ``.grad``. (Decisions: ``spaces.Chosen``, exported with
``spaces.export_architecture``.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nascli.nas.mutables import InputChoice, LayerChoice

__all__ = [
    "replace_layer_choice",
    "replace_input_choice",
    "to_device",
    "gradients",
    "ZERO_NAMES",
    "zero_candidates",
    "best_non_zero",
]

#: candidate names (lower case) that mean "this edge computes nothing" (DARTS's and
#: NAS-Bench-201's ``none``, NNI's ``zero``)
ZERO_NAMES = frozenset({"none", "zero"})


def _replace(
    root: nn.Module,
    kind: type[nn.Module],
    factory: Callable[[Any], nn.Module],
    modules: list[tuple[str, nn.Module]] | None,
) -> list[tuple[str, nn.Module]]:
    found = [] if modules is None else modules
    for name, child in list(root.named_children()):
        if isinstance(child, kind):
            new = factory(child)
            setattr(root, name, new)
            found.append((child.key, new))  # type: ignore[attr-defined]
        else:
            _replace(child, kind, factory, found)
    return found


def replace_layer_choice(
    root: nn.Module,
    factory: Callable[[LayerChoice], nn.Module],
    modules: list[tuple[str, nn.Module]] | None = None,
) -> list[tuple[str, nn.Module]]:
    """Replace every ``LayerChoice`` under ``root`` by ``factory(choice)`` (in place, walking
    ``named_children``). Appends ``(key, new_module)`` to ``modules`` (a new list when None)
    and returns it; modules sharing a key appear once each, in model order."""
    return _replace(root, LayerChoice, factory, modules)


def replace_input_choice(
    root: nn.Module,
    factory: Callable[[InputChoice], nn.Module],
    modules: list[tuple[str, nn.Module]] | None = None,
) -> list[tuple[str, nn.Module]]:
    """``replace_layer_choice`` for ``InputChoice``."""
    return _replace(root, InputChoice, factory, modules)


def to_device(obj: Any, device: torch.device | str) -> Any:
    """Tensors (also inside tuples, lists and dicts) moved to ``device``; other values as is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, tuple):
        return tuple(to_device(o, device) for o in obj)
    if isinstance(obj, list):
        return [to_device(o, device) for o in obj]
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def gradients(loss: torch.Tensor, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d each input, zeros for inputs the loss does not depend on. Nothing is
    accumulated into ``.grad`` (so DDP's hooks on model weights never fire)."""
    grads = torch.autograd.grad(loss, list(inputs), allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


def zero_candidates(modules: Sequence[tuple[str, nn.Module]]) -> dict[str, set[int]]:
    """Per layer-choice key, the indices of its zero operations: candidates named ``none`` /
    ``zero`` (``ZERO_NAMES``) or whose module class is called ``Zero``. Derivation skips them,
    as DARTS does (the strongest non-zero operation per edge): a zero operation's weight in a
    supernet measures how much an edge is scaled down, not how good a network without it is,
    and exporting it on every edge of a cell leaves a network with no path from its input."""
    zeros: dict[str, set[int]] = {}
    for key, module in modules:
        names = getattr(module, "names", None)
        if names is None or not hasattr(module, "candidate"):
            continue  # an input choice
        found = {i for i, name in enumerate(names)
                 if str(name).lower() in ZERO_NAMES
                 or type(module.candidate(i)).__name__ == "Zero"}  # fmt: skip
        if found:
            zeros.setdefault(key, set()).update(found)
    return zeros


def best_non_zero(scores: torch.Tensor, zeros: set[int] | None) -> int:
    """argmax of ``scores`` over the candidates not in ``zeros`` (all of them when every
    candidate is a zero operation)."""
    if not zeros or len(zeros) >= scores.numel():
        return int(scores.argmax())
    masked = scores.detach().clone().float()
    masked[sorted(zeros)] = float("-inf")
    return int(masked.argmax())
