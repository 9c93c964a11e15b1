"""``PPOTuner``: a recurrent policy over the architecture's decisions, trained with PPO from trial
results (the idea of NNI's PPO tuner, in torch, without its limits).

An architecture is a sequence of steps, keys in sorted order: one categorical step per layer
choice; ``k`` steps for an input choice with ``n_chosen: k`` (each picks one more input, inputs
already picked are masked, so no input is picked twice); one take/skip step per candidate for
``n_chosen: null``. An LSTM (``tuners.ppo_policy``) reads the previous step's action (every
step has its own action embeddings and output head, so candidates of different keys never share
parameters, and unnamed candidates are told apart by position). The trial's reward (the final
metric, signed by ``optimize_mode``) is given at the last step; advantages are GAE(``gamma``,
``lam``) over the steps with the value head as baseline, normalised per update. Every
``trials_per_update`` results, ``epochs_per_update`` epochs of clipped PPO (``cliprange``,
``vf_coef``, ``ent_coef``, Adam ``lr``, gradient norm clipped at ``max_grad_norm``) run over
minibatches of ``minibatch_size`` trials (``tuners.ppo_learner``).

The policy cannot collapse: as in ENAS's controller, every head's logits are bounded by
``tanh_constant * tanh(logits / tanh_constant)``, so no option's probability falls below
``1 / (1 + (k - 1) e^(2 tanh_constant))`` (1.6 % of a 4-way choice at the default 1.5), and the
entropy bonus is on by default (``ent_coef`` 0.01, the usual PPO value; NNI's 0.0 let the
policy become deterministic after ~1,000 results, so that most samples were duplicates).

Never proposes an architecture twice: architectures are drawn from the policy
``samples_per_proposal`` at a time in one batched pass, and proposals take them in turn,
skipping those already tried (independent draws of the same policy, so this is drawing until an
untried one comes); when a fresh batch holds none, an untried architecture is drawn uniformly
(its log-probability under the policy is used for the update). A proposal thus costs at most
one batched pass whatever the history, usually none. Failed trials are dropped. ``import_data``
feeds results as trajectories.

Updates never hold up a proposal: the update begun by the ``trials_per_update``-th result runs
in a background thread (``tuners.ppo_learner``) on copies of the policy and optimiser, and the
tuner goes on proposing from the policy it has for ``install_lag`` (``trials_per_update // 4``,
at least 1) more proposals; the next one installs the update, waiting for it only if it is still
computing. Where the update takes effect is thus fixed by the calls, never by the thread's
timing: the same seed and calls give the same proposals. PPO's clipped ratio is taken against
the log-probabilities of the policy that drew each architecture, so the proposals drawn during
an update are learned from correctly.

The whole state (network, optimiser, torch generator, trajectories waiting for an update, the
samples not yet looked at, an update still computing as its batch and seed: all bounded in
size) is saved by ``save_checkpoint`` as JSON, tensors as base64 of their bytes; resuming begins
a saved pending update again, with the same result.
"""

from __future__ import annotations

import base64
from typing import Any

import torch

from nascli import space as spaces
from tuners.base import Architecture, Tuner, TunerArgumentError
from tuners.ppo_learner import (
    Adam,
    BackgroundUpdate,
    PPOSettings,
    Trajectory,
    new_optimizer,
    one_thread,
)  # fmt: skip
from tuners.ppo_policy import StepPolicy, upgrade_state

