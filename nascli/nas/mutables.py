"""Search-space building blocks written inside ordinary PyTorch model code.

``LayerChoice`` (pick candidate operations), ``InputChoice`` (pick incoming tensors) and
``MutableScope`` (group choices under a key) are ``nn.Module``s that hold every candidate but take
no decision themselves: at forward time each asks the *mutator* bound to it (see
``nascli.nas.mutator``) which candidates run. A mutator binds itself when it is built on the
model, e.g. ``RandomMutator(model)``, ``apply_fixed_architecture(model, arch)`` or
``get_and_apply_next_architecture(model)``.

Keys name decisions. Mutables that share a key share one decision. A mutable built without a key
gets ``<ClassName><n>``, numbered per top-level module under construction, so building the same
model class twice in one process gives the same keys (NNI numbered them process-wide, which made
exported architectures unusable in a second model).
"""

from __future__ import annotations

import copy
import itertools
import logging
import sys
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch.nn as nn

from nascli.errors import MutableError, MutatorNotAppliedError

if TYPE_CHECKING:
    from nascli.nas.mutator import BaseMutator

__all__ = ["Mutable", "MutableScope", "LayerChoice", "InputChoice", "REDUCTIONS"]

_logger = logging.getLogger(__name__)

REDUCTIONS = ("sum", "mean", "concat", "none")

# One counter per outermost module whose __init__ is running; a fallback for mutables built
# outside any module's __init__ (those keys depend on process history: give them explicit keys).
_root_counters: weakref.WeakKeyDictionary[nn.Module, Iterator[int]] = weakref.WeakKeyDictionary()
_process_counter = itertools.count(1)


def _outermost_module_under_construction() -> nn.Module | None:
    root = None
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "__init__":
            obj = frame.f_locals.get("self")
            if isinstance(obj, nn.Module) and not isinstance(obj, Mutable):
                root = obj
        frame = frame.f_back
    return root


def _next_auto_key(prefix: str) -> tuple[str, bool]:
    root = _outermost_module_under_construction()
    if root is None:
        return f"{prefix}{next(_process_counter)}", False
    counter = _root_counters.get(root)
    if counter is None:
        counter = _root_counters[root] = itertools.count(1)
    return f"{prefix}{next(counter)}", True


class Mutable(nn.Module):
    """Base of every search-space module.

    Attributes:
        key: the decision's name (read-only).
        name: the module path in the model (``"cells.0.op"``), set when a mutator parses the
            model; until then the key.
        mutator: the bound mutator, or None.
    """

    def __init__(self, key: str | None = None):
        super().__init__()
        if key is None:
            key, stable = _next_auto_key(type(self).__name__)
            self._auto_key_stable = stable
        else:
            if not isinstance(key, str):
                _logger.warning("mutable key %r is not a string; using str(key)", key)
                key = str(key)
            if not key:
                raise MutableError(f"{type(self).__name__}: key must be a non-empty string")
            self._auto_key_stable = True
        self._key = key
        self._path: str | None = None
        self.__dict__["_mutator"] = None  # kept out of _modules: not a submodule

    @property
    def key(self) -> str:
        return self._key

    @property
    def name(self) -> str:
        return self._path if self._path is not None else self._key

    @name.setter
    def name(self, value: str) -> None:
        self._path = value

    @property
    def mutator(self) -> BaseMutator | None:
        return self.__dict__["_mutator"]

    def set_mutator(self, mutator: BaseMutator | None) -> None:
        """Bind (or, with None, unbind) the mutator. Called by ``BaseMutator`` only."""
        self.__dict__["_mutator"] = mutator

    def _require_mutator(self) -> BaseMutator:
        mutator = self.__dict__["_mutator"]
        if mutator is None:
            raise MutatorNotAppliedError(
                f"{type(self).__name__} {self._key!r} ran before any architecture was chosen: "
                "right after building the model, call get_and_apply_next_architecture(model), "
                "apply_fixed_architecture(model, 'arch.json') or build a mutator such as "
                "RandomMutator(model)"
            )
        return mutator

    def __deepcopy__(self, memo: dict[int, Any]) -> Mutable:
        # The copy stays bound to the same mutator; the mutator (and the model it holds) is not
        # copied along.
        mutator = self.__dict__["_mutator"]
        if mutator is not None:
            memo.setdefault(id(mutator), mutator)
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for attr, value in self.__dict__.items():
            new.__dict__[attr] = copy.deepcopy(value, memo)
        return new

    def extra_repr(self) -> str:
        return f"key={self._key!r}"


