"""Cost of a DARTS search step: nascli's DartsTrainer against a hand-written plain-PyTorch DARTS
loop on the same supernet (examples/oneshot/digits_space.py, 16 channels, 8x8 digits, batch 64),
first and second order, side by side in one run.

The hand-written loop is the fair one: its architecture step computes the architecture
gradients only (``torch.autograd.grad`` over the alphas; a ``.backward()`` would also compute the
weight gradients the step throws away, ~9 % of the step), as a careful DARTS implementation does.

Each variant runs in its own subprocess (so its peak resident memory is its own), interleaved
round by round; the figure is the median ms per step (architecture step + weight step) over the
rounds, after warm-up steps.

    python benchmarks/oneshot_step.py [--rounds 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "oneshot"))
from digits_space import OPS, DigitsNet, accuracy, candidates, digits  # noqa: E402

VARIANTS = ("plain-first", "nascli-first", "plain-second", "nascli-second")
KEYS = ("block1", "block2", "block3")


class HandDarts(nn.Module):
    """The digits supernet written by hand: explicit alphas, explicit mixtures."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.blocks = nn.ModuleDict({k: nn.ModuleList(candidates(channels).values()) for k in KEYS})
        self.classifier = nn.Linear(channels, 10)
        self.alphas = {k: (1e-3 * torch.randn(len(OPS))).requires_grad_() for k in KEYS}
        self.alphas["skip"] = (1e-3 * torch.randn(2)).requires_grad_()

    def mix(self, key: str, x: torch.Tensor) -> torch.Tensor:
        w = F.softmax(self.alphas[key], -1)
        return sum(wi * op(x) for wi, op in zip(w, self.blocks[key], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.mix("block1", s)
        w = F.softmax(self.alphas["skip"], -1)
        b = self.mix("block2", a) + w[0] * s + w[1] * a
        return self.classifier(self.mix("block3", b).mean((2, 3)))


def plain_second_order(model, optimizer, train, val, xi) -> None:
    """dalpha = dL_val(w')/dalpha - xi * Hv with a finite-difference Hessian-vector product."""
    (x, y), (vx, vy) = train, val
    weights = list(model.parameters())
    alphas = list(model.alphas.values())
    backup = [w.detach().clone() for w in weights]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
    with torch.no_grad():
        for w, g in zip(weights, grads, strict=True):
            buf = optimizer.state.get(w, {}).get("momentum_buffer")
            w.sub_(xi * (g + 3e-4 * w + (0.9 * buf if buf is not None else 0)))
    out = torch.autograd.grad(F.cross_entropy(model(vx), vy), alphas + weights)
    d_alpha, v = out[: len(alphas)], out[len(alphas) :]
    eps = 0.01 / float(torch.cat([g.reshape(-1) for g in v]).norm())
    hessian = [torch.zeros_like(a) for a in alphas]
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, b, g in zip(weights, backup, v, strict=True):
                w.copy_(b + sign * eps * g)
        for h, g in zip(hessian, torch.autograd.grad(F.cross_entropy(model(x), y), alphas),
                        strict=True):  # fmt: skip
            h.add_(sign * g / (2 * eps))
    with torch.no_grad():
        for w, b in zip(weights, backup, strict=True):
            w.copy_(b)
    for a, d, h in zip(alphas, d_alpha, hessian, strict=True):
        a.grad = d - xi * h


def run_variant(variant: str, steps: int, warmup: int) -> dict[str, float]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train_set, _ = digits(0)
    x, y = train_set.tensors
    full = [(x[i : i + 64], y[i : i + 64]) for i in range(0, len(y) - 63, 64)]
    batches = [full[i % len(full)] for i in range(2 * (steps + warmup))]
    second = variant.endswith("second")
    if variant.startswith("plain"):
        model = HandDarts()
        optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
        alphas = list(model.alphas.values())
        ctrl = torch.optim.Adam(alphas, 3e-3, betas=(0.5, 0.999),
                                weight_decay=1e-3)  # fmt: skip

        def step(train, val):
            ctrl.zero_grad()
            if second:
                plain_second_order(model, optimizer, train, val, 0.05)
            else:  # architecture gradients only, as a first-order DARTS step needs
                loss = F.cross_entropy(model(val[0]), val[1])
                for a, g in zip(alphas, torch.autograd.grad(loss, alphas), strict=True):
                    a.grad = g
            ctrl.step()
            optimizer.zero_grad()
            F.cross_entropy(model(train[0]), train[1]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
    else:
        from nascli.nas.oneshot import DartsTrainer

        model = DigitsNet()
        optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
        trainer = DartsTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, 1, train_set,
                               batch_size=64, arc_learning_rate=3e-3, unrolled=second)  # fmt: skip
        weights = [p for p in model.parameters() if p.requires_grad]

        def step(train, val):
            trainer._arch_batches = iter([val])
            trainer.before_weight_step(0, *train)
            optimizer.zero_grad(set_to_none=True)
            trainer.weight_step(trainer.loss(model(train[0]), train[1]), weights)

    for i in range(warmup):
        step(batches[2 * i], batches[2 * i + 1])
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(batches[2 * i], batches[2 * i + 1])
    elapsed = time.perf_counter() - start
    return {"ms_per_step": elapsed / steps * 1000,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.warmup)))
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--steps", str(args.steps),
                 "--warmup", str(args.warmup)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {v: statistics.median(r["ms_per_step"] for r in rs) for v, rs in results.items()}
    rss = {v: max(r["peak_rss_mb"] for r in rs) for v, rs in results.items()}
    print(f"DARTS search step, digits supernet, batch 64, 1 thread; median of {args.rounds} "
          f"rounds x {args.steps} steps")  # fmt: skip
    print(f"{'variant':16}{'ms/step':>10}{'peak RSS MB':>14}")
    for v in VARIANTS:
        print(f"{v:16}{med[v]:10.1f}{rss[v]:14.0f}")
    for order in ("first", "second"):
        ours, plain = f"nascli-{order}", f"plain-{order}"
        print(f"ratio nascli/plain, {order} order: time {med[ours] / med[plain]:.3f}, "
              f"peak memory {rss[ours] / rss[plain]:.3f}")
    print("(peak RSS includes the ~400 MB torch runtime every variant loads)")


if __name__ == "__main__":
    main()
