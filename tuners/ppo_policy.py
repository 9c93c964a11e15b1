"""PPOTuner's policy network: an LSTM over an architecture's decision steps
(``nascli.space.decision_steps``), one output head per step, a value head.

Two passes, both batched over architectures and free of ``torch.distributions``:

* ``sample(n, generator)`` draws ``n`` architectures step by step (each step reads the previous
  step's action, so sampling is sequential in the steps) and returns their actions, log-probs and
  values. ``PPOTuner`` calls it once per batch of proposals.
* ``evaluate(actions)`` scores given actions (teacher forcing) in one pass over all steps: the
  LSTM runs over the whole sequence in one call and every head is one slice of a padded weight
  tensor, so an evaluation is a fixed handful of tensor operations whatever the number of steps.
  ``PPOTuner``'s update calls it once per minibatch.

Every head's logits are bounded by ``tanh_constant * tanh(logits / tanh_constant)`` (ENAS's
controller; 0 = unbounded). For a step of an ``n_chosen: k`` input choice, the inputs picked at
the earlier steps of the same key are masked out.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional

__all__ = ["StepPolicy", "upgrade_state"]


class StepPolicy(nn.Module):
    """The policy over ``step_sizes`` (options per step); ``picked_before[t]``: for a step of an
    ``n_chosen: k`` input choice, the earlier steps of its key (else None)."""

    def __init__(
        self,
        step_sizes: list[int],
        hidden: int,
        picked_before: list[list[int] | None],
        tanh_constant: float,
    ):
        super().__init__()
        self.step_sizes = list(step_sizes)
        self.picked_before = picked_before
        self.tanh_constant = tanh_constant
        steps, width = len(step_sizes), max(step_sizes)
        self.offsets = torch.tensor([sum(step_sizes[:t]) for t in range(steps)])
        # True where a head has no option (heads are padded to the widest step)
        self.padding = torch.arange(width)[None, :] >= torch.tensor(step_sizes)[:, None]
        self.start = nn.Parameter(torch.zeros(hidden))
        self.embed = nn.Embedding(max(1, sum(step_sizes)), hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        # nn.Linear's initialisation, per head, padded rows zero (they never get a gradient)
        bound = 1 / math.sqrt(hidden)
        self.head_weight = nn.Parameter(torch.empty(steps, width, hidden).uniform_(-bound, bound))
        self.head_bias = nn.Parameter(torch.empty(steps, width).uniform_(-bound, bound))
        with torch.no_grad():
            self.head_weight.masked_fill_(self.padding[:, :, None], 0.0)
            self.head_bias.masked_fill_(self.padding, 0.0)
        self.value = nn.Linear(hidden, 1)

    @property
    def hidden_size(self) -> int:
        return self.lstm.hidden_size

    def _bound(self, logits: torch.Tensor) -> torch.Tensor:
        if self.tanh_constant > 0:
            return self.tanh_constant * torch.tanh(logits / self.tanh_constant)
        return logits

    def sample(
        self, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` architectures drawn from the policy: (actions, log-probs, values), each n x T."""
        steps = len(self.step_sizes)
        hidden = self.hidden_size
        state = (torch.zeros(1, n, hidden), torch.zeros(1, n, hidden))
        x = self.start.expand(n, 1, hidden)
        taken = torch.zeros(n, steps, dtype=torch.long)
        logps = torch.empty(n, steps)
        outs = []
        for t, size in enumerate(self.step_sizes):
            out, state = self.lstm(x, state)
            out = out[:, 0]
            outs.append(out)
            logits = self._bound(
                torch.addmm(self.head_bias[t, :size], out, self.head_weight[t, :size].t())
            )
            earlier = self.picked_before[t]
            if earlier:
                picked = torch.zeros(n, size, dtype=torch.bool)
                picked.scatter_(1, taken[:, earlier], True)
                logits = logits.masked_fill(picked, float("-inf"))
            log_probs = functional.log_softmax(logits, dim=-1)
            action = torch.multinomial(log_probs.exp(), 1, generator=generator)
            taken[:, t] = action[:, 0]
            logps[:, t] = log_probs.gather(1, action)[:, 0]
            x = self.embed(action + self.offsets[t])
        values = self.value(torch.stack(outs, 1))[..., 0]
        return taken, logps, values

    def evaluate(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Given actions (B x T): (log-probs, entropies, values), each B x T, differentiable."""
        batch, steps = actions.shape
        x = self.start.expand(batch, 1, self.hidden_size)
        if steps > 1:
            x = torch.cat([x, self.embed(actions[:, :-1] + self.offsets[:-1])], 1)
        out, _ = self.lstm(x)
        logits = self._bound(
            torch.einsum("bth,twh->btw", out, self.head_weight) + self.head_bias
        )
        mask = self.padding.expand(batch, -1, -1).clone()
        for t, earlier in enumerate(self.picked_before):
            if earlier:
                mask[:, t].scatter_(1, actions[:, earlier], True)
        logits = logits.masked_fill(mask, float("-inf"))
        log_probs = functional.log_softmax(logits, dim=-1)
        logps = log_probs.gather(2, actions[..., None])[..., 0]
        # masked options have probability 0; 0 * -inf would be nan, so their term is 0
        entropies = -(log_probs.exp() * log_probs.masked_fill(mask, 0.0)).sum(-1)
        values = self.value(out)[..., 0]
        return logps, entropies, values


def upgrade_state(state: dict[str, torch.Tensor], step_sizes: list[int]) -> dict[str, Any]:
    """A state dict of the earlier layout (an ``LSTMCell`` named ``cell``, one ``nn.Linear`` per
    head in ``heads``) in this one's; a current state dict is returned as it is."""
    if "head_weight" in state:
        return state
    width = max(step_sizes)
    upgraded = {k: v for k, v in state.items() if not k.startswith(("cell.", "heads."))}
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        upgraded[f"lstm.{name}_l0"] = state[f"cell.{name}"]
    hidden = state["cell.weight_hh"].shape[1]
    weight = torch.zeros(len(step_sizes), width, hidden)
    bias = torch.zeros(len(step_sizes), width)
    for t, size in enumerate(step_sizes):
        weight[t, :size] = state[f"heads.{t}.weight"]
        bias[t, :size] = state[f"heads.{t}.bias"]
    upgraded["head_weight"], upgraded["head_bias"] = weight, bias
    return upgraded
