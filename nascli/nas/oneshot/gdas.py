"""``GumbelDartsTrainer``: GDAS, differentiable search by Gumbel sampling (Dong & Yang 2019;
NNI v3's GumbelDARTS).

Each key has architecture parameters alpha, as in DARTS. A draw is h = one_hot(argmax(
log_softmax(alpha) + g)), g Gumbel noise, with the straight-through gradient of the relaxed
weights s = softmax((log_softmax(alpha) + g) / tau): forward value h, backward ds/dalpha. Weight
steps run only the drawn path (one candidate per key, no gradient to alpha). Architecture steps
compute sum_j h_j op_j(x): in value the drawn path alone, while dL/dh_j = <dL/d(out), op_j(x)>
is the true straight-through gradient for every candidate (GDAS's code runs only the drawn op and
adds the other h_j as constants, whose gradient is the sum of dL/d(out) whatever op_j computes;
measured on tests/unit/test_gdas.py's gate space it then preferred a zero op). The temperature
tau anneals from ``tau_max`` to ``tau_min`` (linear over the epochs after the warm-up, GDAS's
schedule). Each step: an architecture step on a batch of the architecture split (Adam on alpha;
none during ``warmup_epochs``, when paths are drawn uniformly so every candidate's weights
train), then a weight step with a fresh draw.
Input choices draw ``n_chosen`` inputs (Gumbel top-k; ``n_chosen: null`` keeps the inputs whose
relaxed weight is at least uniform). Export: argmax alpha (the ``n_chosen`` largest for inputs).

Draws come from a generator seeded from ``seed``: every rank draws the same paths (alpha is kept
identical by averaging its gradients), and a resumed run draws what the uninterrupted one did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.mutables import InputChoice, LayerChoice
from nascli.nas.mutator import reduce_outputs
from nascli.nas.oneshot.darts import DartsTrainer
from nascli.nas.oneshot.modules import _InputCandidates, _LayerCandidates
from nascli.nas.oneshot.utils import gradients

__all__ = ["GumbelDartsTrainer", "GumbelLayerChoice", "GumbelInputChoice"]

# (indices drawn, weights: hard values, with the straight-through gradient in architecture steps)
Draw = tuple[list[int], torch.Tensor]


def _combine(reduction: str, weights: torch.Tensor, drawn: list[int],
             output: Callable[[int], Any]) -> Any:  # fmt: skip
    """The drawn outputs reduced as the choice says. With gradients (architecture steps) and a
    sum / mean reduction, every candidate is computed and added times its weight (0 in value
    for those not drawn), so each gets its straight-through gradient."""
    if not weights.requires_grad or reduction not in ("sum", "mean"):
        return reduce_outputs(reduction, [output(i) * weights[i] for i in drawn])
    total = sum(output(i) * weights[i] for i in range(len(weights)))
    return total / len(drawn) if reduction == "mean" else total


class GumbelLayerChoice(_LayerCandidates):
    """Runs the drawn candidate scaled by its hard weight (1 in value); in architecture steps
    every candidate, scaled by its weight (0 in value for the others)."""

    def __init__(self, choice: LayerChoice, draw: Callable[[], Draw]):
        super().__init__(choice)
        self._draw = draw

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        indices, weights = self._draw()
        return _combine(self.reduction, weights, indices,
                        lambda i: self.candidate(i)(*args, **kwargs))  # fmt: skip


class GumbelInputChoice(_InputCandidates):
    """Reduces the drawn inputs, each scaled by its hard weight."""

    def __init__(self, choice: InputChoice, draw: Callable[[], Draw]):
        super().__init__(choice)
        self._draw = draw

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        inputs = self.inputs(optional_inputs)
        indices, weights = self._draw()
        return _combine(self.reduction, weights, indices, lambda i: inputs[i])


class GumbelDartsTrainer(DartsTrainer):
    """GDAS. Takes the base trainer's arguments (see ``BaseOneShotTrainer``) and:

    Args:
        arc_learning_rate: Adam learning rate of alpha (default: as DARTS, 3e-4 scaled to the
            run's length).
        tau_max / tau_min: the Gumbel-softmax temperature at the first / last epoch (10, 0.1).
        warmup_epochs: epochs of weight training on uniformly drawn paths before alpha moves
            (default: a quarter of ``num_epochs``).
    """

    single_path_weight_steps = True

    def __init__(self, *args: Any, arc_learning_rate: float | None = None, tau_max: float = 10.0,
                 tau_min: float = 0.1, warmup_epochs: int | None = None,
                 **kwargs: Any):  # fmt: skip
        if not 0 < tau_min <= tau_max:
            raise UsageError(
                f"need 0 < tau_min <= tau_max, got tau_min={tau_min!r}, tau_max={tau_max!r}"
            )
        if warmup_epochs is not None and (not isinstance(warmup_epochs, int) or warmup_epochs < 0):
            raise UsageError(f"warmup_epochs must be a non-negative integer, got {warmup_epochs!r}")
        if kwargs.pop("unrolled", False):
            raise UsageError("GumbelDartsTrainer has no second-order (unrolled) gradient")
        self.tau_max = tau_max
        self.tau_min = tau_min
        self._draws: dict[str, Draw] = {}
        super().__init__(*args, arc_learning_rate=arc_learning_rate, warmup_epochs=warmup_epochs,
                         **kwargs)  # fmt: skip

    def _initial_alpha(self, n: int) -> torch.Tensor:
        return torch.zeros(n, device=self.device, dtype=self.param_dtype)

    def _choice_modules(self) -> tuple[Any, Any]:
        return (lambda c: GumbelLayerChoice(c, self._drawn(c.key)),
                lambda c: GumbelInputChoice(c, self._drawn(c.key)))  # fmt: skip

    def _setup(self) -> None:
        if self.mutator is not None:  # a v1.9 mutator decides by softmax, not by Gumbel draws
            raise UsageError("GumbelDartsTrainer draws its own paths; it takes no mutator= "
                             "(use DartsTrainer with a DartsMutator)")
        super()._setup()
        self.gumbel_generator = torch.Generator().manual_seed(self.seed + 2)
        self._draw_all(tau=self.tau_max, uniform=True, grad=False)

    def _drawn(self, key: str) -> Callable[[], Draw]:
        return lambda: self._draws[key]

    # ------------------------------------------------------------------ drawing paths

    def tau(self, epoch: int) -> float:
        """The temperature of ``epoch``: tau_max during the warm-up, then linear to tau_min."""
        span = max(1, self.num_epochs - self.warmup_epochs - 1)
        t = min(1.0, max(0, epoch - self.warmup_epochs) / span)
        return self.tau_max - (self.tau_max - self.tau_min) * t

    def _draw_all(self, tau: float, uniform: bool, grad: bool) -> None:
        for key, alpha in self.alpha.items():
            logits = torch.zeros_like(alpha) if uniform else alpha if grad else alpha.detach()
            noise = -torch.empty(alpha.shape, dtype=alpha.dtype).exponential_(
                generator=self.gumbel_generator).log().to(alpha.device)  # fmt: skip
            perturbed = (F.log_softmax(logits, -1) + noise) / tau
            soft = F.softmax(perturbed, -1)
            indices = self._pick(self.search_space[key], perturbed, soft)
            hard = torch.zeros_like(soft)
            hard[indices] = 1.0
            self._draws[key] = (indices, hard - soft.detach() + soft if grad else hard)

    @staticmethod
    def _pick(spec: spaces.ChoiceSpec, perturbed: torch.Tensor, soft: torch.Tensor) -> list[int]:
        if isinstance(spec, spaces.LayerChoiceSpec) or spec.n_chosen == 1:
            return [int(perturbed.argmax())]
        if spec.n_chosen is not None:
            return sorted(perturbed.topk(spec.n_chosen).indices.tolist())
        kept = [i for i, p in enumerate(soft.tolist()) if p >= 1 / len(soft)]
        return kept or [int(perturbed.argmax())]

    def _set_final(self) -> None:
        for key, chosen in self.chosen_indices().items():
            decision = [chosen] if isinstance(chosen, int) else list(chosen)
            weights = torch.zeros_like(self.alpha[key]).detach()
            weights[decision] = 1.0
            self._draws[key] = (decision, weights)

    # ------------------------------------------------------------------ steps

    def before_weight_step(self, epoch: int, x: Any, y: Any) -> None:
        warm = epoch < self.warmup_epochs
        if not warm:
            vx, vy = self.next_arch_batch()
            self._draw_all(self.tau(epoch), uniform=False, grad=True)
            alphas = list(self.alpha.values())
            self.ctrl_optim.zero_grad(set_to_none=True)
            loss = self.loss(self.model(vx), vy)
            for a, g in zip(alphas, gradients(loss, alphas), strict=True):
                a.grad = g
            self.dist.average_gradients(alphas)
            self.ctrl_optim.step()
        self._draw_all(self.tau(epoch), uniform=warm, grad=False)

    @contextmanager
    def final_architecture(self) -> Iterator[None]:
        saved = dict(self._draws)
        self._set_final()
        try:
            yield
        finally:
            self._draws = saved

    def _extra_state(self) -> dict[str, Any]:
        return {
            **super()._extra_state(),
            "gumbel_generator": self.gumbel_generator.get_state(),
            "draws": {k: (list(i), w.detach().clone()) for k, (i, w) in self._draws.items()},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.gumbel_generator.set_state(state["gumbel_generator"])
        self._draws = {k: (list(i), w.to(self.device)) for k, (i, w) in state["draws"].items()}
