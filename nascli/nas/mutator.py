"""Mutators: the objects that take the decisions the mutables of a model ask for.

Lifecycle, for a ``Mutator`` subclass (e.g. ``RandomMutator``, a one-shot trainer's mutator):

1. ``Mutator(model)`` parses the model once: it finds every mutable (pre-order, in module
   registration order), checks keys and ``choose_from``, and binds itself to each mutable. A model
   takes one mutator; building a second one raises ``MutableError`` (call ``detach()`` first).
2. ``reset()`` stores ``sample_search()`` as the current decisions. Nothing is sampled during a
   forward pass: every ``LayerChoice`` / ``InputChoice`` reads its key's decision, so mutables
   sharing a key share one decision.
3. ``export()`` turns ``sample_final()`` into the JSON-ready architecture format
   ``apply_fixed_architecture`` reads. It does not touch the model.

A decision is a list, numpy array or tensor with one entry per candidate: bools (or 0/1 ints)
select the candidates that run; floats weight the outputs of the non-zero candidates (a weighted
sum, as in DARTS), keeping the autograd graph of tensor weights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from nascli import space as spaces
from nascli.errors import MutableError
from nascli.nas.mutables import InputChoice, LayerChoice, Mutable, MutableScope

__all__ = [
    "BaseMutator",
    "Mutator",
    "StructuredMutableTreeNode",
    "parse_model",
    "model_search_space",
]

_logger = logging.getLogger(__name__)


class StructuredMutableTreeNode:
    """A node of the mutable tree: scopes are inner nodes, choices leaves; the root holds None."""

    def __init__(self, mutable: Mutable | None):
        self.mutable = mutable
        self.children: list[StructuredMutableTreeNode] = []

    def add_child(self, mutable: Mutable) -> StructuredMutableTreeNode:
        node = StructuredMutableTreeNode(mutable)
        self.children.append(node)
        return node

    def type(self) -> type | None:
        return type(self.mutable) if self.mutable is not None else None

    def __iter__(self) -> Iterator[Mutable]:
        return self.traverse()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def traverse(
        self, order: str = "pre", deduplicate: bool = True, memo: set[str] | None = None
    ) -> Iterator[Mutable]:
        """Yield mutables below (and including) this node; with ``deduplicate`` one per key."""
        if memo is None:
            memo = set()
        if order not in ("pre", "post"):
            raise ValueError(f"order must be 'pre' or 'post', got {order!r}")
        mine = self.mutable is not None and not (deduplicate and self.mutable.key in memo)
        if mine:
            memo.add(self.mutable.key)  # type: ignore[union-attr]
            if order == "pre":
                yield self.mutable  # type: ignore[misc]
        for child in self.children:
            yield from child.traverse(order, deduplicate, memo)
        if mine and order == "post":
            yield self.mutable  # type: ignore[misc]


@dataclass
class ParsedModel:
    """What ``parse_model`` finds: the mutable tree, the module path of each mutable, and the
    model's search space (torch-free specs, keyed by decision key)."""

    root: StructuredMutableTreeNode
    paths: dict[int, str]
    space: spaces.SearchSpace


def parse_model(model: nn.Module) -> ParsedModel:
    """Find and check every mutable of ``model`` without binding anything.

    Raises:
        MutableError: a mutable nested inside a LayerChoice/InputChoice candidate, two mutables
            sharing a key with different types or candidate counts, or a ``choose_from`` entry
            naming no earlier mutable.
    """
    root = StructuredMutableTreeNode(None)
    paths: dict[int, str] = {}
    found: list[tuple[str, Mutable]] = []
    if isinstance(model, Mutable):
        raise MutableError(f"the model itself is a {type(model).__name__}; wrap it in an nn.Module")
    _walk(model, root, "", set(), None, paths, found)

    first: dict[str, tuple[str, Mutable]] = {}
    seen_keys: set[str] = set()
    global_keys: list[str] = []
    for path, mutable in found:
        _check_choose_from(path, mutable, seen_keys)
        seen_keys.add(mutable.key)
        if not mutable._auto_key_stable:
            global_keys.append(mutable.key)
        if mutable.key in first:
            _check_same_decision(first[mutable.key], (path, mutable))
        else:
            first[mutable.key] = (path, mutable)
    if global_keys:
        _logger.warning(
            "mutables %s were built outside any nn.Module __init__, so their automatic keys "
            "depend on what the process built before; give them explicit keys",
            global_keys,
        )
    space: spaces.SearchSpace = {}
    for key in sorted(first):
        mutable = first[key][1]
        if isinstance(mutable, LayerChoice):
            space[key] = spaces.LayerChoiceSpec(tuple(mutable.names))
        elif isinstance(mutable, InputChoice):
            space[key] = spaces.InputChoiceSpec(tuple(mutable.choose_from), mutable.n_chosen)
        elif not isinstance(mutable, MutableScope):
            raise MutableError(
                f"{path}: {type(mutable).__name__} is neither a LayerChoice, an InputChoice nor "
                "a MutableScope; nascli cannot express it in a search space"
            )
    return ParsedModel(root, paths, space)