class MutableScope(Mutable):
    """A named group of mutables; ``choose_from`` of a later ``InputChoice`` may name it.

    Scopes carry no decision of their own: they never appear in search spaces or exports. A
    mutator's ``enter_mutable_scope`` / ``exit_mutable_scope`` run around the scope's forward.
    Scopes nest.
    """

    def __init__(self, key: str | None):
        super().__init__(key)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mutator = self.__dict__["_mutator"]
        if mutator is None:
            return super().__call__(*args, **kwargs)
        mutator.enter_mutable_scope(self)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            mutator.exit_mutable_scope(self)


class LayerChoice(Mutable):
    """Choose among candidate operations.

    Args:
        op_candidates: a list or tuple of modules (named ``"0"``, ``"1"``, ...) or a mapping
            (e.g. ``OrderedDict``) of names to modules; order is kept.
        reduction: how outputs combine when several candidates are active: ``sum``, ``mean``,
            ``concat`` (dim 1) or ``none`` (a list).
        return_mask: also return the decision mask (``(output, mask)``).
        key: the decision's name; auto-generated when None.
    """

    _RESERVED = frozenset(
        {"length", "reduction", "return_mask", "key", "names", "name", "choices", "mutator"}
    )

    def __init__(
        self,
        op_candidates: Sequence[nn.Module] | Mapping[str, nn.Module],
        reduction: str = "sum",
        return_mask: bool = False,
        key: str | None = None,
    ):
        super().__init__(key)
        _check_reduction(self, reduction)
        self.reduction = reduction
        self.return_mask = return_mask
        self.names: list[str] = []
        if isinstance(op_candidates, Mapping):
            items = [(str(name), module) for name, module in op_candidates.items()]
        elif isinstance(op_candidates, (list, tuple, nn.ModuleList)):
            items = [(str(i), module) for i, module in enumerate(op_candidates)]
        else:
            raise MutableError(
                f"LayerChoice {self.key!r}: op_candidates must be a list, tuple or mapping of "
                f"modules, got {type(op_candidates).__name__}"
            )
        if not items:
            raise MutableError(f"LayerChoice {self.key!r}: op_candidates is empty")
        for name, module in items:
            self._add_candidate(name, module)

    def _add_candidate(self, name: str, module: Any) -> None:
        if not isinstance(module, nn.Module):
            raise MutableError(
                f"LayerChoice {self.key!r}: candidate {name!r} must be an nn.Module, "
                f"got {type(module).__name__}"
            )
        if name in self._RESERVED or name in self._modules:
            raise MutableError(
                f"LayerChoice {self.key!r}: candidate name {name!r} is reserved or repeated"
            )
        try:
            self.add_module(name, module)
        except (KeyError, TypeError) as exc:
            raise MutableError(
                f"LayerChoice {self.key!r}: candidate name {name!r} cannot be used: {exc}"
            ) from None
        self.names.append(name)

    def candidate(self, index: int) -> nn.Module:
        """The candidate at ``index`` (fast path used by mutators)."""
        return self._modules[self.names[index]]  # type: ignore[return-value]

    @property
    def length(self) -> int:
        """Number of candidates (NNI name; same as ``len(choice)``)."""
        return len(self.names)

    @property
    def choices(self) -> list[nn.Module]:
        return list(self)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[nn.Module]:
        return (self._modules[name] for name in self.names)  # type: ignore[misc]

    def __getitem__(self, idx: int | str | slice) -> Any:
        if isinstance(idx, str):
            if idx not in self.names:
                raise KeyError(f"LayerChoice {self.key!r} has no candidate {idx!r}: {self.names}")
            return self._modules[idx]
        return list(self)[idx]

    def __setitem__(self, idx: int | str, module: nn.Module) -> None:
        name = idx if isinstance(idx, str) else self.names[idx]
        if name not in self.names:
            raise KeyError(f"LayerChoice {self.key!r} has no candidate {name!r}: {self.names}")
        setattr(self, name, module)

    def __delitem__(self, idx: int | str | slice) -> None:
        if isinstance(idx, slice):
            names = self.names[idx]
        elif isinstance(idx, str):
            names = [idx]
        else:
            names = [self.names[idx]]
        for name in names:
            del self._modules[name]
            self.names.remove(name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out, mask = self._require_mutator().on_forward_layer_choice(self, *args, **kwargs)
        return (out, mask) if self.return_mask else out

    def extra_repr(self) -> str:
        return f"key={self.key!r}, names={self.names}"


class InputChoice(Mutable):
    """Choose among incoming tensors (e.g. skip connections).

    Args:
        n_candidates: number of inputs; defaults to ``len(choose_from)``.
        choose_from: for each input, the key of the mutable or scope that produces it, or ``""``
            (``InputChoice.NO_KEY``). Non-empty entries must name mutables built earlier in the
            model. A mutable may be given instead of its key.
        n_chosen: how many inputs are chosen; None means any number (possibly none, in which case
            the choice returns None).
        reduction: ``sum``, ``mean``, ``concat`` (dim 1) or ``none`` (a list).
        return_mask: also return the decision mask.
        key: the decision's name; auto-generated when None.
    """

    NO_KEY = ""

    def __init__(
        self,
        n_candidates: int | None = None,
        choose_from: Sequence[str | Mutable] | None = None,
        n_chosen: int | None = None,
        reduction: str = "sum",
        return_mask: bool = False,
        key: str | None = None,
    ):
        super().__init__(key)
        _check_reduction(self, reduction)
        if n_candidates is None and choose_from is None:
            raise MutableError(
                f"InputChoice {self.key!r}: give n_candidates or choose_from (or both)"
            )
        if choose_from is None:
            choose_from = [self.NO_KEY] * int(n_candidates)  # type: ignore[arg-type]
        labels = [c.key if isinstance(c, Mutable) else c for c in choose_from]
        if not all(isinstance(c, str) for c in labels):
            raise MutableError(
                f"InputChoice {self.key!r}: choose_from entries must be keys (str) or mutables, "
                f"got {labels!r}"
            )
        if n_candidates is None:
            n_candidates = len(labels)
        if n_candidates != len(labels):
            raise MutableError(
                f"InputChoice {self.key!r}: n_candidates ({n_candidates}) must equal "
                f"len(choose_from) ({len(labels)})"
            )
        if not isinstance(n_candidates, int) or n_candidates <= 0:
            raise MutableError(
                f"InputChoice {self.key!r}: n_candidates must be a positive integer, "
                f"got {n_candidates!r}"
            )
        if n_chosen is not None and (
            not isinstance(n_chosen, int) or not 0 <= n_chosen <= n_candidates
        ):
            raise MutableError(
                f"InputChoice {self.key!r}: n_chosen must be None or an integer from 0 to "
                f"{n_candidates}, got {n_chosen!r}"
            )
        self.n_candidates = n_candidates
        self.choose_from = labels
        self.n_chosen = n_chosen
        self.reduction = reduction
        self.return_mask = return_mask

    @property
    def length(self) -> int:
        return self.n_candidates

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        inputs = self._as_list(optional_inputs)
        out, mask = self._require_mutator().on_forward_input_choice(self, inputs)
        return (out, mask) if self.return_mask else out

    def _as_list(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        if isinstance(optional_inputs, Mapping):
            if (
                len(set(self.choose_from)) != len(self.choose_from)
                or self.NO_KEY in self.choose_from
            ):
                raise MutableError(
                    f"InputChoice {self.key!r}: inputs given as a dict need distinct, non-empty "
                    f"choose_from keys, but choose_from is {self.choose_from!r}; pass a list"
                )
            missing = [k for k in self.choose_from if k not in optional_inputs]
            if missing:
                raise MutableError(
                    f"InputChoice {self.key!r}: inputs dict lacks {missing!r} "
                    f"(choose_from is {self.choose_from!r})"
                )
            return [optional_inputs[k] for k in self.choose_from]
        if not isinstance(optional_inputs, (list, tuple)):
            raise MutableError(
                f"InputChoice {self.key!r}: inputs must be a list (or a dict keyed by "
                f"choose_from), got {type(optional_inputs).__name__}"
            )
        if len(optional_inputs) != self.n_candidates:
            raise MutableError(
                f"InputChoice {self.key!r}: expected {self.n_candidates} inputs, "
                f"got {len(optional_inputs)}"
            )
        return list(optional_inputs)

    def extra_repr(self) -> str:
        return (
            f"key={self.key!r}, n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, "
            f"choose_from={self.choose_from}"
        )


def _check_reduction(mutable: Mutable, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise MutableError(
            f"{type(mutable).__name__} {mutable.key!r}: reduction must be one of "
            f"{list(REDUCTIONS)}, got {reduction!r}"
        )
