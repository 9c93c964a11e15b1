"""``PPOTuner``: a recurrent policy over the architecture's decisions, trained with PPO from trial
results (the idea of NNI's PPO tuner, in torch, without its limits).

An architecture is a sequence of steps, keys in sorted order: one categorical step per layer
choice; ``k`` steps for an input choice with ``n_chosen: k`` (each picks one more input, inputs
already picked are masked, so no input is picked twice); one take/skip step per candidate for
``n_chosen: null``. An LSTM cell reads the previous step's action (every step has its own action
embeddings and output head, so candidates of different keys never share parameters, and unnamed
candidates are told apart by position). The trial's reward (the final metric, signed by
``optimize_mode``) is given at the last step; advantages are GAE(``gamma``, ``lam``) over the
steps with the value head as baseline, normalised per update. Every ``trials_per_update`` results,
``epochs_per_update`` epochs of clipped PPO (``cliprange``, ``vf_coef``, ``ent_coef``, Adam ``lr``,
gradient norm clipped at ``max_grad_norm``) run over minibatches of ``minibatch_size`` trials.

The policy cannot collapse: as in ENAS's controller, every head's logits are bounded by
``tanh_constant * tanh(logits / tanh_constant)``, so no option's probability falls below
``1 / (1 + (k - 1) e^(2 tanh_constant))`` (1.6 % of a 4-way choice at the default 1.5), and the
entropy bonus is on by default (``ent_coef`` 0.01, the usual PPO value; NNI's 0.0 let the
policy become deterministic after ~1,000 results, so that most samples were duplicates).

Never proposes an architecture twice: ``samples_per_proposal`` architectures are drawn in one
batched pass and the first untried one is proposed; when all are tried, an untried architecture
is drawn uniformly (its log-probability under the policy is used for the update). A proposal thus
costs at most two passes of the policy whatever the history. Failed trials are dropped.
``import_data`` feeds results as trajectories. The whole state (network, optimiser, torch
generator, trajectories waiting for an update: all bounded in size) is saved by
``save_checkpoint`` as JSON, tensors as base64 of their bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nascli import space as spaces
from tuners.base import Architecture, Tuner, TunerArgumentError

__all__ = ["PPOTuner"]



@contextmanager
def _one_thread() -> Iterator[None]:
    """The policy is tiny: intra-op threads only add synchronisation, which on a loaded machine
    made a batched pass 50x slower (1.4 s instead of 25 ms). Restores the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Policy(nn.Module):
    def __init__(self, step_sizes: list[int], hidden: int):
        super().__init__()
        self.offsets = [sum(step_sizes[:t]) for t in range(len(step_sizes))]
        self.start = nn.Parameter(torch.zeros(hidden))
        self.embed = nn.Embedding(max(1, sum(step_sizes)), hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in step_sizes)
        self.value = nn.Linear(hidden, 1)