__all__ = ["PPOTuner"]


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
        samples_per_proposal: architectures drawn from the policy in one batched pass (16);
            proposals take them in turn, skipping those already tried.
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
        self.policy: StepPolicy | None = None
        self.optimizer: Adam | None = None
        # parameter_id -> (actions, log-probs, values) of outstanding proposals
        self.outstanding: dict[int, tuple[list[int], list[float], list[float]]] = {}
        # finished trajectories waiting for the next update: (actions, log-probs, values, reward)
        self.buffer: list[Trajectory] = []
        # samples drawn from the current policy and not yet looked at: (actions, log-probs,
        # values), each rows x T; emptied by an update (they are of the policy before it)
        self.samples: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.updates = 0  # updates begun
        self.proposals = 0  # proposals made
        # the update begun last, while it computes: installed before proposal ``install_at``
        self.pending: BackgroundUpdate | None = None
        self.install_at = 0

    # ------------------------------------------------------------------ search space

    def update_search_space(self, search_space: Any) -> None:
        super().update_search_space(search_space)
        self.steps = spaces.decision_steps(self.space)
        picked_before: list[list[int] | None] = []
        for t, (key, _) in enumerate(self.steps):
            spec = self.space[key]
            fixed_inputs = isinstance(spec, spaces.InputChoiceSpec) and spec.n_chosen is not None
            earlier = [s for s in range(t) if self.steps[s][0] == key]
            picked_before.append(earlier if fixed_inputs and earlier else None)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed if self.seed is not None else 0)
            self.policy = StepPolicy(
                [n for _, n in self.steps], self.hidden_size, picked_before, self.tanh_constant
            )
        self.optimizer = new_optimizer(self.policy, self.lr)
        self.samples = None
        self.pending = None

    @property
    def settings(self) -> PPOSettings:
        return PPOSettings(
            epochs=self.epochs_per_update, minibatch_size=self.minibatch_size, lr=self.lr,
            cliprange=self.cliprange, vf_coef=self.vf_coef, ent_coef=self.ent_coef,
            max_grad_norm=self.max_grad_norm, gamma=self.gamma, lam=self.lam,
        )  # fmt: skip

    @property
    def install_lag(self) -> int:
        """Proposals made from the policy before an update after the update begins."""
        return max(1, self.trials_per_update // 4)

    # ------------------------------------------------------------------ policy

    def _run(
        self, actions: torch.Tensor | None, samples: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (``actions`` None, batch ``samples``) or evaluate given actions (B x T).
        Returns (actions, log-probs, entropies, values), each B x T (no entropies when
        sampling: zeros)."""
        assert self.policy is not None
        if actions is None:
            taken, logps, values = self.policy.sample(samples, self.generator)
            return taken, logps, torch.zeros_like(logps), values
        logps, entropies, values = self.policy.evaluate(actions)
        return actions, logps, entropies, values

    def _arch_from_actions(self, actions: list[int]) -> Architecture:
        choices = spaces.choices_from_actions(self.space, actions)
        return tuple(v if isinstance(v, int) else tuple(v) for v in (choices[k] for k in self.keys))

    def _actions_from_arch(self, arch: Architecture) -> list[int]:
        return spaces.actions_from_choices(self.space, dict(zip(self.keys, arch, strict=True)))

    def _evaluate(self, actions: list[int]) -> tuple[list[float], list[float]]:
        with torch.no_grad(), one_thread():
            _, logps, _, values = self._run(torch.tensor([actions]))
        return logps[0].tolist(), values[0].tolist()

    def _draw_samples(self) -> None:
        """Replace the samples not looked at by ``samples_per_proposal`` new ones."""
        assert self.policy is not None
        with torch.no_grad(), one_thread():
            self.samples = self.policy.sample(self.samples_per_proposal, self.generator)

    def _take_sample(self) -> tuple[list[int], list[float], list[float]] | None:
        """The oldest sample not looked at yet (removed from ``samples``), or None."""
        if self.samples is None or self.samples[0].shape[0] == 0:
            return None
        taken, logps, values = self.samples
        self.samples = (taken[1:], logps[1:], values[1:])
        return taken[0].tolist(), logps[0].tolist(), values[0].tolist()

    # ------------------------------------------------------------------ tuner hooks

    def _propose(self, parameter_id: int) -> Architecture:
        if self.pending is not None and self.proposals >= self.install_at:
            self.install_update()
        self.proposals += 1
        # The samples are independent draws of the current policy, so taking the next untried
        # one is drawing from the policy until an untried architecture comes, at one batched
        # pass per ``samples_per_proposal`` samples looked at. At most one new batch per
        # proposal; when all of it is tried, an untried architecture is drawn uniformly.
        for fresh in (False, True):
            if fresh:
                self._draw_samples()
            while (sample := self._take_sample()) is not None:
                arch = self._arch_from_actions(sample[0])
                if arch not in self.tried:
                    self.outstanding[parameter_id] = sample
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
            self._begin_update()

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        super().trial_end(parameter_id, success, **kwargs)
        self.outstanding.pop(parameter_id, None)  # a failed trial teaches nothing

    # ------------------------------------------------------------------ PPO

    def _begin_update(self) -> None:
        """Start an update from the buffer in the background (after installing the one before
        it, which this one builds on). Its minibatch order comes from a seed drawn now, so the
        result depends only on the calls made, never on the thread's timing."""
        if self.pending is not None:
            self.install_update()
        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        self._start(self.buffer, seed)
        self.buffer = []
        self.install_at = self.proposals + self.install_lag
        self.updates += 1

    def _start(self, batch: list[Trajectory], seed: int) -> None:
        assert self.policy is not None and self.optimizer is not None
        self.pending = BackgroundUpdate(self.policy, self.optimizer, batch, seed, self.settings)

    def install_update(self) -> None:
        """Wait for the update computing in the background, if any, and propose from its policy
        from now on (samples drawn from the policy before it are dropped). ``generate_parameters``
        does this itself when the update is due; call it to read the newest policy."""
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        self.policy, self.optimizer = pending.result()
        self.samples = None

    # ------------------------------------------------------------------ checkpoint

    def _save_own(self) -> Any:
        assert self.policy is not None and self.optimizer is not None
        return {
            "policy": {k: _to_json(v) for k, v in self.policy.state_dict().items()},
            "optimizer": _to_json(self.optimizer.state_dict()),
            "generator": self.generator.get_state().tolist(),
            "outstanding": [[pid, *t] for pid, t in self.outstanding.items()],
            "buffer": [list(b) for b in self.buffer],
            "samples": None if self.samples is None else [_to_json(t) for t in self.samples],
            "updates": self.updates,
            "proposals": self.proposals,
            # an update still computing is saved as what it computes from: resuming begins it
            # again from the same policy, optimiser, batch and seed, so it gives the same result
            "pending": None
            if self.pending is None
            else {
                "batch": [list(b) for b in self.pending.batch],
                "seed": self.pending.seed,
                "install_at": self.install_at,
            },
        }

    def _load_own(self, state: Any) -> None:
        assert self.policy is not None and self.optimizer is not None
        policy = {k: _tensor(v) for k, v in state["policy"].items()}
        upgraded = upgrade_state(policy, [n for _, n in self.steps])
        self.policy.load_state_dict(upgraded)
        self.optimizer = new_optimizer(self.policy, self.lr)
        moments = _from_json(state["optimizer"])
        if "steps" in moments:
            self.optimizer.load_state_dict(moments)
        # else an earlier layout (torch.optim's Adam, one head per parameter): moments restart
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self.outstanding = {int(p): (a, lp, v) for p, a, lp, v in state["outstanding"]}
        self.buffer = [(a, lp, v, float(r)) for a, lp, v, r in state["buffer"]]
        samples = state.get("samples")
        self.samples = None if samples is None else tuple(_tensor(t) for t in samples)
        self.updates = int(state["updates"])
        self.proposals = int(state.get("proposals", 0))
        self.pending = None
        pending = state.get("pending")
        if pending is not None:
            batch = [(a, lp, v, float(r)) for a, lp, v, r in pending["batch"]]
            self._start(batch, int(pending["seed"]))
            self.install_at = int(pending["install_at"])


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
