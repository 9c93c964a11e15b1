"""What single-path trainers share: path-sampling modules grouped by key, uniform sampling,
and scoring an architecture on the trained supernet (with BatchNorm recalibration).

An architecture here is the one internal decision form, ``spaces.Chosen`` (an index per layer
choice, sorted indices per input choice): sampled, scored, kept in ``best`` and checkpointed in
it. ``set_architecture`` is the one place it becomes the path modules' state;
``spaces.export_architecture`` turns it into the export format.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from nascli.nas.oneshot.agreement import average_bn_statistics, shard_for_evaluation
from nascli.nas.oneshot.base import BaseOneShotTrainer
from nascli.nas.oneshot.driven import mutator_slots, sample_from_mutator
from nascli.nas.oneshot.modules import PathSamplingInputChoice, PathSamplingLayerChoice
from nascli.nas.oneshot.sole_source import (
    check_sole_source_paths,
    nonempty_subset,
    trainer_sole_sources,
)
from nascli.nas.oneshot.utils import (
    replace_input_choice,
    replace_layer_choice,
    to_device,
    zero_candidates,
)

__all__ = ["SinglePathTrainer", "batch_statistics"]


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Inside, ``model`` is in eval mode except its BatchNorms, which normalise with each
    batch's own statistics; on leaving, every BatchNorm's running statistics are put back as
    they were and the modules' train / eval flags restored. For judging sampled paths of a
    supernet whose running statistics mix every path (ENAS's rewards)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [(m, m.training) for m in model.modules()]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
    model.eval()
    for m in norms:
        m.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved, strict=True):
                for k, v in buffers.items():
                    getattr(m, k).copy_(v)
        for m, training in modes:
            m.training = training


class SinglePathTrainer(BaseOneShotTrainer):
    """Base of trainers that run one path of the supernet per step.

    Args (besides the base trainer's):
        score: the metric (from ``metrics``) that ranks architectures on the supernet; when
            ``metrics`` does not return it, the negative loss is used.
        bn_batches: batches of the weight split used to recalibrate BatchNorm statistics before
            an architecture is scored (0: none).
        train_zero_ops: whether the paths trained may run a zero operation: a layer choice's
            ``none`` / ``zero`` (``utils.zero_candidates``), or an empty pick of an
            ``InputChoice(n_chosen=None)`` that is the only source of its node (found by
            running the model, ``sole_source.sole_source_keys``; an empty pick that drops an
            optional shortcut is a real choice and stays in training paths). Default False:
            training paths draw uniformly among the other candidates of a layer choice and take
            the inputs ``sole_source_paths`` says of a node's only source, while the search
            still considers, scores and may export every candidate and the empty pick. A zero
            operation has no weights to train, and a path that runs it on an
            edge trains nothing downstream of that edge: on the cell benchmark, uniform paths
            leave a quarter of the edges empty, and the supernet then ranks shallow cells first
            (measured: Spearman rho of supernet score vs the table 0.71 with zero operations in
            training paths, 0.80 without, 50 epochs; docs/oneshot_quality.md).
        sole_source_paths: what a training path takes of an input choice that is its node's
            only source: ``"all"`` (default) every input, since an input left out is that
            edge's zero operation (on ``CellInputNet`` the supernet then ranks architectures
            with rho 0.964 against the table), or ``"nonempty"`` a uniformly drawn non-empty
            subset (rho 0.910: nodes summing a varying number of edges; shallow cells first).
    """

    single_path_weight_steps = True

    def __init__(self, *args: Any, score: str = "accuracy", bn_batches: int = 4,
                 train_zero_ops: bool = False, sole_source_paths: str = "all",
                 **kwargs: Any):  # fmt: skip
        self.sole_source_paths = check_sole_source_paths(sole_source_paths)
        self.score_name = score
        self.bn_batches = bn_batches
        self.train_zero_ops = train_zero_ops
        self.best: list[tuple[float, spaces.Chosen]] = []
        super().__init__(*args, **kwargs)

    def _setup(self) -> None:
        # Scoring reads data in a fixed order, so a search draws nothing from the data RNG; each
        # rank scores its shard and evaluate() adds the sums over ranks.
        self._bn_loader = self._loader(self.dataset_weights, shuffle=False)
        self._score_loader = self._loader(
            shard_for_evaluation(self.dataset_arch, self.dist), shuffle=False
        )
        self.keys = sorted(self.search_space)
        self._needs_input: set[str] = set()
        if self.mutator is not None:  # the model's choices ask the mutator; paths are set there
            self.nas_modules = mutator_slots(self.mutator, self.search_space)  # type: ignore
            return
        self.nas_modules: list[tuple[str, nn.Module]] = []
        replace_layer_choice(self.model, PathSamplingLayerChoice, self.nas_modules)
        replace_input_choice(self.model, PathSamplingInputChoice, self.nas_modules)
        zeros = {} if self.train_zero_ops else zero_candidates(self.nas_modules)
        #: per key with zero operations, the candidates a training path may run
        self._trainable = {key: [i for i in range(self.search_space[key].n_candidates)
                                 if i not in found] or None
                           for key, found in zeros.items()}  # fmt: skip
        #: the ``n_chosen: null`` keys that are their node's only source (every rank uses rank
        #: 0's finding, whatever data each rank holds)
        if not self.train_zero_ops:
            self._needs_input = trainer_sole_sources(self, zeros, self.architecture)

    # ------------------------------------------------------------------ architectures

    def sample_uniform(self) -> spaces.Chosen:
        """One decision per key, uniformly (the trainer's seeded ``rng``)."""
        arch: spaces.Chosen = {}
        for key in self.keys:
            arch[key] = self.sample_choice(key)
        return arch

    def sample_choice(self, key: str) -> spaces.Choice:
        return spaces.random_choice(self.search_space[key], self.rng)

    def set_architecture(self, arch: Mapping[str, spaces.Choice]) -> None:
        """Make every path-sampling module run ``arch`` (``Chosen``)."""
        for key, module in self.nas_modules:
            value = arch[key]
            if isinstance(module, PathSamplingLayerChoice):
                module.sampled = value
            else:
                module.sampled = [value] if isinstance(value, int) else list(value)

    @contextmanager
    def architecture(self, arch: Mapping[str, spaces.Choice]) -> Iterator[None]:
        """Run ``arch`` inside; the modules' paths are put back as they were after."""
        previous = [(module, module.sampled) for _, module in self.nas_modules]
        self.set_architecture(arch)
        try:
            yield
        finally:
            for module, sampled in previous:
                module.sampled = sampled

    # ------------------------------------------------------------------ training

    def before_weight_step(self, epoch: int, x: Any, y: Any) -> None:
        # Under torch.distributed every rank trains rank 0's path.
        self.set_architecture(self.dist.broadcast(self.sample_for_step()))

    def sample_for_step(self) -> spaces.Chosen:
        """The path trained at the next step: uniform over the non-zero candidates of a layer
        choice, ``sole_source_paths`` for an input choice that is its node's only source (unless
        ``train_zero_ops``); the mutator's ``reset()`` when the trainer was given one."""
        if self.mutator is not None:
            return sample_from_mutator(self.mutator, self.search_space)
        arch: spaces.Chosen = {}
        for key in self.keys:
            allowed = self._trainable.get(key)
            if allowed:
                arch[key] = self.rng.choice(allowed)
            elif key in self._needs_input:
                arch[key] = self._source_path(key)
            else:
                arch[key] = self.sample_choice(key)
        return arch

    def trainable_path(self, arch: spaces.Chosen) -> spaces.Chosen:
        """``arch`` with every zero operation it runs replaced by a uniformly drawn non-zero
        candidate of the same choice, and the pick of a node's only source by every input
        (``sole_source_paths="all"``) or, when it is empty, by a uniformly drawn non-empty one
        (``"nonempty"``), unless ``train_zero_ops``: the path a weight step trains when a policy
        (ENAS's controller) proposed ``arch``."""
        out = dict(arch)
        for key in self.keys:
            allowed = self._trainable.get(key)
            if allowed and out[key] not in allowed:
                out[key] = self.rng.choice(allowed)
            elif key in self._needs_input and (not out[key] or self.sole_source_paths == "all"):
                out[key] = self._source_path(key)
        return out

    def _source_path(self, key: str) -> tuple[int, ...]:
        n = self.search_space[key].n_candidates
        if self.sole_source_paths == "all":
            return tuple(range(n))
        return nonempty_subset(n, self.rng)

    # ------------------------------------------------------------------ scoring

    @torch.no_grad()
    def recalibrate_bn(self) -> None:
        """Recompute BatchNorm running statistics for the current path on ``bn_batches``
        batches of the weight split (a cumulative average, then the momentum is restored);
        under torch.distributed averaged over the ranks, so every rank scores alike."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms or self.bn_batches <= 0:
            return
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        was_training = self.model.training
        self.model.train()
        for i, batch in enumerate(self._bn_loader):
            if i >= self.bn_batches:
                break
            x, _ = to_device(batch, self.device)
            self.model(x)
        self.model.train(was_training)
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
        average_bn_statistics(self.dist, self.model)

    def score(self, arch: Mapping[str, spaces.Choice]) -> float:
        """The architecture's score on the held-out architecture split, supernet weights,
        BatchNorm recalibrated. Larger is better. Leaves the supernet (BatchNorm statistics
        included) and every random state as they were, so a search changes no training run."""
        buffers = {k: v.clone() for k, v in self.model.state_dict().items()
                   if "running_" in k or "num_batches_tracked" in k}  # fmt: skip
        with self.architecture(arch):
            self.recalibrate_bn()
            stats = self.evaluate(self._score_loader)
        self.model.load_state_dict(buffers, strict=False)
        return stats.get(self.score_name, -stats["loss"])

    def export_top_models(self, top_k: int = 1) -> list[dict[str, Any]]:
        """The ``top_k`` best architectures found (export format), best first."""
        ranked = sorted(self.best, key=lambda item: -item[0])[:top_k]
        return [spaces.export_architecture(self.search_space, arch) for _, arch in ranked]

    def _export(self) -> dict[str, Any]:
        if not self.best:
            self.run_search()
        return self.export_top_models(1)[0]

    @contextmanager
    def final_architecture(self) -> Iterator[None]:
        arch = max(self.best, key=lambda item: item[0])[1] if self.best else None
        if arch is None:
            yield
            return
        with self.architecture(arch):
            yield

    def search(self) -> list[tuple[float, spaces.Chosen]]:
        """Find good architectures on the trained supernet; fills ``self.best``."""
        raise NotImplementedError

    def fit(self) -> None:
        """Train the supernet, then search it."""
        super().fit()
        self.run_search()

    def run_search(self) -> list[tuple[float, spaces.Chosen]]:
        """``search()`` with its own random stream (seeded from ``seed``), so searching leaves
        the training's random state untouched."""
        training_rng, self.rng = self.rng, random.Random(self.seed + 1)
        try:
            return self.search()
        finally:
            self.rng = training_rng

    def arch_probabilities(self) -> dict[str, list[float]]:
        return {}

    def snapshot_export(self) -> dict[str, Any] | None:
        """The best architecture a search has found so far; None before any search (exporting
        would run one, which must not happen in the middle of training)."""
        return self.export_top_models(1)[0] if self.best else None

    def _extra_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.best = [(float(s), spaces.as_chosen(self.search_space, a)) for s, a in state["best"]]