class PPOTuner(Tuner):
    """PPO over the search space's decisions. Args (NNI's names and defaults):

    Args:
        trials_per_update: results collected before each policy update (default 20).
        epochs_per_update: passes over those results per update (4).
        minibatch_size: trials per gradient step (4); need not divide ``trials_per_update``.
        ent_coef, lr, vf_coef, max_grad_norm, gamma, lam, cliprange: PPO's coefficients
            (0.01, 3e-4, 0.5, 0.5, 0.99, 0.95, 0.2); all of them are used. NNI's ``ent_coef``
            default was 0.0.
        hidden_size: the LSTM's width (64).
        tanh_constant: bound on every logit (1.5, ENAS's controller in NNI); 0 = unbounded.
        samples_per_proposal: architectures drawn per proposal, the first untried one is
            proposed (16).
    """

    replayable = True

    def __init__(
        self,
        optimize_mode: str = "maximize",
        seed: int | None = None,
        trials_per_update: int = 20,
        epochs_per_update: int = 4,
        minibatch_size: int = 4,
        ent_coef: float = 0.01,
        lr: float = 3e-4,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        gamma: float = 0.99,
        lam: float = 0.95,
        cliprange: float = 0.2,
        hidden_size: int = 64,
        tanh_constant: float = 1.5,
        samples_per_proposal: int = 16,
    ):
        super().__init__(optimize_mode, seed)
        for name, value in (
            ("trials_per_update", trials_per_update),
            ("epochs_per_update", epochs_per_update),
            ("minibatch_size", minibatch_size),
            ("hidden_size", hidden_size),
            ("samples_per_proposal", samples_per_proposal),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TunerArgumentError(
                    f"classArgs.{name} must be a positive integer, got {value!r}"
                )
        for name, value, low, high in (
            ("ent_coef", ent_coef, 0.0, None),
            ("lr", lr, 0.0, None),
            ("vf_coef", vf_coef, 0.0, None),
            ("max_grad_norm", max_grad_norm, 0.0, None),
            ("gamma", gamma, 0.0, 1.0),
            ("lam", lam, 0.0, 1.0),
            ("cliprange", cliprange, 0.0, None),
            ("tanh_constant", tanh_constant, 0.0, None),
        ):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
            if not ok or (high is not None and value > high) or (name == "lr" and value == 0):
                allowed = (
                    f"from {low} to {high}"
                    if high is not None
                    else f"> {low}"
                    if name == "lr"
                    else f">= {low}"
                )
                raise TunerArgumentError(
                    f"classArgs.{name} must be a number {allowed}, got {value!r}"
                )
        self.trials_per_update = trials_per_update
        self.epochs_per_update = epochs_per_update
        self.minibatch_size = minibatch_size
        self.ent_coef = float(ent_coef)
        self.lr = float(lr)
        self.vf_coef = float(vf_coef)
        self.max_grad_norm = float(max_grad_norm)
        self.gamma = float(gamma)
        self.lam = float(lam)
        self.cliprange = float(cliprange)
        self.hidden_size = hidden_size
        self.tanh_constant = float(tanh_constant)
        self.samples_per_proposal = samples_per_proposal
        self.generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        self.steps: list[tuple[str, int]] = []  # (key, options) per step
        # per step of an ``n_chosen: k`` input choice: the earlier steps of the same key
        self._picked_before: list[list[int] | None] = []
        self.policy: _Policy | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        # parameter_id -> (actions, log-probs, values) of outstanding proposals
        self.outstanding: dict[int, tuple[list[int], list[float], list[float]]] = {}
        # finished trajectories waiting for the next update: (actions, log-probs, values, reward)
        self.buffer: list[tuple[list[int], list[float], list[float], float]] = []
        self.updates = 0

    # ------------------------------------------------------------------ search space

    def update_search_space(self, search_space: Any) -> None:
        super().update_search_space(search_space)
        self.steps = spaces.decision_steps(self.space)
        self._picked_before = []
        for t, (key, _) in enumerate(self.steps):
            spec = self.space[key]
            fixed_inputs = isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is not None
            earlier = [s for s in range(t) if self.steps[s][0] == key]
            self._picked_before.append(earlier if fixed_inputs and earlier else None)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed if self.seed is not None else 0)
            self.policy = _Policy([n for _, n in self.steps], self.hidden_size)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr)

    def _masks(self, actions: torch.Tensor, t: int) -> torch.Tensor | None:
        """For an ``n_chosen: k`` input step: the inputs picked at earlier steps of its key."""
        earlier = self._picked_before[t]
        if earlier is None:
            return None
        mask = torch.zeros(actions.shape[0], self.steps[t][1], dtype=torch.bool)
        mask.scatter_(1, actions[:, earlier], True)
        return mask

    # ------------------------------------------------------------------ policy

    def _run(
        self, actions: torch.Tensor | None, samples: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (``actions`` None, batch ``samples``) or evaluate given actions (B x T).
        Returns (actions, log-probs, entropies, values), each B x T."""
        assert self.policy is not None
        policy = self.policy
        batch = samples if actions is None else actions.shape[0]
        taken = torch.zeros(batch, len(self.steps), dtype=torch.long)
        hidden = (torch.zeros(batch, self.hidden_size), torch.zeros(batch, self.hidden_size))
        x = policy.start.expand(batch, -1)
        logps, ents, values = [], [], []
        for t in range(len(self.steps)):
            hidden = policy.cell(x, hidden)
            logits = policy.heads[t](hidden[0])
            if self.tanh_constant > 0:
                logits = self.tanh_constant * torch.tanh(logits / self.tanh_constant)
            mask = self._masks(taken, t)
            if mask is not None:
                logits = logits.masked_fill(mask, float("-inf"))
            dist = torch.distributions.Categorical(logits=logits)
            if actions is None:
                probs = dist.probs.detach()
                action = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
            else:
                action = actions[:, t]
            taken[:, t] = action
            logps.append(dist.log_prob(action))
            ents.append(dist.entropy())
            values.append(policy.value(hidden[0]).squeeze(-1))
            x = policy.embed(action + policy.offsets[t])
        return taken, torch.stack(logps, 1), torch.stack(ents, 1), torch.stack(values, 1)

    def _arch_from_actions(self, actions: list[int]) -> Architecture:
        choices = spaces.choices_from_actions(self.space, actions)
        return tuple(v if isinstance(v, int) else tuple(v) for v in (choices[k] for k in self.keys))

    def _actions_from_arch(self, arch: Architecture) -> list[int]:
        return spaces.actions_from_choices(self.space, dict(zip(self.keys, arch, strict=True)))

    def _evaluate(self, actions: list[int]) -> tuple[list[float], list[float]]:
        with torch.no_grad(), _one_thread():
            _, logps, _, values = self._run(torch.tensor([actions]))
        return logps[0].tolist(), values[0].tolist()

    # ------------------------------------------------------------------ tuner hooks

    def _propose(self, parameter_id: int) -> Architecture:
        with torch.no_grad(), _one_thread():
            taken, logps, _, values = self._run(None, self.samples_per_proposal)
        for i, actions in enumerate(taken.tolist()):
            arch = self._arch_from_actions(actions)
            if arch not in self.tried:
                self.outstanding[parameter_id] = (actions, logps[i].tolist(), values[i].tolist())
                return arch
        arch = self.sample_new()
        actions = self._actions_from_arch(arch)
        self.outstanding[parameter_id] = (actions, *self._evaluate(actions))
        return arch

    def _on_result(self, parameter_id: int, arch: Architecture, reward: float) -> None:
        trajectory = self.outstanding.pop(parameter_id, None)
        if trajectory is None:  # imported, or proposed by someone else
            actions = self._actions_from_arch(arch)
            trajectory = (actions, *self._evaluate(actions))
        self.buffer.append((*trajectory, reward))
        if len(self.buffer) >= self.trials_per_update:
            with _one_thread():
                self._update()

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        super().trial_end(parameter_id, success, **kwargs)
        self.outstanding.pop(parameter_id, None)  # a failed trial teaches nothing

    # ------------------------------------------------------------------ PPO

    def _advantages(
        self, values: torch.Tensor, rewards: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = values.shape[1]
        adv = torch.zeros_like(values)
        last = torch.zeros(values.shape[0])
        for t in reversed(range(steps)):
            next_value = values[:, t + 1] if t + 1 < steps else torch.zeros(values.shape[0])
            reward = rewards if t == steps - 1 else torch.zeros(values.shape[0])
            delta = reward + self.gamma * next_value - values[:, t]
            last = delta + self.gamma * self.lam * last
            adv[:, t] = last
        return adv, adv + values

    def _update(self) -> None:
        assert self.policy is not None and self.optimizer is not None
        actions = torch.tensor([b[0] for b in self.buffer])
        old_logps = torch.tensor([b[1] for b in self.buffer])
        old_values = torch.tensor([b[2] for b in self.buffer])
        rewards = torch.tensor([b[3] for b in self.buffer], dtype=torch.float32)
        adv, returns = self._advantages(old_values, rewards)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8) if adv.numel() > 1 else adv
        n = len(self.buffer)
        for _ in range(self.epochs_per_update):
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, self.minibatch_size):
                idx = order[start : start + self.minibatch_size]
                _, logps, ents, values = self._run(actions[idx])
                ratio = torch.exp(logps - old_logps[idx])
                clipped = torch.clamp(ratio, 1 - self.cliprange, 1 + self.cliprange)
                pg_loss = -torch.min(ratio * adv[idx], clipped * adv[idx]).mean()
                v_loss = 0.5 * ((values - returns[idx]) ** 2).mean()
                loss = pg_loss + self.vf_coef * v_loss - self.ent_coef * ents.mean()
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.optimizer.step()
        self.buffer = []
        self.updates += 1

    # ------------------------------------------------------------------ checkpoint

    def _save_own(self) -> Any:
        assert self.policy is not None and self.optimizer is not None
        return {
            "policy": {k: _to_json(v) for k, v in self.policy.state_dict().items()},
            "optimizer": _to_json(self.optimizer.state_dict()),
            "generator": self.generator.get_state().tolist(),
            "outstanding": [[pid, *t] for pid, t in self.outstanding.items()],
            "buffer": [list(b) for b in self.buffer],
            "updates": self.updates,
        }

    def _load_own(self, state: Any) -> None:
        assert self.policy is not None and self.optimizer is not None
        self.policy.load_state_dict({k: _tensor(v) for k, v in state["policy"].items()})
        self.optimizer.load_state_dict(_from_json(state["optimizer"]))
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self.outstanding = {int(p): (a, lp, v) for p, a, lp, v in state["outstanding"]}
        self.buffer = [(a, lp, v, float(r)) for a, lp, v, r in state["buffer"]]
        self.updates = int(state["updates"])


def _to_json(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        # The bytes, not a list of numbers: a quarter of the size, exact, and fast to encode.
        raw = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        data = base64.b64encode(raw).decode("ascii")
        return {
            "__tensor__": data,
            "dtype": str(value.dtype).removeprefix("torch."),
            "shape": list(value.shape),
        }
    if isinstance(value, dict):
        return {"__dict__": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "__tensor__" in value:
        return _tensor(value)
    if isinstance(value, dict) and "__dict__" in value:
        return {_from_json(k): _from_json(v) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _tensor(value: Any) -> torch.Tensor:
    """A tensor from ``_to_json``'s form (or, from older checkpoints, a list of numbers)."""
    if isinstance(value, list):
        return torch.tensor(value)
    dtype = getattr(torch, value["dtype"])
    data = value["__tensor__"]
    if isinstance(data, list):
        return torch.tensor(data, dtype=dtype)
    raw = base64.b64decode(data)
    if not raw:
        return torch.empty(value["shape"], dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(value["shape"])
