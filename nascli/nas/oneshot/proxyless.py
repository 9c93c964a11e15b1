"""``ProxylessTrainer``: ProxylessNAS (Cai et al. 2019) with binary gates and two-path sampling.

Each key has architecture parameters alpha. A weight step samples one path per key from
softmax(alpha) and trains it. An architecture step (after ``warmup_epochs``) samples two
candidates per key, renormalises their probabilities p, runs both and multiplies their outputs by
a binary gate g (one-hot of a draw from p) made differentiable by the straight-through estimator
(g + p - p.detach()): dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i), ProxylessNAS's
estimator, with only two candidates run. The architecture loss adds ``cost_weight`` x the
expected cost sum_key sum_i softmax(alpha)_i cost_i, the costs from ``cost_table`` ({key: [cost
per candidate]}) or, with ``measure_cost=True``, each candidate's measured forward time (ms) on
the current device. Export: argmax alpha per key (over the non-zero candidates of a layer
choice). Input choices with ``n_chosen: 1`` are layer choices over their inputs; with
``n_chosen: null`` every input has a gate of its own, taken with probability sigmoid(alpha_i):
weight steps take each input by a draw, architecture steps draw the gates as binary and pass
the straight-through gradient (g + p - p.detach()), so dL/dalpha_i = <dL/d(out), input_i>
p_i (1 - p_i) whether input i was taken or not; the export takes the inputs with p_i >= 1/2.
The gates start open (p_i = ``gate_init``, 0.8): the supernet is first trained with most
inputs taken, and alpha learns which to close. A weight step never leaves a choice that is its
node's only source (``sole_source.sole_source_keys``) with no input: by default
(``sole_source_paths="all"``) it takes every input of such a choice, as single-path trainers
do (an input left out is that edge's zero operation); with ``"nonempty"`` an empty draw takes
one input, drawn in proportion to p_i. Architecture steps and the export may still be empty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.mutables import InputChoice, LayerChoice
from nascli.nas.mutator import reduce_outputs
from nascli.nas.oneshot import defaults
from nascli.nas.oneshot.base import BaseOneShotTrainer
from nascli.nas.oneshot.modules import _InputCandidates, _LayerCandidates, with_mask
from nascli.nas.oneshot.sole_source import check_sole_source_paths, trainer_sole_sources
from nascli.nas.oneshot.utils import (
    best_non_zero,
    gradients,
    replace_input_choice,
    replace_layer_choice,
    zero_candidates,
)

__all__ = ["ProxylessTrainer", "ProxylessNasTrainer"]


class _Gates:
    """How the Proxyless modules run now: ``mode`` is ``"single"`` (one sampled path per key),
    ``"two"`` (two paths with binary gates), ``"final"`` (argmax) or ``"measure"``."""

    def __init__(self) -> None:
        self.mode = "single"
        self.single: dict[str, int | list[int]] = {}
        self.pairs: dict[str, tuple[list[int], torch.Tensor]] = {}
        self.costs: dict[str, list[float]] = {}


class ProxylessLayerChoice(_LayerCandidates):
    def __init__(self, choice: LayerChoice, trainer: ProxylessTrainer):
        super().__init__(choice)
        self._trainer = [trainer]  # a list: not registered as a submodule

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        gates = self._trainer[0].gates
        if gates.mode == "measure":
            gates.costs[self.key] = [_time_ms(self.candidate(i), args, kwargs)
                                     for i in range(len(self))]  # fmt: skip
            return with_mask(self, self.candidate(0)(*args, **kwargs), 0)
        if gates.mode == "two":
            indices, gate = gates.pairs[self.key]
            outs = [self.candidate(i)(*args, **kwargs) for i in indices]
            return with_mask(self, sum(g * o for g, o in zip(gate, outs, strict=True)), indices)
        index = gates.single[self.key]
        return with_mask(self, self.candidate(index)(*args, **kwargs), index)


class ProxylessInputChoice(_InputCandidates):
    def __init__(self, choice: InputChoice, trainer: ProxylessTrainer):
        if choice.n_chosen not in (1, None):
            raise UsageError(
                f"ProxylessTrainer: InputChoice {choice.key!r} has n_chosen={choice.n_chosen}; "
                "supported: n_chosen=1 (one input) and n_chosen=null (any subset)"
            )
        super().__init__(choice)
        self._trainer = [trainer]

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        inputs = self.inputs(optional_inputs)
        gates = self._trainer[0].gates
        if gates.mode == "measure":
            gates.costs[self.key] = [0.0] * len(inputs)
            return with_mask(self, inputs[0], 0)
        if gates.mode == "two":
            indices, gate = gates.pairs[self.key]
            if self.n_chosen is None:
                return self._gated_subset(inputs, indices, gate)
            out = sum(g * inputs[i] for g, i in zip(gate, indices, strict=True))
            return with_mask(self, out, indices)
        picked = gates.single[self.key]
        if isinstance(picked, int):
            return with_mask(self, inputs[picked], picked)
        return with_mask(self, reduce_outputs(self.reduction, [inputs[i] for i in picked]),
                         list(picked))  # fmt: skip

    def _gated_subset(self, inputs: list[Any], taken: list[int], gate: torch.Tensor) -> Any:
        """An architecture step of an ``n_chosen: null`` choice: with a sum / mean reduction
        every input times its gate (0 in value when not taken), so each gate gets its
        straight-through gradient; other reductions combine the taken inputs only."""
        if self.reduction in ("sum", "mean"):
            out = sum(g * x for g, x in zip(gate, inputs, strict=True))
            if self.reduction == "mean":
                out = out / max(1, len(taken))
            return with_mask(self, out, taken)
        return with_mask(self, reduce_outputs(self.reduction, [gate[i] * inputs[i] for i in taken]),
                         taken)  # fmt: skip


def _time_ms(module: nn.Module, args: Any, kwargs: Any, repeats: int = 5) -> float:
    with torch.no_grad():
        module(*args, **kwargs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            module(*args, **kwargs)
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


class ProxylessTrainer(defaults.ArchitectureSchedule, BaseOneShotTrainer):
    """ProxylessNAS. Takes the base trainer's arguments and:

    Args:
        arc_learning_rate: Adam learning rate of alpha (default: ProxylessNAS's 1e-3 scaled to
            the run's length as DARTS's is, ``nascli.nas.oneshot.defaults``).
        warmup_epochs: epochs of weight-only training first (default: a quarter of the run).
        cost_table: ``{key: [cost of each candidate]}`` (e.g. latency in ms, FLOPs).
        measure_cost: measure each candidate's forward time on the current device instead.
        cost_weight: weight of the expected cost in the architecture loss (0: accuracy only).
        gate_init: the probability with which each input of an ``n_chosen: null`` input choice
            is taken at the start (0.8: open, so that the inputs' weights are trained before
            the gates judge them; 0.5 is neutral, and the export takes inputs with p >= 1/2).
        sole_source_paths: what a weight step takes of an ``n_chosen: null`` choice that is its
            node's only source: ``"all"`` its inputs (default) or ``"nonempty"`` the gates'
            draw, with one input when it took none.
    """

    ARC_LR_REFERENCE = (1e-3, defaults.DARTS_REFERENCE[1])

    single_path_weight_steps = True

    def __init__(self, *args: Any, arc_learning_rate: float | None = None,
                 warmup_epochs: int | None = None,
                 cost_table: Mapping[str, Sequence[float]] | None = None,
                 measure_cost: bool = False, cost_weight: float = 0.0,
                 gate_init: float = 0.8, sole_source_paths: str = "all",
                 **kwargs: Any):  # fmt: skip
        self.sole_source_paths = check_sole_source_paths(sole_source_paths)
        if not 0.0 < gate_init < 1.0:
            raise UsageError(f"gate_init must be between 0 and 1 (exclusive), got {gate_init!r}")
        self.gate_init = gate_init
        self._arc_learning_rate = arc_learning_rate
        self._warmup_epochs = warmup_epochs
        self.cost_table = {k: list(map(float, v)) for k, v in (cost_table or {}).items()}
        self.measure_cost = measure_cost
        self.cost_weight = cost_weight
        self.gates = _Gates()
        super().__init__(*args, **kwargs)

    def _setup(self) -> None:
        if self.mutator is not None:
            raise UsageError(
                "ProxylessTrainer builds its own architecture parameters and takes no mutator "
                "(NNI v1.9's ProxylessNasTrainer took none either)"
            )
        open_logit = math.log(self.gate_init / (1.0 - self.gate_init))
        self.alpha = {key: nn.Parameter(torch.full((spec.n_candidates,),
                                                   open_logit if self._is_subset(key) else 0.0,
                                                   device=self.device, dtype=self.param_dtype))
                      for key, spec in sorted(self.search_space.items())}  # fmt: skip
        self.nas_modules: list[tuple[str, nn.Module]] = []
        replace_layer_choice(self.model, lambda c: ProxylessLayerChoice(c, self), self.nas_modules)
        replace_input_choice(self.model, lambda c: ProxylessInputChoice(c, self), self.nas_modules)
        #: the ``n_chosen: null`` keys whose weight steps always take an input (rank 0's finding)
        self._needs_input = trainer_sole_sources(
            self, zero_candidates(self.nas_modules), self._running)
        self.ctrl_optim = torch.optim.Adam(list(self.alpha.values()), self.arc_learning_rate,
                                           betas=(0.0, 0.999), eps=1e-8)  # fmt: skip
        for key, costs in self.cost_table.items():
            if key not in self.search_space or len(costs) != self.search_space[key].n_candidates:
                raise UsageError(
                    f"cost_table[{key!r}] must list one cost per candidate of a key of the "
                    f"search space (keys: {sorted(self.search_space)})"
                )

    def measure_costs(self, x: torch.Tensor) -> dict[str, list[float]]:
        """Each candidate's forward time (ms, median of 5) on the current device for input x."""
        self.gates.mode = "measure"
        try:
            with torch.no_grad():
                self.model.eval()
                self.model(x)
                self.model.train()
        finally:
            self.gates.mode = "single"
        return dict(self.gates.costs)

    def expected_cost(self) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        for key, costs in self.cost_table.items():
            probs = F.softmax(self.alpha[key], -1)
            total = total + (probs * torch.tensor(costs, device=self.device)).sum()
        return total

    # ------------------------------------------------------------------ sampling

    def _is_subset(self, key: str) -> bool:
        spec = self.search_space[key]
        return isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is None

    def _draw_subset(self, alpha: torch.Tensor) -> list[int]:
        """Inputs of an ``n_chosen: null`` choice taken by independent draws, P = sigmoid."""
        u = torch.rand(alpha.shape, generator=self.data_generator)
        return [i for i, (r, p) in enumerate(zip(u.tolist(), torch.sigmoid(alpha.detach()).tolist(),
                                                   strict=True)) if r < p]  # fmt: skip

    @contextmanager
    def _running(self, arch: Mapping[str, Any]) -> Iterator[None]:
        """Inside, the model runs ``arch`` (``Chosen``) as a single path."""
        previous, mode = dict(self.gates.single), self.gates.mode
        self.gates.mode = "single"
        for key, value in arch.items():
            if isinstance(value, int) or self._is_subset(key):
                self.gates.single[key] = value if isinstance(value, int) else list(value)
            else:
                self.gates.single[key] = int(value[0])
        try:
            yield
        finally:
            self.gates.single, self.gates.mode = previous, mode

    def _sample_single(self) -> None:
        self.gates.mode = "single"
        for key, alpha in self.alpha.items():
            if self._is_subset(key):
                taken = self._draw_subset(alpha)
                if key in self._needs_input and self.sole_source_paths == "all":
                    taken = list(range(alpha.numel()))
                elif not taken and key in self._needs_input:  # a node's only source: one input
                    p = torch.sigmoid(alpha.detach()).cpu().float()
                    taken = [int(torch.multinomial(p, 1, generator=self.data_generator))]
                self.gates.single[key] = taken  # type: ignore[assignment]
                continue
            probs = F.softmax(alpha.detach(), -1).cpu()
            self.gates.single[key] = int(torch.multinomial(probs, 1, generator=self.data_generator))

    def _sample_two(self) -> None:
        self.gates.mode = "two"
        for key, alpha in self.alpha.items():
            if self._is_subset(key):
                taken = self._draw_subset(alpha)
                p = torch.sigmoid(alpha)
                hard = torch.zeros_like(p)
                hard[taken] = 1.0
                self.gates.pairs[key] = (taken, hard + p - p.detach())
                continue
            n = alpha.numel()
            if n == 1:
                indices = [0]
            else:
                full = F.softmax(alpha.detach(), -1).cpu()
                indices = torch.multinomial(full, 2, generator=self.data_generator).tolist()
            p = F.softmax(alpha[indices], -1)
            draw = int(torch.multinomial(p.detach().cpu(), 1, generator=self.data_generator))
            hard = F.one_hot(torch.tensor(draw), len(indices)).to(p)
            self.gates.pairs[key] = (indices, hard + p - p.detach())

    # ------------------------------------------------------------------ steps

    def train_one_epoch(self, epoch: int) -> dict[str, float] | None:
        if self.measure_cost and not self.cost_table:
            x, _ = next(iter(self._loader(self.dataset_weights, shuffle=False)))
            # Every rank must weigh the same costs: rank 0's measurement is used everywhere.
            self.cost_table = self.dist.broadcast(self.measure_costs(x.to(self.device)))
        return super().train_one_epoch(epoch)

    def before_weight_step(self, epoch: int, x: Any, y: Any) -> None:
        if epoch >= self.warmup_epochs:
            self._arch_step(*self.next_arch_batch())
        self._sample_single()

    def _arch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._sample_two()
        self.ctrl_optim.zero_grad(set_to_none=True)
        loss = self.loss(self.model(x), y)
        if self.cost_weight and self.cost_table:
            loss = loss + self.cost_weight * self.expected_cost()
        # Gradients for alpha only: the weights' gradients (and DDP's hooks on them) stay out.
        alphas = list(self.alpha.values())
        for a, g in zip(alphas, gradients(loss, alphas), strict=True):
            a.grad = g
        self.dist.average_gradients(self.alpha.values())
        self.ctrl_optim.step()
        self.gates.mode = "single"

    # ------------------------------------------------------------------ results

    def chosen_indices(self) -> spaces.Chosen:
        """The architecture the export names (``Chosen``): argmax alpha per key, over the
        non-zero candidates of a layer choice (``utils.zero_candidates``)."""
        zeros = zero_candidates(self.nas_modules)
        picks: dict[str, Any] = {}
        for key, alpha in self.alpha.items():
            if self._is_subset(key):
                picks[key] = [i for i, p in enumerate(torch.sigmoid(alpha.detach()).tolist())
                              if p >= 0.5]  # fmt: skip
                continue
            index = best_non_zero(alpha, zeros.get(key))
            spec = self.search_space[key]
            picks[key] = index if isinstance(spec, spaces.LayerChoiceSpec) else [index]
        return spaces.as_chosen(self.search_space, picks)

    @contextmanager
    def final_architecture(self) -> Iterator[None]:
        previous = dict(self.gates.single)
        self.gates.mode = "single"
        # the gates' single path: an index per key (n_chosen 1), a list of inputs (null)
        chosen = self.chosen_indices()
        self.gates.single.update({k: c if isinstance(c, int) or self._is_subset(k) else c[0]
                                  for k, c in chosen.items()})  # fmt: skip
        try:
            yield
        finally:
            self.gates.single.update(previous)

    def _export(self) -> dict[str, Any]:
        return spaces.export_architecture(self.search_space, self.chosen_indices())

    def arch_probabilities(self) -> dict[str, list[float]]:
        return {k: F.softmax(a.detach(), -1).tolist() for k, a in self.alpha.items()}

    def _extra_state(self) -> dict[str, Any]:
        return {
            "alpha": {k: a.detach().clone() for k, a in self.alpha.items()},
            "ctrl_optim": self.ctrl_optim.state_dict(),
            "cost_table": self.cost_table,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for key, value in state["alpha"].items():
                self.alpha[key].copy_(value)
        self.ctrl_optim.load_state_dict(state["ctrl_optim"])
        self.cost_table = state["cost_table"]


# NNI v1.9's name and signature at NNI's module path (nni.nas.pytorch.proxylessnas).
from nascli.nas.oneshot.proxyless_v19 import ProxylessNasTrainer  # noqa: E402
