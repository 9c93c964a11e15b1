"""``EnasMutator``: the ENAS controller as a stand-alone mutator (NNI v1.9's
``nni.nas.pytorch.enas.EnasMutator``, with its constructor arguments).

An LSTM walks the model's mutables in pre-order (one decision per key; a scope's children come
before the scope ends). Each mutable leaves an *anchor*, the LSTM output at its step (for a scope,
at its end: an extra LSTM step there with ``cell_exit_extra_step``).

- A layer choice: logits from a head of its own (so layer choices may have different candidate
  counts, which NNI refused), a categorical sample, whose embedding feeds the next step. With
  ``branch_bias``, choices whose key contains ``"reduce"`` favour candidates whose class name
  contains ``"conv"`` by ``+branch_bias`` and the others by ``-branch_bias`` (NNI's heuristic).
- An input choice: attention of the current output over the anchors of its ``choose_from``
  entries (learned anchors for ``""`` entries). ``n_chosen=k`` picks ``k`` distinct inputs
  (NNI allowed only 1); ``n_chosen=None`` takes each input with probability sigmoid(score) and
  adds the KL divergence from ``skip_target`` to ``sample_skip_penalty``.
- Logits are divided by ``temperature`` (when given), then squashed by ``tanh_constant`` x tanh.

After ``reset()``, ``sample_log_prob``, ``sample_entropy`` (summed, or averaged per decision with
``entropy_reduction="mean"``) and ``sample_skip_penalty`` hold the sample's statistics, with
their autograd graph, for REINFORCE. ``export()`` is the controller's most likely architecture
(greedy decoding; NNI exported one more random sample). ``reset()`` draws from the global torch
RNG (``generator``, when set, instead).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nascli.errors import UsageError
from nascli.nas.mutables import InputChoice, LayerChoice, MutableScope
from nascli.nas.mutator import Mutator, StructuredMutableTreeNode

__all__ = ["EnasMutator"]


def _name(key: str) -> str:
    return key.replace(".", "\N{ONE DOT LEADER}")


class EnasMutator(Mutator):
    """Args as NNI v1.9's: ``model``, ``lstm_size`` (64), ``lstm_num_layers`` (1),
    ``tanh_constant`` (1.5; None: no squashing), ``cell_exit_extra_step`` (False),
    ``skip_target`` (0.4), ``temperature`` (None), ``branch_bias`` (0.25),
    ``entropy_reduction`` (``"sum"`` | ``"mean"``)."""

    def __init__(
        self,
        model: nn.Module,
        lstm_size: int = 64,
        lstm_num_layers: int = 1,
        tanh_constant: float | None = 1.5,
        cell_exit_extra_step: bool = False,
        skip_target: float = 0.4,
        temperature: float | None = None,
        branch_bias: float = 0.25,
        entropy_reduction: str = "sum",
    ):
        super().__init__(model)
        if entropy_reduction not in ("sum", "mean"):
            raise UsageError(
                f"entropy_reduction must be 'sum' or 'mean', got {entropy_reduction!r}"
            )
        if not 0.0 < skip_target < 1.0:
            raise UsageError(f"skip_target must be between 0 and 1, got {skip_target!r}")
        self.lstm_size = lstm_size
        self.tanh_constant = tanh_constant
        self.cell_exit_extra_step = cell_exit_extra_step
        self.skip_target = skip_target
        self.temperature = temperature
        self.branch_bias = branch_bias
        self.entropy_reduction = entropy_reduction
        self.generator: torch.Generator | None = None
        self.lstm = nn.LSTM(lstm_size, lstm_size, lstm_num_layers)
        self.g_emb = nn.Parameter(1e-3 * torch.randn(1, lstm_size))
        self.heads = nn.ModuleDict()
        self.embeddings = nn.ModuleDict()
        self.no_key_anchors = nn.ParameterDict()
        for mutable in self.mutables:
            if isinstance(mutable, LayerChoice):
                self.heads[_name(mutable.key)] = nn.Linear(lstm_size, len(mutable), bias=False)
                self.embeddings[_name(mutable.key)] = nn.Embedding(len(mutable), lstm_size)
            elif isinstance(mutable, InputChoice):
                self.no_key_anchors[_name(mutable.key)] = nn.Parameter(
                    1e-3 * torch.randn(mutable.n_candidates, lstm_size)
                )
        self.attn_anchor = nn.Linear(lstm_size, lstm_size, bias=False)
        self.attn_query = nn.Linear(lstm_size, lstm_size, bias=False)
        self.v_attn = nn.Linear(lstm_size, 1, bias=False)
        zero = torch.zeros(())
        self.sample_log_prob, self.sample_entropy, self.sample_skip_penalty = zero, zero, zero

    # ------------------------------------------------------------------ the Mutator contract

    def sample_search(self) -> dict[str, Any]:
        decisions, stats = self._sample(greedy=False, generator=self.generator)
        self.sample_log_prob, self.sample_entropy, self.sample_skip_penalty = stats
        return decisions

    def sample_final(self) -> dict[str, Any]:
        with torch.no_grad():
            return self._sample(greedy=True, generator=None)[0]

    @torch.no_grad()
    def probabilities(self, samples: int = 256) -> dict[str, list[float]]:
        """Per key, how often each candidate is chosen over ``samples`` samples from a private
        generator (the global RNG and the current decisions are untouched)."""
        generator = torch.Generator().manual_seed(0)
        counts: dict[str, torch.Tensor] = {}
        for _ in range(samples):
            decisions, _ = self._sample(greedy=False, generator=generator)
            for key, mask in decisions.items():
                counts[key] = counts.get(key, torch.zeros(len(mask))) + mask.float()
        return {key: (c / samples).tolist() for key, c in sorted(counts.items())}

    # ------------------------------------------------------------------ sampling

    def _sample(self, greedy: bool, generator: torch.Generator | None) -> tuple[dict, tuple]:
        device = self.g_emb.device
        layers = self.lstm.num_layers
        self._state = (torch.zeros(layers, 1, self.lstm_size, device=device),) * 2
        self._input = self.g_emb.view(1, -1)  # a view: not registered as a parameter
        self._output = self._state[0][-1]
        self._anchors: dict[str, torch.Tensor] = {}
        self._greedy, self._generator = greedy, generator
        self._log_prob = torch.zeros((), device=device)
        self._entropy = torch.zeros((), device=device)
        self._skip = torch.zeros((), device=device)
        self._count = 0
        decisions: dict[str, torch.Tensor] = {}
        self._walk(self.mutables, set(), decisions)
        entropy = (
            self._entropy / max(self._count, 1)
            if self.entropy_reduction == "mean"
            else (self._entropy)
        )
        return decisions, (self._log_prob, entropy, self._skip)

    def _walk(self, node: StructuredMutableTreeNode, memo: set[str], decisions: dict) -> None:
        for child in node.children:
            mutable = child.mutable
            assert mutable is not None
            if mutable.key in memo:
                continue
            memo.add(mutable.key)
            if isinstance(mutable, MutableScope):
                self._walk(child, memo, decisions)
                self._anchors[mutable.key] = (
                    self._step() if self.cell_exit_extra_step else self._last_output()
                )
            elif isinstance(mutable, LayerChoice):
                decisions[mutable.key] = self._layer_choice(mutable)
            elif isinstance(mutable, InputChoice):
                decisions[mutable.key] = self._input_choice(mutable)

    def _step(self) -> torch.Tensor:
        out, self._state = self.lstm(self._input.view(1, 1, -1), self._state)
        self._output = out[0]
        return self._output

    def _last_output(self) -> torch.Tensor:
        return self._output

    def _shape(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def _draw(self, probs: torch.Tensor) -> int:
        if self._greedy:
            return int(probs.argmax())
        return int(torch.multinomial(probs.detach().cpu(), 1, generator=self._generator))

    def _layer_choice(self, mutable: LayerChoice) -> torch.Tensor:
        h = self._step()
        logits = self._shape(self.heads[_name(mutable.key)](h)[0])
        if self.branch_bias and "reduce" in mutable.key:
            bias = [self.branch_bias if "conv" in type(c).__name__.lower() else -self.branch_bias
                    for c in mutable]  # fmt: skip
            logits = logits + torch.tensor(bias, device=logits.device, dtype=logits.dtype)
        dist = torch.distributions.Categorical(logits=logits)
        action = self._draw(dist.probs)
        index = torch.tensor(action, device=logits.device)
        self._log_prob = self._log_prob + dist.log_prob(index)
        self._entropy = self._entropy + dist.entropy()
        self._count += 1
        self._input = self.embeddings[_name(mutable.key)](index).unsqueeze(0)
        self._anchors[mutable.key] = h
        mask = torch.zeros(len(mutable), dtype=torch.bool)
        mask[action] = True
        return mask

    def _input_choice(self, mutable: InputChoice) -> torch.Tensor:
        h = self._step()
        own = self.no_key_anchors[_name(mutable.key)]
        anchors = torch.stack([
            own[i] if label == InputChoice.NO_KEY or label not in self._anchors
            else self._anchors[label].reshape(-1)
            for i, label in enumerate(mutable.choose_from)
        ])  # fmt: skip
        scores = self.v_attn(torch.tanh(self.attn_anchor(anchors) + self.attn_query(h)))
        logits = self._shape(scores.view(-1))
        mask = torch.zeros(mutable.n_candidates, dtype=torch.bool)
        if mutable.n_chosen is None:
            probs = torch.sigmoid(logits)
            if self._greedy:
                take = (probs > 0.5).cpu()
            else:
                take = torch.bernoulli(probs.detach().cpu(), generator=self._generator).bool()
            dist = torch.distributions.Bernoulli(probs=probs)
            self._log_prob = self._log_prob + dist.log_prob(take.to(probs)).sum()
            self._entropy = self._entropy + dist.entropy().sum()
            target = torch.full_like(probs, self.skip_target)
            kl = probs * torch.log(probs / target) + (1 - probs) * torch.log(
                (1 - probs) / (1 - target)
            )
            self._skip = self._skip + kl.sum()
            mask = take
        else:
            blocked = torch.zeros(mutable.n_candidates, dtype=torch.bool, device=logits.device)
            for _ in range(mutable.n_chosen):
                dist = torch.distributions.Categorical(logits=logits.masked_fill(blocked, -1e9))
                action = self._draw(dist.probs)
                index = torch.tensor(action, device=logits.device)
                self._log_prob = self._log_prob + dist.log_prob(index)
                self._entropy = self._entropy + dist.entropy()
                blocked = blocked.clone()
                blocked[action] = True
                mask[action] = True
        self._count += 1
        chosen = anchors[mask.to(anchors.device)]
        self._input = chosen.mean(0, keepdim=True) if len(chosen) else self.g_emb.view(1, -1)
        self._anchors[mutable.key] = h
        return mask
