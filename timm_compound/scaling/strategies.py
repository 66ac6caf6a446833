"""Scaling strategies: how a FLOPs growth s is shared between depth, width and resolution.

Every strategy is a triple of exponents (e_d, e_w, e_r) with d = s**e_d, w = s**e_w, r = s**e_r and
e_d + 2*e_w + 2*e_r = 1, so d * w**2 * r**2 = s whatever the strategy. With the rule's constraint
F = alpha * beta**2 * gamma**2 and phi = log(s) / log(F), each is an ordinary set of compound
coefficients (F**e_d, F**e_w, F**e_r): a plan at phi along any strategy is a plan with those
coefficients, and a published plan reproduces from them.

    compound    the rule's (or the caller's) alpha, beta, gamma
    dWr         e = ((1 - a) / 2, a / 2, (1 - a) / 4): a share `a` of the growth to width, the rest
                to depth and resolution equally (Dollar, Singh and Girshick, "Fast and Accurate
                Model Scaling", CVPR 2021; pycls's `scaling_factors("d1_w8_r1", s)` at a = 0.8)
    depth       e = (1, 0, 0);   width  e = (0, 1/2, 0);   resolution  e = (0, 0, 1/2)
"""

from __future__ import annotations

import math

from timm_compound.errors import CompoundError
from timm_compound.scaling.schema import COEFFICIENT_OF, STRATEGIES, Coefficients, Rule, Strategy, scaled_by


def exponents(strategy: Strategy) -> tuple[float, float, float]:
    """(e_d, e_w, e_r) of a non-compound strategy: d = s**e_d, w = s**e_w, r = s**e_r.

    >>> [round(e, 3) for e in exponents(Strategy(name="dWr"))]
    [0.1, 0.4, 0.05]
    """
    if strategy.name == "dWr":
        a = strategy.share
        found = ((1 - a) / 2, a / 2, (1 - a) / 4)
    else:
        found = {"depth": (1.0, 0.0, 0.0), "width": (0.0, 0.5, 0.0), "resolution": (0.0, 0.0, 0.5)}[strategy.name]
    assert math.isclose(found[0] + 2 * found[1] + 2 * found[2], 1.0), found  # d * w^2 * r^2 == s
    return found


def choose(strategy: str | Strategy | None, alpha: float | None, rule: Rule) -> Strategy:
    """The strategy a call asks for (a name and dWr's alpha), else the rule's."""
    if strategy is None:
        if alpha is not None:
            if rule.strategy.name != "dWr":
                raise CompoundError(
                    f"alpha={alpha!r} is dWr's share of the growth given to width: give "
                    "strategy='dWr' (or a rule whose strategy is dWr)"
                )
            strategy = Strategy(name="dWr", alpha=alpha)
        else:
            return rule.strategy
    if isinstance(strategy, Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise CompoundError(f"unknown strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")
    if alpha is not None and (
        isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha)
    ):
        raise CompoundError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    if strategy == "dWr" and alpha is None and rule.strategy.name == "dWr":
        return rule.strategy
    try:
        return Strategy(name=strategy, alpha=alpha)
    except ValueError as error:  # pydantic's ValidationError is a ValueError: say it in one line
        first = error.errors()[0]["msg"] if hasattr(error, "errors") else str(error)
        raise CompoundError(first.removeprefix("Value error, ")) from None


def coefficients(strategy: Strategy, rule: Rule, compound: Coefficients) -> Coefficients:
    """The coefficients that scale along `strategy` under the rule's constraint (compound: `compound`)."""
    if strategy.name == "compound":
        return compound
    factor = rule.constraint.flops_factor
    e_d, e_w, e_r = exponents(strategy)
    return Coefficients(alpha=factor**e_d, beta=factor**e_w, gamma=factor**e_r)


def refuse_fixed(strategy: Strategy, chosen: Coefficients, rule: Rule, source: str) -> None:
    """A strategy (or compound coefficients) that grows a dimension the rule fixes is refused with the reason."""
    fixed = rule.fixed()
    for part in scaled_by(strategy.name):
        if part in fixed:
            raise CompoundError(f"strategy {strategy.label()} scales {part}, but rule {source} fixes it: {fixed[part]}")
    for part, reason in fixed.items():
        name = COEFFICIENT_OF[part]
        if getattr(chosen, name) != 1.0:
            raise CompoundError(f"{name}={getattr(chosen, name):g} scales {part}, but rule {source} fixes it: {reason}")


def phi_for(flops: float, chosen: Coefficients) -> float:
    """The phi at which these coefficients promise `flops` times the base's FLOPs."""
    growth = chosen.flops_factor
    if growth <= 1.0:
        raise CompoundError("these coefficients do not grow the model: alpha * beta^2 * gamma^2 = 1")
    return math.log(flops) / math.log(growth)
