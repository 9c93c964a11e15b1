"""Which ``InputChoice(n_chosen=None)`` picks must not be empty in a training path.

An ``n_chosen: null`` choice may pick nothing. What that means depends on the model: where the
choice adds an optional shortcut (``y if skip is None else y + skip``), an empty pick is a real
architecture that still trains everything around it; where the choice is the only source of a
node (a cell node summing the edges it picks, zeros when it picks none), an empty pick is the
zero operation of that node: the layers fed by the node run on zeros and train nothing, as a
layer choice's ``none`` does (``utils.zero_candidates``). Single-path trainers and
ProxylessNAS keep such picks out of their training paths (by default they train every input of
such a choice: an input left out is that edge's zero operation); the search may still score
and export them.

Which case a choice is cannot be read from the search space, so ``sole_source_keys`` finds it
by running the model: one forward pass with every choice connected (each layer choice on a
candidate that is not a zero operation, every input picked), then one per ``n_chosen: null``
choice with only that choice empty. A choice is its node's only source when emptying it makes
some module, whose input varied over the batch before, receive an input that is the same for
every sample (it no longer depends on the data). Modules that are simply not called any more
(the shortcut case) do not count. A model whose forward fails with the empty pick counts too:
that pick cannot be trained at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.oneshot.utils import to_device

if TYPE_CHECKING:
    from nascli.nas.oneshot.base import BaseOneShotTrainer

__all__ = [
    "connected_architecture", "sole_source_keys", "nonempty_subset", "probe_batch",
    "trainer_sole_sources", "check_sole_source_paths", "SOLE_SOURCE_PATHS",
]  # fmt: skip

#: what a training path may take of a node's only source (the trainers' ``sole_source_paths``)
SOLE_SOURCE_PATHS = ("all", "nonempty")

#: an input counts as the same for every sample below this relative spread
_TOLERANCE = 1e-6


def connected_architecture(
    space: spaces.SearchSpace, zeros: Mapping[str, set[int]]
) -> spaces.Chosen:
    """Every key connected: each layer choice on its first candidate that is not a zero
    operation, every ``n_chosen: null`` choice on all its inputs, ``n_chosen: k`` on the first k."""
    arch: spaces.Chosen = {}
    for key, spec in space.items():
        if isinstance(spec, spaces.LayerChoiceSpec):
            allowed = [i for i in range(spec.n_candidates) if i not in zeros.get(key, set())]
            arch[key] = allowed[0] if allowed else 0
        elif spec.n_chosen is None:
            arch[key] = tuple(range(spec.n_candidates))
        else:
            arch[key] = tuple(range(spec.n_chosen))
    return arch


def nonempty_subset(n: int, rng: Any) -> tuple[int, ...]:
    """A uniformly random non-empty subset of ``range(n)`` (sorted), one draw of ``rng``."""
    code = rng.randrange(1, 2**n)
    return tuple(i for i in range(n) if code >> i & 1)


def probe_batch(dataset: Dataset, size: int, device: torch.device | str) -> Any:
    """The inputs of the first ``min(size, 32)`` samples of ``dataset`` (``(input, target)``
    pairs) as one batch on ``device``, read by index (no loader, so no random state is drawn);
    None when the dataset has fewer than 2 samples."""
    n = min(len(dataset), size, 32)  # type: ignore[arg-type]
    if n < 2:
        return None
    batch = default_collate([dataset[i] for i in range(n)])
    return to_device(batch[0] if isinstance(batch, list | tuple) else batch, device)


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _tensors(item)


def _varies(t: torch.Tensor, batch: int) -> bool:
    if not t.is_floating_point() or t.dim() == 0 or t.shape[0] != batch:
        return False
    spread = (t - t[:1]).abs().amax()
    return bool(spread > _TOLERANCE * (t.abs().amax() + 1e-30))


class _Recorder:
    """Forward pre-hooks on every module: per (module, call, input), whether it varied."""

    def __init__(self, model: nn.Module, batch: int):
        self.batch = batch
        self.calls: dict[str, int] = {}
        self.seen: dict[tuple[str, int, int], bool] = {}
        self.handles = [m.register_forward_pre_hook(self._hook(name), with_kwargs=True)
                        for name, m in model.named_modules()]  # fmt: skip

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, kwargs: Any) -> None:
            call = self.calls.get(name, 0)
            self.calls[name] = call + 1
            for i, t in enumerate(_tensors((args, kwargs))):
                self.seen[(name, call, i)] = _varies(t, self.batch)

        return hook

    def run(self, forward: Callable[[], Any]) -> dict[tuple[str, int, int], bool]:
        self.calls, self.seen = {}, {}
        forward()
        return self.seen

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def sole_source_keys(
    model: nn.Module,
    space: spaces.SearchSpace,
    zeros: Mapping[str, set[int]],
    x: Any,
    architecture: Callable[[spaces.Chosen], AbstractContextManager[Any]],
    keys: Sequence[str] | None = None,
) -> set[str]:
    """The ``n_chosen: null`` keys (of ``keys``, default all) whose empty pick leaves a node
    with no input (see the module docstring), found by forward passes of ``model`` on the batch
    ``x`` (at least 2 samples; eval mode, no gradients; BatchNorm statistics, modes and every
    random state left as they were). ``architecture(arch)`` is the trainer's context manager
    that makes the model run ``arch``; ``zeros`` its zero operations per layer-choice key. When
    the model cannot run ``x`` with every choice connected, nothing is found (the trainers then
    sample as before)."""
    batch = len(x) if torch.is_tensor(x) else len(next(_tensors(x)))
    candidates = [
        k for k in (keys if keys is not None else sorted(space))
        if isinstance(space[k], spaces.InputChoiceSpec) and space[k].n_chosen is None
    ]  # fmt: skip
    if batch < 2 or not candidates:
        return set()
    base = connected_architecture(space, zeros)
    modes = [(m, m.training) for m in model.modules()]
    recorder = _Recorder(model, batch)
    found: set[str] = set()
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            try:
                with architecture(base):
                    reference = recorder.run(lambda: model(x))
            except Exception:  # not a batch this model runs as is: nothing can be told
                return set()
            for key in candidates:
                try:
                    with architecture({**base, key: ()}):
                        seen = recorder.run(lambda: model(x))
                except Exception:  # the model cannot run without this input: never train it
                    found.add(key)
                    continue
                if any(reference.get(site) and not varied for site, varied in seen.items()):
                    found.add(key)
    finally:
        recorder.close()
        for m, training in modes:
            m.training = training
    return found


def trainer_sole_sources(
    trainer: BaseOneShotTrainer,
    zeros: Mapping[str, set[int]],
    architecture: Callable[[spaces.Chosen], AbstractContextManager[Any]],
) -> set[str]:
    """``sole_source_keys`` of a trainer's model, probed on the first samples of its weight
    data; every rank gets rank 0's answer, whatever data each rank holds. Empty when the data
    holds fewer than 2 samples."""
    x = probe_batch(trainer.dataset_weights, trainer.batch_size, trainer.device)
    found = set() if x is None else sole_source_keys(
        trainer.model, trainer.search_space, zeros, x, architecture)  # fmt: skip
    return set(trainer.dist.broadcast(sorted(found)))


def check_sole_source_paths(value: str) -> str:
    """``value`` when it is one of ``SOLE_SOURCE_PATHS``.

    Raises:
        UsageError: it is not.
    """
    if value not in SOLE_SOURCE_PATHS:
        raise UsageError(f"sole_source_paths must be 'all' or 'nonempty', got {value!r}")
    return value
