"""``EnasTrainer``: efficient NAS by parameter sharing (Pham et al. 2018).

An LSTM controller emits the decisions key by key (one step per layer choice; ``k`` steps for an
input choice with ``n_chosen: k``, inputs already picked masked; one take/skip step per input
for ``n_chosen: null``), each step with its own output head and action embeddings, so choices
with different candidate counts are fine (NNI required equal counts). Each epoch alternates:
one pass over the weight split training the sampled child (a new sample per batch), then
controller steps on the architecture split: REINFORCE with reward ``reward_function(output,
target)`` plus ``entropy_weight`` x entropy, an exponential-moving-average baseline, gradients
accumulated over ``ctrl_steps_aggregate`` samples. Export: the controller's most likely
architecture (greedy decoding), not a random sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from nascli.nas.oneshot import defaults
from nascli.nas.oneshot.sampling import Arch, SinglePathTrainer
from nascli.nas.oneshot.utils import export_decisions, to_device

__all__ = ["EnasTrainer", "Controller"]


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

    def forward(
        self, generator: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[Arch, torch.Tensor, torch.Tensor]:
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
            if self.temperature is not None:
                logits = logits / self.temperature
            if self.tanh_constant is not None:
                logits = self.tanh_constant * torch.tanh(logits)
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
        return spaces.choices_from_actions(self.space, flat), log_prob, entropy


class EnasTrainer(SinglePathTrainer):
    """ENAS. Signature as NNI's: ``(model, loss, metrics, reward_function, optimizer, num_epochs,
    dataset, ...)`` (or v1.9's ``dataset_train, dataset_valid``), plus:

    Args:
        reward_function: ``(output, target) -> float``, larger is better (e.g. accuracy).
        entropy_weight: weight of the controller's entropy in the reward (1e-4).
        baseline_decay: decay of the reward's moving average (0.95: the baseline follows the
            rewards within a few dozen samples; NNI's 0.999 hardly leaves the first reward in a
            run of a few hundred).
        ctrl_lr: Adam learning rate of the controller (default: ENAS's 3.5e-4 scaled to the
            run's number of controller updates, at most 5e-3; ``nascli.nas.oneshot.defaults``).
        ctrl_steps_aggregate: samples per controller update (default: 20, or half the
            architecture-split batches of an epoch when fewer, so every epoch updates twice).
        ctrl_steps: controller samples per epoch (default: one per architecture-split batch).
        lstm_size: the controller's width (64).
        temperature / tanh_constant: the controller's logits become tanh_constant x
            tanh(logits / temperature) (ENAS: 5.0 and 2.5; None: off).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Callable[[Any, Any], torch.Tensor],
        metrics: Any,
        reward_function: Callable[[Any, Any], Any],
        optimizer: torch.optim.Optimizer,
        num_epochs: int,
        *args: Any,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.95,
        ctrl_lr: float | None = None,
        ctrl_steps_aggregate: int | None = None,
        ctrl_steps: int | None = None,
        lstm_size: int = 64,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        **kwargs: Any,
    ):
        self.reward_function = reward_function
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self._ctrl_lr = ctrl_lr
        self._ctrl_steps_aggregate = ctrl_steps_aggregate
        self.ctrl_steps = ctrl_steps
        self.lstm_size = lstm_size
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.baseline: float | None = None
        super().__init__(model, loss, metrics, optimizer, num_epochs, *args, **kwargs)

    @property
    def ctrl_steps_aggregate(self) -> int:
        if self._ctrl_steps_aggregate is not None:
            return self._ctrl_steps_aggregate
        return max(1, min(20, (self.ctrl_steps or len(self.arch_loader)) // 2))

    @property
    def ctrl_lr(self) -> float:
        if self._ctrl_lr is not None:
            return self._ctrl_lr
        per_epoch = -(-(self.ctrl_steps or len(self.arch_loader)) // self.ctrl_steps_aggregate)
        updates = self.num_epochs * per_epoch
        # ENAS: 2,000 controller samples per epoch, 20 per update, 150 epochs
        return min(5e-3, defaults.arch_learning_rate(updates, (3.5e-4, 150 * 100)))

    def _setup(self) -> None:
        super()._setup()
        self.controller = Controller(self.search_space, self.lstm_size, self.temperature,
                                     self.tanh_constant).to(self.device)  # fmt: skip
        self.ctrl_optim = torch.optim.Adam(self.controller.parameters(), self.ctrl_lr)
        self.ctrl_generator = torch.Generator().manual_seed(self.seed + 1)

    def sample_for_step(self) -> Arch:
        with torch.no_grad():
            arch, _, _ = self.controller(self.ctrl_generator)
        return arch

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        stats = super().train_one_epoch(epoch)
        stats.update(self._train_controller())
        return stats

    def _train_controller(self) -> dict[str, float]:
        self.model.eval()
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
            loss.backward()
            rewards.append(reward)
            if (step + 1) % self.ctrl_steps_aggregate == 0 or step + 1 == steps:
                nn.utils.clip_grad_norm_(self.controller.parameters(), 5.0)
                self.ctrl_optim.step()
                self.ctrl_optim.zero_grad(set_to_none=True)
        self.model.train()
        return {"reward": sum(rewards) / max(len(rewards), 1)}  # rewards are already averaged

    def search(self) -> list[tuple[float, Arch]]:
        with torch.no_grad():
            arch, _, _ = self.controller(greedy=True)
        self.best = [(self.score(arch), arch)]
        return self.best

    def _export(self) -> dict[str, Any]:
        with torch.no_grad():
            arch, _, _ = self.controller(greedy=True)
        return export_decisions(self.search_space, arch)

    @contextmanager
    def final_architecture(self) -> Iterator[None]:
        with torch.no_grad():
            arch, _, _ = self.controller(greedy=True)
        with self.architecture(arch):
            yield

    def arch_probabilities(self) -> dict[str, list[float]]:
        return {}

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
