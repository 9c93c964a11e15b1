"""Learning-curve extrapolation with numpy only: what a partial curve predicts at a later step.

The curve families are those of Domhan, Springenberg and Hutter (IJCAI 2015) that saturate,
each written as ``y = c + b * phi(x; theta)`` (plus the constant ``y = c``): linear in
``(c, b)`` once the shape parameters ``theta`` are fixed. So every family is fitted by variable
projection: for each ``theta`` on a log grid, ``(c, b)`` come from closed-form least squares;
the grid is refined around the best point a few times (no iterative optimiser, nothing that
fails to converge, the same answer every time). The families' predictions are averaged with
Akaike weights (small-sample corrected), the usual way to combine models with different numbers
of parameters; Domhan et al. weight theirs by MCMC, which needs seconds per fit.

``extrapolate`` takes a few milliseconds for curves of a few dozen points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["extrapolate", "FAMILIES"]


@dataclass(frozen=True)
class Family:
    """``y = c + b * phi(x; theta)``; ``theta`` (0 to 2 positive shape parameters) is searched on
    a log grid, then refined around the best grid point."""

    phi: Callable[..., np.ndarray]  # (theta_1 (m, 1), ..., x (1, n)) -> (m, n)
    low: tuple[float, ...] = ()  # log10 bounds of each shape parameter
    high: tuple[float, ...] = ()
    points: int = 40  # grid points per shape parameter

    @property
    def n_params(self) -> int:
        return 2 + len(self.low)


FAMILIES: dict[str, Family] = {
    "pow3": Family(lambda al, x: x ** (-al), (-2.0,), (1.0,), 40),  # c - a x^-alpha
    "exp3": Family(lambda al, x: np.exp(-al * x), (-3.0,), (1.0,), 40),  # c - a e^(-alpha x)
    "ilog2": Family(lambda x: 1.0 / np.log(x + 1.0)),  # c - a / log(x + 1)
    "log_linear": Family(lambda x: np.log(x)),  # c + a log x (unbounded: weighted down)
    # Morgan-Mercer-Flodin: c - a / (1 + (kappa x)^delta)
    "mmf": Family(lambda k, d, x: 1.0 / (1.0 + (k * x) ** d), (-2.5, -1.0), (0.5, 0.7), 16),
    # Weibull: c - a exp(-(kappa x)^delta)
    "weibull": Family(lambda k, d, x: np.exp(-((k * x) ** d)), (-2.5, -1.0), (0.5, 0.7), 16),
}
_REFINE_ROUNDS = 4


def _linear_fits(phi: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form least squares of ``y = c + b * phi_row`` for every row: (sse, c, b)."""
    phi_mean = phi.mean(axis=1)
    centred = phi - phi_mean[:, None]
    var = (centred**2).sum(axis=1)
    yc = y - y.mean()
    cov = centred @ yc
    b = np.where(var > 1e-15, cov / np.where(var > 1e-15, var, 1.0), 0.0)
    sse = float((yc**2).sum()) - b * cov
    return sse, y.mean() - b * phi_mean, b


def _fit(family: Family, x: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float]:
    """The least-squares fit of one family: (sum of squared errors, prediction at target)."""
    if not family.low:
        sse, c, b = _linear_fits(family.phi(x[None, :]), y)
        return max(float(sse[0]), 0.0), float(c[0] + b[0] * family.phi(np.array([[target]]))[0, 0])
    axes = [np.linspace(lo, hi, family.points) for lo, hi in zip(family.low, family.high,
                                                                  strict=True)]  # fmt: skip
    steps = [axis[1] - axis[0] for axis in axes]
    best_theta: np.ndarray | None = None
    best = (math.inf, 0.0, 0.0)
    for _ in range(_REFINE_ROUNDS + 1):
        grid = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
        thetas = [10.0 ** grid[:, j : j + 1] for j in range(grid.shape[1])]
        sse, c, b = _linear_fits(family.phi(*thetas, x[None, :]), y)
        sse = np.where(np.isfinite(sse), sse, np.inf)
        i = int(np.argmin(sse))
        if sse[i] < best[0]:
            best, best_theta = (float(sse[i]), float(c[i]), float(b[i])), grid[i]
        if best_theta is None:
            break
        # the next round: a finer grid (3 points a side) around the best point so far
        steps = [step / 2 for step in steps]
        axes = [best_theta[j] + steps[j] * np.arange(-3, 4) for j in range(len(axes))]
    if best_theta is None:
        return math.inf, math.nan
    at = family.phi(*[np.array([[10.0**t]]) for t in best_theta], np.array([[target]]))[0, 0]
    return max(best[0], 0.0), best[1] + best[2] * float(at)


def extrapolate(values: Sequence[float], target: int) -> float | None:
    """The value the curve ``values`` (results at steps 1..n; non-finite ones are left out) is
    predicted to reach at step ``target``; None with fewer than 3 finite points or when no
    family gives a finite prediction."""
    points = [(i + 1.0, v) for i, v in enumerate(values) if math.isfinite(v)]
    if len(points) < 3:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    n = len(points)
    scale = max(float(np.var(y)), 1e-12)
    scores: list[float] = []
    predictions: list[float] = []
    # the constant (a curve that has levelled off), then every family with few enough parameters
    candidates = [(float(((y - y.mean()) ** 2).sum()), float(y.mean()), 1)]
    for family in FAMILIES.values():
        if n - family.n_params - 1 > 0:
            with np.errstate(all="ignore"):
                candidates.append((*_fit(family, x, y, target), family.n_params))
    for sse, prediction, k in candidates:
        if not math.isfinite(prediction) or not math.isfinite(sse):
            continue
        # AICc; the floor keeps a perfect fit from weighing infinitely more than a near one
        sse = max(sse, 1e-9 * scale * n)
        scores.append(n * math.log(sse / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1))
        predictions.append(prediction)
    if not predictions:
        return None
    low = min(scores)
    weights = [math.exp(-(s - low) / 2) for s in scores]
    return sum(w * p for w, p in zip(weights, predictions, strict=True)) / sum(weights)
