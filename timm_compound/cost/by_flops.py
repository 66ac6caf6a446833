"""Planning by a FLOPs factor, closed-loop: `timm_compound.plan(base, flops=4.0, strategy="dWr")`.

A strategy promises d * w**2 * r**2 = flops (``scaling.strategies``), but blocks, channels and pixels
round: resnet50 along dWr at the open-loop phi for 4x costs 4.27x. So the plan is found along the
strategy's direction by measuring: bracket the phi where the realised MACs cross flops x the base's,
bisect to 1e-3 in phi, and keep whichever of the two plans around the crossing is closer (in ratio)
to the target. Everything else is `scaling.plan.plan`.
"""

from __future__ import annotations

import math
from typing import Any

from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError
from timm_compound.scaling import limits
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.plan import plan as open_loop

TOLERANCE = 1e-3  # the bisection stops when the bracket is this narrow in phi
STEPS = 40  # bracket doublings before giving up (the size limits stop far sooner)


def plan(base: str, phi: float | None = None, *, flops: float | None = None, **kwargs: Any) -> ScalePlan:
    """A ScalePlan (``timm_compound.scaling.plan.plan``). With `flops`, the plan along the strategy
    (`strategy=`, `alpha=`; default the rule's, compound) whose measured MACs are closest to `flops` times
    the base's: ``plan("resnet50", flops=4.0, strategy="dWr")``; `plan.flops` records the target."""
    if flops is None:
        return open_loop(base, phi, **kwargs)
    if kwargs.get("resolution") is not None:
        raise CompoundError(
            "a plan by flops chooses its own resolution along the strategy: give flops or resolution, not both"
        )
    promised = open_loop(base, phi, flops=flops, **kwargs)  # checks every argument, names the strategy
    return _closest(
        base,
        promised,
        {key: value for key, value in kwargs.items() if key not in ("coefficients", "strategy", "alpha")},
    )


def _closest(base: str, promised: ScalePlan, kwargs: dict[str, Any]) -> ScalePlan:
    along = (
        {"strategy": promised.strategy, "coefficients": promised.coefficients}
        if promised.strategy.name == "compound"
        else {"strategy": promised.strategy}
    )
    target = promised.flops * measure(open_loop(base, 0.0, **kwargs, **along)).macs
    costs: dict[float, tuple[ScalePlan, float] | None] = {}

    def at(phi: float) -> tuple[ScalePlan, float] | None:
        """(plan, MACs) at phi, or None past the size limits (too large: above any target)."""
        if phi not in costs:
            scaled = open_loop(base, phi, **{**kwargs, "allow_oversize": True}, **along)
            try:
                limits.check(scaled.size, f"{base} at phi={phi:g}")
            except CompoundError:
                costs[phi] = None
            else:
                costs[phi] = (scaled, measure(scaled).macs)
        return costs[phi]

    def above(phi: float) -> bool:
        found = at(phi)
        return found is None or found[1] >= target

    lo = hi = promised.phi
    step = max(0.25, abs(promised.phi) / 4)
    for _ in range(STEPS):
        if above(hi) and not above(lo):
            break
        if above(lo):
            lo -= step
        if not above(hi):
            hi += step
        step *= 2
    else:
        raise CompoundError(
            f"no plan of {base} along {promised.strategy.label()} reaches {promised.flops:g}x "
            "the base's MACs (rounding or the rule's limits hold it back)"
        )
    while hi - lo > TOLERANCE:
        middle = (lo + hi) / 2
        lo, hi = (lo, middle) if above(middle) else (middle, hi)
    found = [point for point in (at(lo), at(hi)) if point is not None]
    chosen, _ = min(found, key=lambda point: abs(math.log(point[1] / target)))
    if not kwargs.get("allow_oversize"):
        limits.check(chosen.size, f"{base} at phi={chosen.phi:g}")
    return chosen.model_copy(update={"flops": promised.flops})