def _walk(
    module: nn.Module,
    node: StructuredMutableTreeNode,
    prefix: str,
    memo: set[int],
    inside_choice: str | None,
    paths: dict[int, str],
    found: list[tuple[str, Mutable]],
) -> None:
    for name, sub in module._modules.items():
        if sub is None or id(sub) in memo:
            continue
        memo.add(id(sub))
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(sub, Mutable):
            if inside_choice is not None:
                raise MutableError(
                    f"{type(sub).__name__} {sub.key!r} at {path!r} is nested inside the choice "
                    f"at {inside_choice!r}; choices cannot contain choices (move it out, or give "
                    "each candidate's variants as separate candidates)"
                )
            paths[id(sub)] = path
            found.append((path, sub))
            child = node.add_child(sub)
            nested = None if isinstance(sub, MutableScope) else path
            _walk(sub, child, path, memo, nested, paths, found)
        else:
            _walk(sub, node, path, memo, inside_choice, paths, found)


def _check_choose_from(path: str, mutable: Mutable, seen_keys: set[str]) -> None:
    if not isinstance(mutable, InputChoice):
        return
    for label in mutable.choose_from:
        if label != InputChoice.NO_KEY and label not in seen_keys:
            raise MutableError(
                f"InputChoice {mutable.key!r} at {path!r}: choose_from names {label!r}, but no "
                f"mutable or scope with that key comes before it in the model "
                f"(keys before it: {sorted(seen_keys)})"
            )


def _check_same_decision(a: tuple[str, Mutable], b: tuple[str, Mutable]) -> None:
    (path_a, ma), (path_b, mb) = a, b
    where = f"key {ma.key!r} is shared by {path_a!r} and {path_b!r}"
    if type(ma) is not type(mb):
        raise MutableError(
            f"{where}, but one is a {type(ma).__name__} and the other a {type(mb).__name__}"
        )
    if isinstance(ma, LayerChoice) and len(ma) != len(mb):
        raise MutableError(
            f"{where} with different candidate counts ({len(ma)} vs {len(mb)}); "
            "a shared key means one shared decision"
        )
    if isinstance(ma, InputChoice) and (ma.n_candidates, ma.n_chosen) != (
        mb.n_candidates,
        mb.n_chosen,
    ):
        raise MutableError(
            f"{where} with different (n_candidates, n_chosen): "
            f"({ma.n_candidates}, {ma.n_chosen}) vs ({mb.n_candidates}, {mb.n_chosen})"
        )


def model_search_space(model: nn.Module) -> spaces.SearchSpace:
    """The search space of ``model`` (what ``ss_gen`` writes), without binding a mutator."""
    return parse_model(model).space


