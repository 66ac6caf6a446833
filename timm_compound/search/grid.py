"""The points of the coefficient search: (alpha, beta, gamma) on a step grid under alpha*beta^2*gamma^2 ~ factor.

Step 1 of the EfficientNet method (Tan & Le 2019, section 3.3): fix phi = 1, search alpha, beta,
gamma >= 1 with alpha * beta**2 * gamma**2 ~ 2. The grid starts at 1 and goes up in `step` to the
bounds; a point is a candidate when its factor lies within `tolerance` (relative) of `flops_factor`,
the same test a rule's `constraint` applies. Three single-dimension points at the same factor
(depth only, width only, resolution only) are added as references; they lie outside the bounds. The
rule's current coefficients are a candidate too (kind "current" when the grid does not hold them),
so the winner can be tested against what it would replace.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from timm_compound.errors import CompoundError

DEFAULT_STEP = 0.05
DEFAULT_BOUNDS = (1.4, 1.3, 1.3)  # alpha, beta, gamma upper bounds; 63 grid points at factor 2 +- 5%
DEFAULT_FLOPS_FACTOR = 2.0
DEFAULT_TOLERANCE = 0.05
PAPER = (1.2, 1.1, 1.15)  # EfficientNet-B0's result, a candidate of the default grid
REFERENCE_KINDS = ("depth", "width", "resolution")
CURRENT = "current"  # the kind of the rule's current coefficients when they are not a grid point
_EPS = 1e-12  # as scaling.schema.Constraint.check: float noise never excludes a point


@dataclass(frozen=True)
class Point:
    """One candidate's coefficients; `kind` is "grid" or the one dimension a reference scales."""

    alpha: float
    beta: float
    gamma: float
    kind: str = "grid"

    @property
    def factor(self) -> float:
        """alpha * beta**2 * gamma**2: the FLOPs growth per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2

    @property
    def key(self) -> str:
        """'1.2/1.1/1.15': the Optuna parameter value naming this point (stable text, 4 decimals at most)."""
        return "/".join(_text(value) for value in (self.alpha, self.beta, self.gamma))

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return self.alpha, self.beta, self.gamma


def _text(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Grid:
    """What the search spans: the grid's step and bounds, and the constraint every point meets."""

    step: float = DEFAULT_STEP
    bounds: tuple[float, float, float] = DEFAULT_BOUNDS
    flops_factor: float = DEFAULT_FLOPS_FACTOR
    tolerance: float = DEFAULT_TOLERANCE

    @classmethod
    def checked(
        cls,
        *,
        step: Any = DEFAULT_STEP,
        bounds: Any = None,
        flops_factor: Any = DEFAULT_FLOPS_FACTOR,
        tolerance: Any = DEFAULT_TOLERANCE,
    ) -> Grid:
        """A Grid from user input: each number finite and in range, or a CompoundError naming it."""
        step = _finite("step", step)
        if step <= 0:
            raise CompoundError(f"step must be > 0, got {step:g}")
        flops_factor = _finite("flops_factor", flops_factor)
        if flops_factor <= 1:
            raise CompoundError(f"flops_factor must be > 1 (each of alpha, beta, gamma is >= 1), got {flops_factor:g}")
        tolerance = _finite("tolerance", tolerance)
        if not 0 <= tolerance < 1:
            raise CompoundError(f"tolerance must be in [0, 1) (relative: 0.05 = 5%), got {tolerance:g}")
        return cls(step, _bounds(bounds), flops_factor, tolerance)

    def values(self, upper: float) -> list[float]:
        """1, 1 + step, ... up to `upper` (inclusive, up to float noise)."""
        count = math.floor((upper - 1.0) / self.step + 1e-9) + 1
        return [round(1.0 + k * self.step, 10) for k in range(count)]

    def within(self, factor: float) -> bool:
        return abs(factor / self.flops_factor - 1.0) <= self.tolerance + _EPS

    def to_dict(self) -> dict[str, Any]:
        alpha, beta, gamma = self.bounds
        return {
            "step": self.step,
            "bounds": {"alpha": alpha, "beta": beta, "gamma": gamma},
            "flops_factor": self.flops_factor,
            "tolerance": self.tolerance,
        }

    def describe(self) -> str:
        alpha, beta, gamma = (_text(b) for b in self.bounds)
        return (
            f"the {_text(self.step)} grid within alpha <= {alpha}, beta <= {beta}, gamma <= {gamma} "
            f"at alpha*beta^2*gamma^2 = {self.flops_factor:g} +- {self.tolerance:.1%}"
        )


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompoundError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _bounds(bounds: Any) -> tuple[float, float, float]:
    """None (the defaults), an (alpha, beta, gamma) triple or a {alpha, beta, gamma} mapping of upper bounds."""
    if bounds is None:
        return DEFAULT_BOUNDS
    if isinstance(bounds, dict):
        unknown = sorted(set(bounds) - {"alpha", "beta", "gamma"})
        if unknown:
            raise CompoundError(f"bounds takes alpha, beta and gamma, not {', '.join(unknown)}")
        bounds = tuple(bounds.get(name, default) for name, default in zip(("alpha", "beta", "gamma"), DEFAULT_BOUNDS))
    try:
        alpha, beta, gamma = bounds
    except (TypeError, ValueError):
        raise CompoundError(f"bounds must be (alpha, beta, gamma) upper bounds, got {bounds!r}") from None
    checked = tuple(
        _finite(f"bounds.{name}", value) for name, value in zip(("alpha", "beta", "gamma"), (alpha, beta, gamma))
    )
    for name, value in zip(("alpha", "beta", "gamma"), checked):
        if value < 1:
            raise CompoundError(f"bounds.{name} must be >= 1 (coefficients start at 1), got {value:g}")
    return checked  # type: ignore[return-value]


