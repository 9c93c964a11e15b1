"""``EnasTrainer``: efficient NAS by parameter sharing (Pham et al. 2018).

An LSTM controller emits the decisions key by key (one step per layer choice; ``k`` steps for an
input choice with ``n_chosen: k``, inputs already picked masked; one take/skip step per input
for ``n_chosen: null``), each step with its own output head and action embeddings, so choices
with different candidate counts are fine (NNI required equal counts). Each epoch alternates:
one pass over the weight split training the sampled child (a new sample per batch), then
controller steps on the architecture split: REINFORCE with reward ``reward_function(output,
target)`` plus ``entropy_weight`` x entropy, an exponential-moving-average baseline, gradients
accumulated over ``ctrl_steps_aggregate`` samples. The reward is computed with BatchNorm on
the batch's own statistics (running statistics restored after): the running statistics of a
supernet mix every path trained, so in eval mode a sampled child is judged through statistics
that are not its own, and the controller learns that noise. Export (ENAS's derivation): after
training, the controller's most likely architecture (greedy decoding) and ``num_samples`` of
its samples are scored on the whole architecture split (BatchNorm recalibrated for each, as
SPOS scores) and the best is exported; before that search, the greedy architecture.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from nascli.errors import UsageError
from nascli.nas.oneshot import defaults
from nascli.nas.oneshot.adapters import AuxLoss, StepsLoader, on_logits
from nascli.nas.oneshot.driven import MutatorController, mutator_probabilities
from nascli.nas.oneshot.enas_mutator import EnasMutator
from nascli.nas.oneshot.sampling import SinglePathTrainer, batch_statistics
from nascli.nas.oneshot.utils import to_device

__all__ = ["EnasTrainer", "EnasMutator", "Controller", "controller_probabilities"]

log = logging.getLogger("nascli.oneshot")

#: the take probability the skip penalty pulls ``n_chosen=None`` inputs towards (NNI's)
SKIP_TARGET = 0.4


def _alias(name: str, value: Any, v19_name: str, v19_value: Any, default: Any) -> Any:
    if value is not None and v19_value is not None and value != v19_value:
        raise UsageError(f"give {name} or its NNI v1.9 name {v19_name}, not both")
    return value if value is not None else v19_value if v19_value is not None else default


class Controller(nn.Module):
    """The decision LSTM over a search space (keys in sorted order)."""

    def __init__(self, space: spaces.SearchSpace, hidden: int = 64,
                 temperature: float | None = None, tanh_constant: float | None = None):  # fmt: skip
        super().__init__()
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.space = space
        self.steps = spaces.decision_steps(space)
        sizes = [n for _, n in self.steps]
        self.offsets = [sum(sizes[:t]) for t in range(len(sizes))]
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.Embedding(max(1, sum(sizes)), hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in sizes)

    def bounded(self, logits: torch.Tensor) -> torch.Tensor:
        """A head's logits as sampled from: tanh_constant x tanh(logits / temperature)."""
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def forward(
        self, generator: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[spaces.Chosen, torch.Tensor, torch.Tensor]:
        """Sample (or decode greedily) one architecture: ``(arch, log_prob, entropy)``."""
        state = (torch.zeros(1, self.hidden, device=self.start.device),) * 2
        x = self.start
        log_prob = torch.zeros((), device=x.device)
        entropy = torch.zeros((), device=x.device)
        actions: dict[str, list[int]] = {}
        flat: list[int] = []
        for t, (key, _) in enumerate(self.steps):
            state = self.cell(x, state)
            logits = self.heads[t](state[0])[0]
            # ENAS's sampling temperature and tanh constant: logits bounded, so the controller
            # cannot become certain early (the collapse ENAS counters).
            logits = self.bounded(logits)
            spec = self.space[key]
            if isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is not None:
                for picked in actions.get(key, []):
                    logits = logits.index_fill(0, torch.tensor([picked], device=x.device),
                                               float("-inf"))  # fmt: skip
            dist = torch.distributions.Categorical(logits=logits)
            if greedy:
                action = int(logits.argmax())
            else:
                action = int(torch.multinomial(dist.probs.detach().cpu(), 1, generator=generator))
            act = torch.tensor(action, device=x.device)
            log_prob = log_prob + dist.log_prob(act)
            entropy = entropy + dist.entropy()
            actions.setdefault(key, []).append(action)
            flat.append(action)
            x = self.embed(act + self.offsets[t]).unsqueeze(0)
        chosen = spaces.as_chosen(self.space, spaces.choices_from_actions(self.space, flat))
        return chosen, log_prob, entropy


@torch.no_grad()
def controller_probabilities(
    controller: Controller, space: spaces.SearchSpace, samples: int
) -> dict[str, list[float]]:
    """Inclusion frequency of each candidate over ``samples`` controller samples."""
    generator = torch.Generator().manual_seed(0)
    counts = {key: [0] * spec.n_candidates for key, spec in space.items()}
    was_training = controller.training
    controller.eval()
    for _ in range(samples):
        arch, _, _ = controller(generator)
        for key, value in arch.items():
            for i in [value] if isinstance(value, int) else value:
                counts[key][i] += 1
    controller.train(was_training)
    return {key: [c / samples for c in row] for key, row in sorted(counts.items())}


class EnasTrainer(SinglePathTrainer):
    """ENAS. Positional arguments as NNI v1.9's: ``(model, loss, metrics, reward_function,
    optimizer, num_epochs, dataset_train, dataset_valid, mutator, batch_size, workers, device,
    log_frequency, callbacks, entropy_weight, skip_weight, baseline_decay, child_steps,
    mutator_lr, mutator_steps_aggregate, mutator_steps, aux_weight, test_arc_per_epoch)``
    (``dataset=`` works too), plus the base trainer's keywords.

    Args:
        reward_function: ``(output, target) -> float``, larger is better (e.g. accuracy).
        mutator: NNI v1.9's: an ``EnasMutator`` (or any mutator that sets ``sample_log_prob``
            / ``sample_entropy`` / ``sample_skip_penalty`` in ``reset()``) built on the model,
            used as the controller; default: the trainer's own controller.
        entropy_weight: weight of the controller's entropy in the reward (1e-4).
        skip_weight: weight of the skip penalty in the controller loss (0.8): the KL divergence
            between the probability of taking each input of an ``n_chosen=None`` input choice
            and ``skip_target`` (0.4; the mutator's own with ``mutator=``); not on a choice that
            is its node's only source (``sole_source``), where it would pull towards empty
            nodes.
        baseline_decay: decay of the reward's moving average (0.95: the baseline follows the
            rewards within a few dozen samples; NNI's 0.999 hardly leaves the first reward in a
            run of a few hundred).
        child_steps: weight steps per epoch, cycling the weight split (default: one pass over
            it; NNI's default was 500).
        mutator_lr / ctrl_lr: Adam learning rate of the controller (default: ENAS's 3.5e-4
            scaled to the run's number of controller updates, at most 5e-3;
            ``nascli.nas.oneshot.defaults``).
        mutator_steps_aggregate / ctrl_steps_aggregate: samples per controller update (default:
            20, or half the architecture-split batches of an epoch when fewer, so every epoch
            updates twice; 20 when ``mutator_steps`` is given).
        mutator_steps: controller updates per epoch, i.e. ``ctrl_steps = mutator_steps x
            mutator_steps_aggregate`` samples (default: one sample per architecture-split batch;
            NNI's default was 50 updates).
        ctrl_steps: controller samples per epoch, directly.
        aux_weight: when the model returns ``(logits, aux_logits)`` in training, the loss is
            ``loss(logits) + aux_weight * loss(aux_logits)`` (0.4).
        test_arc_per_epoch: architectures evaluated on the validation data after each epoch:
            the controller's most likely one (whose metrics are reported), then
            ``test_arc_per_epoch - 1`` samples (logged, and their mean kept as
            ``sampled_<metric>`` in the history).
        lstm_size: the controller's width (64).
        temperature / tanh_constant: the controller's logits become tanh_constant x
            tanh(logits / temperature) (ENAS: 5.0 and 2.5; None: off).
        num_samples: controller samples scored, besides the greedy architecture, by the search
            after training that picks the export (default 100, as ``RandomTrainer``; 0: export
            the greedy one). With ``mutator=``, the export is the mutator's decision, as in
            NNI v1.9 (no samples are scored).
        warmup_epochs: epochs first of weight steps on uniformly drawn paths (as
            ``RandomTrainer`` trains) with the controller left untrained (default: a quarter of
            the run, as DARTS / GDAS / ProxylessNAS warm up; 0 with ``mutator=``, as NNI v1.9).
            A controller trained from the first step rewards what works on untrained weights,
            parameter-free operations (pooling, skips), samples them more, and the convolutions
            it then trains less never catch up: the collapse ENAS is known for (measured on the
            cell benchmark, 5 seeds: mean / worst percentile 6.8 % / 15.2 % -> 1.6 % / 2.7 %).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Callable[[Any, Any], torch.Tensor],
        metrics: Any,
        reward_function: Callable[[Any, Any], Any],
        optimizer: torch.optim.Optimizer,
        num_epochs: int,
        dataset_train: Any = None,
        dataset_valid: Any = None,
        mutator: Any = None,
        batch_size: int = 64,
        workers: int = 0,
        device: Any = None,
        log_frequency: int | None = None,
        callbacks: Any = None,
        entropy_weight: float = 1e-4,
        skip_weight: float = 0.8,
        baseline_decay: float = 0.95,
        child_steps: int | None = None,
        mutator_lr: float | None = None,
        mutator_steps_aggregate: int | None = None,
        mutator_steps: int | None = None,
        aux_weight: float = 0.4,
        test_arc_per_epoch: int = 1,
        *,
        ctrl_lr: float | None = None,
        ctrl_steps_aggregate: int | None = None,
        ctrl_steps: int | None = None,
        lstm_size: int = 64,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        num_samples: int = 100,
        warmup_epochs: int | None = None,
        **kwargs: Any,
    ):
        if warmup_epochs is not None and (not isinstance(warmup_epochs, int) or warmup_epochs < 0):
            raise UsageError(
                f"warmup_epochs must be a non-negative integer, got {warmup_epochs!r}"
            )
        self._warmup_epochs = warmup_epochs
        if not isinstance(num_samples, int) or num_samples < 0:
            raise UsageError(f"num_samples must be a non-negative integer, got {num_samples!r}")
        self.num_samples = num_samples
        self.reward_function = on_logits(reward_function)
        self.entropy_weight = entropy_weight
        self.skip_weight = skip_weight
        self.baseline_decay = baseline_decay
        self._ctrl_lr = _alias("ctrl_lr", ctrl_lr, "mutator_lr", mutator_lr, None)
        self._ctrl_steps_aggregate = _alias("ctrl_steps_aggregate", ctrl_steps_aggregate,
                                            "mutator_steps_aggregate", mutator_steps_aggregate,
                                            None)  # fmt: skip
        if mutator_steps is not None:
            if ctrl_steps is not None:
                raise UsageError("give ctrl_steps or mutator_steps, not both")
            if self._ctrl_steps_aggregate is None:  # v1.9: mutator_steps updates of 20 samples
                self._ctrl_steps_aggregate = 20
            ctrl_steps = mutator_steps * self._ctrl_steps_aggregate
        self.ctrl_steps = ctrl_steps
        self.aux_weight = aux_weight
        if not isinstance(test_arc_per_epoch, int) or test_arc_per_epoch < 1:
            raise UsageError(
                f"test_arc_per_epoch must be a positive integer, got {test_arc_per_epoch!r}"
            )
        self.test_arc_per_epoch = test_arc_per_epoch
        self.lstm_size = lstm_size
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.baseline: float | None = None
        super().__init__(model, AuxLoss(loss, aux_weight), metrics, optimizer, num_epochs,
                         dataset_train=dataset_train, dataset_valid=dataset_valid,
                         mutator=mutator, batch_size=batch_size, workers=workers,
                         device=device, log_frequency=log_frequency, callbacks=callbacks,
                         **kwargs)  # fmt: skip
        if child_steps is not None:
            self.train_loader = StepsLoader(self.train_loader, child_steps)  # type: ignore

    @property
    def ctrl_steps_aggregate(self) -> int:
        if self._ctrl_steps_aggregate is not None:
            return self._ctrl_steps_aggregate
        return max(1, min(20, (self.ctrl_steps or len(self.arch_loader)) // 2))

    @property
    def warmup_epochs(self) -> int:
        if self._warmup_epochs is not None:
            return self._warmup_epochs
        return 0 if self.mutator is not None else defaults.warmup_epochs(self.num_epochs)

    @property
    def ctrl_lr(self) -> float:
        if self._ctrl_lr is not None:
            return self._ctrl_lr
        per_epoch = -(-(self.ctrl_steps or len(self.arch_loader)) // self.ctrl_steps_aggregate)
        updates = max(1, self.num_epochs - self.warmup_epochs) * per_epoch
        # ENAS: 2,000 controller samples per epoch, 20 per update, 150 epochs
        return min(5e-3, defaults.arch_learning_rate(updates, (3.5e-4, 150 * 100)))

    def _setup(self) -> None:
        super()._setup()
        self._take_probs: list[torch.Tensor] = []
        if self.mutator is not None:
            self.controller = MutatorController(self.mutator, self.search_space)
        else:
            self.controller = Controller(self.search_space, self.lstm_size, self.temperature,
                                         self.tanh_constant).to(self.device)  # fmt: skip
            self._watch_take_probabilities()
        self.ctrl_optim = torch.optim.Adam(self.controller.parameters(), self.ctrl_lr)
        self.ctrl_generator = torch.Generator().manual_seed(self.seed + 1)

    def sample_for_step(self) -> spaces.Chosen:
        """The controller's sample, its zero operations replaced by drawn non-zero ones unless
        ``train_zero_ops`` (``SinglePathTrainer.trainable_path``): a controller that leans to
        ``none`` early would otherwise stop training what lies behind it, and the shallow
        cells it then prefers look better still (the collapse; measured on the cell table).
        During the warm-up, a uniformly drawn path (``SinglePathTrainer.sample_for_step``)."""
        if self.epoch < self.warmup_epochs:
            return super().sample_for_step()
        with torch.no_grad():
            arch, _, _ = self.controller(self.ctrl_generator)
        if self.mutator is not None:
            return arch
        return self.trainable_path(arch)

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        stats = super().train_one_epoch(epoch)
        if epoch >= self.warmup_epochs:
            stats.update(self._train_controller())
        return stats

    def _train_controller(self) -> dict[str, float]:
        with batch_statistics(self.model):
            return self._controller_steps()

    def _controller_steps(self) -> dict[str, float]:
        self.controller.train()
        steps = self.ctrl_steps or len(self.arch_loader)
        batches = iter(self.arch_loader)
        rewards = []
        self.ctrl_optim.zero_grad(set_to_none=True)
        for step in range(steps):
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(self.arch_loader)
                batch = next(batches)
            x, y = to_device(batch, self.device)
            self._take_probs.clear()
            arch, log_prob, entropy = self.controller(self.ctrl_generator)
            self.set_architecture(arch)
            with torch.no_grad():
                reward = float(self.reward_function(self.model(x), y))
            reward += self.entropy_weight * float(entropy.detach())
            reward = self.dist.average(reward)  # same reward, same controller on every rank
            if self.baseline is None:
                self.baseline = reward
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
            loss = -log_prob * (reward - self.baseline) / self.ctrl_steps_aggregate
            if self.skip_weight:
                loss = loss + self.skip_weight * self._skip_penalty() / self.ctrl_steps_aggregate
            loss.backward()
            rewards.append(reward)
            if (step + 1) % self.ctrl_steps_aggregate == 0 or step + 1 == steps:
                nn.utils.clip_grad_norm_(self.controller.parameters(), 5.0)
                self.ctrl_optim.step()
                self.ctrl_optim.zero_grad(set_to_none=True)
        return {"reward": sum(rewards) / max(len(rewards), 1)}  # rewards are already averaged

    def search(self) -> list[tuple[float, spaces.Chosen]]:
        """The greedy architecture and ``num_samples`` controller samples (a generator of its
        own, so training's streams are untouched; the same draws on every rank), each scored
        once on the trained supernet; fills ``best``."""
        generator = torch.Generator().manual_seed(self.seed + 3)
        seen: set[str] = set()
        self.best = []
        samples = 0 if self.mutator is not None else self.num_samples
        with torch.no_grad():
            candidates = [self.controller(greedy=True)[0]]
            candidates += [self.controller(generator)[0] for _ in range(samples)]
        for arch in candidates:
            code = json.dumps(arch, sort_keys=True)
            if code not in seen:
                seen.add(code)
                self.best.append((self.score(arch), arch))
        return self.best

    def _greedy(self) -> spaces.Chosen:
        with torch.no_grad():
            return self.controller(greedy=True)[0]

    def _export(self) -> dict[str, Any]:
        if self.best and self.mutator is None:
            return self.export_top_models(1)[0]
        return spaces.export_architecture(self.search_space, self._greedy())

    # ------------------------------------------------------------------ v1.9 arguments

    def _watch_take_probabilities(self) -> None:
        """Record, while the controller samples with gradients, the take probability of every
        take/skip step (inputs of ``n_chosen=None`` choices), for the skip penalty; not for a
        choice that is its node's only source (``SinglePathTrainer``: unless
        ``train_zero_ops``). The penalty is ENAS's prior for optional skip connections (keep
        about ``SKIP_TARGET`` of them); on a node's only source it pulls the controller towards
        nodes with no input, i.e. towards zero operations, which every other default counters."""
        for t, (key, n) in enumerate(self.controller.steps):
            spec = self.search_space[key]
            if (isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is None and n == 2
                    and key not in self._needs_input):  # fmt: skip
                self.controller.heads[t].register_forward_hook(self._record_take)

    def _record_take(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if torch.is_grad_enabled():
            logits = self.controller.bounded(output.reshape(-1))  # type: ignore[operator]
            self._take_probs.append(torch.softmax(logits, 0)[1])

    def _skip_penalty(self) -> torch.Tensor:
        """KL(Bernoulli(p_take) || Bernoulli(skip_target)) summed over the last sample's take /
        skip steps (the mutator's own ``sample_skip_penalty`` with ``mutator=``)."""
        if isinstance(self.controller, MutatorController):
            return self.controller.skip_penalty
        if not self._take_probs:
            return torch.zeros((), device=self.device)
        p = torch.stack(self._take_probs).clamp(1e-6, 1 - 1e-6)
        q = SKIP_TARGET
        return (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        stats = super().validate()
        sampled: dict[str, float] = {}
        for i in range(1, self.test_arc_per_epoch):
            arch, _, _ = self.controller(self.ctrl_generator)
            with self.architecture(arch):
                values = self.evaluate(self.valid_loader)
            if self.dist.main:
                shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
                log.info("sampled architecture %d/%d: %s", i, self.test_arc_per_epoch - 1, shown)
            for k, v in values.items():
                sampled[f"sampled_{k}"] = sampled.get(f"sampled_{k}", 0.0) + v
        return {**stats, **{k: v / (self.test_arc_per_epoch - 1) for k, v in sampled.items()}}

    def snapshot_export(self) -> dict[str, Any]:
        return self.export()  # greedy decoding before the search: nothing sampled

    @contextmanager
    def final_architecture(self) -> Iterator[None]:
        scored = self.best and self.mutator is None
        arch = max(self.best, key=lambda item: item[0])[1] if scored else self._greedy()
        with self.architecture(arch):
            yield

    #: controller samples behind ``arch_probabilities()``
    probability_samples = 256

    def arch_probabilities(self) -> dict[str, list[float]]:
        """Per key, how often each candidate is in an architecture the controller samples: a
        Monte-Carlo estimate over ``probability_samples`` samples from a generator of its own
        (fixed seed), so training's random streams are untouched. With ``mutator=``, the
        mutator's own ``probabilities()`` (none when it has no such method)."""
        if self.mutator is not None:
            return mutator_probabilities(self.mutator)
        return controller_probabilities(self.controller, self.search_space,
                                        self.probability_samples)  # fmt: skip

    def _extra_state(self) -> dict[str, Any]:
        return {
            **super()._extra_state(),
            "controller": self.controller.state_dict(),
            "ctrl_optim": self.ctrl_optim.state_dict(),
            "ctrl_generator": self.ctrl_generator.get_state(),
            "baseline": self.baseline,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.controller.load_state_dict(state["controller"])
        self.ctrl_optim.load_state_dict(state["ctrl_optim"])
        self.ctrl_generator.set_state(state["ctrl_generator"])
        self.baseline = state["baseline"]