class BaseMutator(nn.Module):
    """Parses a model's search space and answers its mutables at forward time.

    Subclasses implement ``on_forward_layer_choice(mutable, *args, **kwargs)`` and
    ``on_forward_input_choice(mutable, tensor_list)``, each returning ``(output, mask)``, and
    ``export()``. The model is held outside the module tree, so the mutator's own parameters
    (e.g. architecture weights) are not mixed with the model's.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        parsed = parse_model(model)
        for path, mutable in _walk_found(parsed):
            if mutable.mutator is not None and mutable.mutator is not self:
                raise MutableError(
                    f"{type(mutable).__name__} {mutable.key!r} at {path!r} already has a "
                    f"{type(mutable.mutator).__name__}; a model takes one mutator (build a "
                    "fresh model, or call .detach() on the old mutator first)"
                )
        self.__dict__["model"] = model
        self._structured_mutables = parsed.root
        self._search_space = parsed.space
        for path, mutable in _walk_found(parsed):
            mutable.name = path
            mutable.set_mutator(self)

    @property
    def mutables(self) -> StructuredMutableTreeNode:
        """The mutable tree; iterating it yields each key's first mutable in pre-order."""
        return self._structured_mutables

    @property
    def undedup_mutables(self) -> list[Mutable]:
        """Every mutable in pre-order, including repeats of a shared key."""
        return list(self._structured_mutables.traverse(deduplicate=False))

    def search_space(self) -> spaces.SearchSpace:
        """The model's search space (choices only; scopes carry no decision)."""
        return self._search_space

    def detach(self) -> None:
        """Unbind this mutator from every mutable so that another one can be applied."""
        for mutable in self.undedup_mutables:
            if mutable.mutator is self:
                mutable.set_mutator(None)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a mutator is not callable; call the model instead")

    def enter_mutable_scope(self, mutable_scope: MutableScope) -> None:
        """Called before a scope's forward."""

    def exit_mutable_scope(self, mutable_scope: MutableScope) -> None:
        """Called after a scope's forward, also when it raised."""

    def on_forward_layer_choice(self, mutable: LayerChoice, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def on_forward_input_choice(self, mutable: InputChoice, tensor_list: list[Any]) -> Any:
        raise NotImplementedError

    def export(self) -> dict[str, Any]:
        raise NotImplementedError


def _walk_found(parsed: ParsedModel) -> Iterator[tuple[str, Mutable]]:
    for mutable in parsed.root.traverse(deduplicate=False):
        yield parsed.paths[id(mutable)], mutable


@dataclass
class _Plan:
    """A decision prepared for fast forwards: which candidates run and their weights."""

    decision: Any
    indices: list[int]
    weights: Any  # None for a plain selection, else indexable by candidate
    mask: torch.Tensor


class Mutator(BaseMutator):
    """A mutator that caches one decision per key (``reset()``) and answers forwards from it.

    Subclasses implement ``sample_search()`` and ``sample_final()``, each returning
    ``{key: decision}`` for every choice key (scopes excluded).
    """

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self._cache: dict[str, Any] = {}
        self._plans: dict[str, _Plan] = {}

    def sample_search(self) -> dict[str, Any]:
        """Decisions for the next search step."""
        raise NotImplementedError

    def sample_final(self) -> dict[str, Any]:
        """Decisions for the final architecture (what ``export()`` reports)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Apply ``sample_search()``: forwards after this use its decisions."""
        self._cache = self.sample_search()
        self._plans.clear()

    def apply_architecture(
        self, architecture: dict[str, Any], source: str = "architecture"
    ) -> None:
        """Use a given architecture (export format) for the following forwards, until the next
        ``reset()``. Candidates are not pruned: e.g. to evaluate sub-networks of a supernet.

        Raises:
            ArchitectureError: the architecture does not fit the search space.
        """
        self._cache = dict(spaces.normalize_architecture(self.search_space(), architecture, source))
        self._plans.clear()

    def export(self) -> dict[str, Any]:
        """The final architecture in the JSON format ``apply_fixed_architecture`` reads."""
        decisions = self.sample_final()
        if not isinstance(decisions, dict):
            raise MutableError(f"sample_final() must return a dict, got {type(decisions).__name__}")
        space = self.search_space()
        missing = [k for k in space if k not in decisions]
        extra = [k for k in decisions if k not in space]
        if missing or extra:
            raise MutableError(
                f"sample_final() must return exactly the search space's keys; "
                f"missing {missing}, unexpected {extra}"
            )
        result = {}
        for key, spec in space.items():
            values = _to_list(decisions[key])
            if len(values) != spec.n_candidates:
                raise MutableError(
                    f"sample_final() gave key {key!r} {len(values)} entries; the choice has "
                    f"{spec.n_candidates} candidates"
                )
            result[key] = spaces.human_readable(spec, values)
        return result

    def status(self) -> dict[str, list[float]]:
        """The current decisions as float lists (for logging)."""
        return {k: [float(v) for v in _to_list(d)] for k, d in self._cache.items()}

    # ------------------------------------------------------------------ forward path

    def _plan(self, mutable: LayerChoice | InputChoice, n: int) -> _Plan:
        key = mutable.key
        try:
            decision = self._cache[key]
        except KeyError:
            raise MutableError(
                f"{type(mutable).__name__} {key!r}: no decision for this key; call "
                f"mutator.reset() before the forward (decided keys: {sorted(self._cache)})"
            ) from None
        plan = self._plans.get(key)
        if plan is not None and plan.decision is decision:
            return plan
        plan = _make_plan(key, decision, n)
        self._plans[key] = plan
        return plan

    def on_forward_layer_choice(self, mutable: LayerChoice, *args: Any, **kwargs: Any) -> Any:
        plan = self._plan(mutable, len(mutable))
        outputs = [mutable.candidate(i)(*args, **kwargs) for i in plan.indices]
        if plan.weights is not None:
            outputs = [out * plan.weights[i] for i, out in zip(plan.indices, outputs, strict=True)]
        return reduce_outputs(mutable.reduction, outputs), plan.mask

    def on_forward_input_choice(self, mutable: InputChoice, tensor_list: list[Any]) -> Any:
        plan = self._plan(mutable, mutable.n_candidates)
        outputs = [tensor_list[i] for i in plan.indices]
        if plan.weights is not None:
            outputs = [out * plan.weights[i] for i, out in zip(plan.indices, outputs, strict=True)]
        return reduce_outputs(mutable.reduction, outputs), plan.mask


def _to_list(decision: Any) -> list[Any]:
    if isinstance(decision, torch.Tensor):
        return decision.detach().cpu().tolist()
    if hasattr(decision, "tolist"):
        return decision.tolist()
    if isinstance(decision, (list, tuple)):
        return list(decision)
    raise MutableError(f"a decision must be a list, array or tensor, got {decision!r}")


def _make_plan(key: str, decision: Any, n: int) -> _Plan:
    if isinstance(decision, torch.Tensor):
        flat = decision.reshape(-1)
        if flat.numel() != n:
            raise MutableError(f"decision for {key!r} has {flat.numel()} entries, expected {n}")
        if flat.dtype == torch.bool:
            indices = flat.nonzero().view(-1).tolist()
            return _Plan(decision, indices, None, flat)
        values = flat.detach().cpu().tolist()
        if all(v in (0, 1) for v in values) and not flat.is_floating_point():
            return _Plan(decision, [i for i, v in enumerate(values) if v], None, flat.bool())
        indices = [i for i, v in enumerate(values) if v != 0]
        return _Plan(decision, indices, flat, flat)
    values = _to_list(decision)
    if len(values) != n:
        raise MutableError(f"decision for {key!r} has {len(values)} entries, expected {n}")
    if all(isinstance(v, (bool, int)) and v in (0, 1) for v in values):
        mask = torch.tensor([bool(v) for v in values])
        return _Plan(decision, [i for i, v in enumerate(values) if v], None, mask)
    weights = [float(v) for v in values]
    return _Plan(
        decision, [i for i, w in enumerate(weights) if w != 0], weights, torch.tensor(weights)
    )


def reduce_outputs(reduction: str, outputs: list[Any]) -> Any:
    """Combine the outputs of the active candidates: None when there are none, the output itself
    when there is one, else ``sum`` / ``mean`` / ``concat`` (dim 1) / ``none`` (the list)."""
    if reduction == "none":
        return outputs
    if not outputs:
        return None
    if len(outputs) == 1:
        return outputs[0]
    if reduction == "concat":
        return torch.cat(outputs, dim=1)
    total = outputs[0]
    for out in outputs[1:]:
        total = total + out
    if reduction == "mean":
        return total / len(outputs)
    return total
