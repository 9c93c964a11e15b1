"""PPOTuner's learning step, and the background thread that runs it off the manager's path.

``ppo_update`` is one PPO update: GAE advantages over a batch of finished trajectories, then
``epochs`` epochs of clipped PPO over minibatches, the minibatch order drawn from a generator.
Given the same policy, optimiser state, batch and generator seed it computes the same result.

``BackgroundUpdate`` runs ``ppo_update`` in a thread on copies of the policy and optimiser, so
that the tuner goes on proposing from the policy it has while the update computes; ``result()``
waits for it and hands over the updated copies (re-raising whatever the update raised).
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tuners.ppo_policy import StepPolicy

__all__ = [
    "Adam", "PPOSettings", "Trajectory", "ppo_update", "new_optimizer", "BackgroundUpdate",
    "one_thread",
]  # fmt: skip

# (actions, log-probs, values) per step, and the trial's reward
Trajectory = tuple[list[int], list[float], list[float], float]


# torch's intra-op thread count is one setting for the process (a thread that restores it changes
# it under another thread's running ops), so holds on "one thread" are counted: the first sets
# it, the last restores what was there before.
_holds_lock = threading.Lock()
_holds = 0
_threads_before = 1


def _hold_one_thread() -> None:
    global _holds, _threads_before
    with _holds_lock:
        if _holds == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _holds += 1


def _release_one_thread() -> None:
    global _holds
    with _holds_lock:
        _holds -= 1
        if _holds == 0:
            torch.set_num_threads(_threads_before)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread inside (and for as long as a ``BackgroundUpdate`` is
    pending): the policy is tiny, and more threads only add synchronisation and spinning (a
    background update on two threads took 8x the CPU; on a loaded machine a batched pass was
    50x slower, 1.4 s instead of 25 ms)."""
    _hold_one_thread()
    try:
        yield
    finally:
        _release_one_thread()


@dataclass(frozen=True)
class PPOSettings:
    """PPO's coefficients (``PPOTuner``'s classArgs of the same names)."""

    epochs: int
    minibatch_size: int
    lr: float
    cliprange: float
    vf_coef: float
    ent_coef: float
    max_grad_norm: float
    gamma: float
    lam: float


class Adam:
    """Adam with ``torch.optim.Adam``'s update and defaults (betas 0.9 and 0.999, eps 1e-8, bias
    corrected, no weight decay), written out: building a ``torch.optim`` optimiser imports
    ``torch._dynamo``, 1.2 s of CPU at the start of every manager that uses PPOTuner. A
    parameter without a gradient is left as it is (as torch's Adam does)."""

    def __init__(self, params: list[nn.Parameter], lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = [0] * len(self.params)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in live]
        grads = [self.params[i].grad for i in live]
        exp_avg = [self.exp_avg[i] for i in live]
        exp_avg_sq = [self.exp_avg_sq[i] for i in live]
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
        for i, p, m, v in zip(live, params, exp_avg, exp_avg_sq, strict=True):
            self.steps[i] += 1
            step = self.steps[i]
            denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - beta1**step))

    def copy_for(self, params: list[nn.Parameter]) -> Adam:
        """This optimiser's state, copied, for ``params`` (a copy of its parameters, in order)."""
        other = Adam(params, self.lr, self.betas, self.eps)
        other.steps = list(self.steps)
        other.exp_avg = [t.clone() for t in self.exp_avg]
        other.exp_avg_sq = [t.clone() for t in self.exp_avg_sq]
        return other

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = [int(n) for n in state["steps"]]
        self.exp_avg = [t.clone() for t in state["exp_avg"]]
        self.exp_avg_sq = [t.clone() for t in state["exp_avg_sq"]]


def new_optimizer(policy: StepPolicy, lr: float) -> Adam:
    return Adam(list(policy.parameters()), lr)


def advantages(
    values: torch.Tensor, rewards: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the steps, the reward at the last one: (advantages, returns), each B x T."""
    steps = values.shape[1]
    next_values = torch.cat([values[:, 1:], torch.zeros(values.shape[0], 1)], 1)
    deltas = gamma * next_values - values
    deltas[:, -1] += rewards
    # advantage_t = sum over k >= t of (gamma lam)^(k - t) delta_k
    k = torch.arange(steps)
    later = k[:, None] >= k[None, :]
    power = (k[:, None] - k[None, :]).clamp(min=0).to(values.dtype)
    discount = torch.where(later, (gamma * lam) ** power, torch.zeros(()))
    adv = deltas @ discount
    return adv, adv + values


def ppo_update(
    policy: StepPolicy,
    optimizer: Adam,
    batch: list[Trajectory],
    generator: torch.Generator,
    settings: PPOSettings,
) -> None:
    """One PPO update of ``policy`` (in place) from ``batch``; advantages normalised over it."""
    actions = torch.tensor([b[0] for b in batch])
    old_logps = torch.tensor([b[1] for b in batch])
    old_values = torch.tensor([b[2] for b in batch])
    rewards = torch.tensor([b[3] for b in batch], dtype=torch.float32)
    adv, returns = advantages(old_values, rewards, settings.gamma, settings.lam)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8) if adv.numel() > 1 else adv
    parameters = list(policy.parameters())
    n = len(batch)
    for _ in range(settings.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, settings.minibatch_size):
            idx = order[start : start + settings.minibatch_size]
            logps, entropies, values = policy.evaluate(actions[idx])
            ratio = torch.exp(logps - old_logps[idx])
            clipped = torch.clamp(ratio, 1 - settings.cliprange, 1 + settings.cliprange)
            pg_loss = -torch.min(ratio * adv[idx], clipped * adv[idx]).mean()
            v_loss = 0.5 * ((values - returns[idx]) ** 2).mean()
            loss = pg_loss + settings.vf_coef * v_loss - settings.ent_coef * entropies.mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm, foreach=True)
            optimizer.step()


class BackgroundUpdate:
    """``ppo_update`` in a thread, on copies of ``policy`` and ``optimizer`` (which the caller
    keeps using unchanged), the minibatch order drawn from ``torch.Generator`` seeded with
    ``seed``. The thread is not a daemon: an interpreter exiting waits for it (one update).
    From construction until ``result()`` returns, torch runs on one intra-op thread in this
    process (``one_thread``), the caller's setting restored by ``result()``."""

    def __init__(
        self,
        policy: StepPolicy,
        optimizer: Adam,
        batch: list[Trajectory],
        seed: int,
        settings: PPOSettings,
    ):
        self.batch, self.seed = batch, seed
        self._held = True
        _hold_one_thread()
        self._policy = copy.deepcopy(policy)
        self._optimizer = optimizer.copy_for(list(self._policy.parameters()))
        self._settings = settings
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ppo-update")
        self._thread.start()

    def _run(self) -> None:
        try:
            torch.set_num_threads(1)  # also this thread's own, where the setting is per thread
            generator = torch.Generator().manual_seed(self.seed)
            ppo_update(self._policy, self._optimizer, self.batch, generator, self._settings)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result() on the caller's thread
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> tuple[StepPolicy, Adam]:
        """The updated policy and optimiser, once the update has finished (waits for it)."""
        self._thread.join()
        if self._held:
            self._held = False
            _release_one_thread()
        if self._error is not None:
            raise self._error
        return self._policy, self._optimizer