def references(flops_factor: float) -> list[Point]:
    """Depth only (factor, 1, 1), width only (1, sqrt(factor), 1), resolution only (1, 1, sqrt(factor))."""
    root = math.sqrt(flops_factor)
    return [Point(flops_factor, 1.0, 1.0, "depth"), Point(1.0, root, 1.0, "width"), Point(1.0, 1.0, root, "resolution")]


def grid_points(grid: Grid) -> list[Point]:
    """Every grid point meeting the constraint, in (alpha, beta, gamma) order; none is a CompoundError
    naming the closest point and its factor."""
    alphas, betas, gammas = (grid.values(upper) for upper in grid.bounds)
    every = [Point(a, b, g) for a, b, g in itertools.product(alphas, betas, gammas)]
    chosen = [point for point in every if grid.within(point.factor)]
    if not chosen:
        closest = min(every, key=lambda p: abs(p.factor / grid.flops_factor - 1.0))
        off = closest.factor / grid.flops_factor - 1.0
        raise CompoundError(
            f"no candidate: no point on {grid.describe()}; the closest is ({closest.alpha:g}, {closest.beta:g}, "
            f"{closest.gamma:g}) with alpha*beta^2*gamma^2 = {closest.factor:.4f} ({off:+.1%}); widen the bounds "
            f"or the tolerance, or make the step finer"
        )
    return chosen


def search_points(grid: Grid, current: tuple[float, float, float] | None = None) -> list[Point]:
    """The grid's points, then the three single-dimension references (a reference that is also a grid
    point is listed once, as the reference), then the rule's `current` coefficients unless listed already."""
    refs = references(grid.flops_factor)
    keys = {ref.key for ref in refs}
    points = [point for point in grid_points(grid) if point.key not in keys] + refs
    if current is not None:
        extra = Point(*(float(value) for value in current), kind=CURRENT)
        if extra.key not in {point.key for point in points}:
            points.append(extra)
    return points


def current_key(current: tuple[float, float, float] | list[float] | None) -> str | None:
    """The candidate key of the rule's current coefficients ('1.2/1.1/1.15')."""
    return None if current is None else Point(*(float(value) for value in current)).key
