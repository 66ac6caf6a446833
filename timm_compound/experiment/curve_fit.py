"""A saturating curve of top-1 against cost per strategy, fitted to every seed's point, with its band.

    top1(x) = A - B * (x / x0) ** -c        (x: GMACs, x0: the smallest cost on the curve, c > 0)

approaches A as cost grows (B > 0: rising to it, B < 0: falling to it), the shape of the EfficientNet
paper's Figure 3 curves. scipy.optimize.curve_fit fits it to every (cost, seed) point. The band is
a bootstrap over seeds: at each cost the seeds' values are resampled with replacement, the curve is
fitted again, and the band spans the 2.5th to 97.5th percentile of those curves. Three parameters
need three distinct costs; with one seed there is no scatter to resample, so no band.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

RESAMPLES = 200
SEED = 0


def saturating(x, asymptote: float, gap: float, rate: float, x0: float = 1.0) -> np.ndarray:
    return asymptote - gap * (np.asarray(x, dtype=float) / x0) ** -rate


def _fit(x: np.ndarray, y: np.ndarray, x0: float) -> tuple[float, float, float] | None:
    from scipy.optimize import OptimizeWarning, curve_fit

    low, high = float(y[x == x.min()].mean()), float(y[x == x.max()].mean())
    start = (high + 0.5 * (high - low), 1.5 * (high - low) or 1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # no covariance when the curve passes through the points
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            params, _ = curve_fit(lambda x, a, b, c: saturating(x, a, b, c, x0), x, y, p0=start, maxfev=5000)
        except (RuntimeError, ValueError):
            return None
    # Levenberg-Marquardt (fast, unbounded); a curve that does not saturate (c <= 0) is no fit
    return tuple(float(p) for p in params) if np.all(np.isfinite(params)) and 0 < params[2] <= 20 else None


@dataclass(frozen=True)
class Curve:
    """The fitted parameters (asymptote, gap, rate) and the points they were fitted to."""

    params: tuple[float, float, float]
    x0: float
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)

    def __call__(self, x) -> np.ndarray:
        return saturating(x, *self.params, x0=self.x0)

    def band(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray] | None:
        """(low, high) of the refitted curves at `x` over seed resamples, or None with one seed per cost."""
        costs = np.unique(self.x)
        groups = [self.y[self.x == cost] for cost in costs]
        if all(len(group) < 2 for group in groups):
            return None
        rng = np.random.default_rng(SEED)
        curves = []
        for _ in range(RESAMPLES):
            y = np.concatenate([rng.choice(group, size=len(group), replace=True) for group in groups])
            x_again = np.concatenate([np.full(len(group), cost) for cost, group in zip(costs, groups)])
            params = _fit(x_again, y, self.x0)
            if params is not None:
                curves.append(saturating(x, *params, x0=self.x0))
        if len(curves) < RESAMPLES // 2:
            return None
        tail = 100 * (1 - level) / 2
        stacked = np.stack(curves)
        return np.percentile(stacked, tail, axis=0), np.percentile(stacked, 100 - tail, axis=0)


def fit(x: list[float], y: list[float]) -> Curve | None:
    """The curve through (cost, top-1) points (a seed each), or None: fewer than 3 distinct costs, or no fit."""
    x_values, y_values = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x_values)) < 3:
        return None
    x0 = float(x_values.min())
    params = _fit(x_values, y_values, x0)
    return None if params is None else Curve(params, x0, x_values, y_values)
