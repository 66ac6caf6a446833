"""Each strategy's direction in (d, w, r), and its variant that really costs a budget.

A strategy is a set of compound coefficients, so every model is an ordinary plan at some phi.
With F the rule's constraint (alpha * beta**2 * gamma**2 = F, 2 for the shipped rules):

    depth       alpha = F,        beta = 1,        gamma = 1
    width       alpha = 1,        beta = sqrt(F),  gamma = 1
    resolution  alpha = 1,        beta = 1,        gamma = sqrt(F)
    compound    the rule's alpha, beta, gamma (or the caller's)
    dWr         alpha = F**((1-a)/2), beta = F**(a/2), gamma = F**((1-a)/4), a share a = 0.8 of the
                growth to width (fast compound scaling, ``timm_compound.scaling.strategies``)

Each meets the rule's constraint exactly, so phi promises the same ideal cost F**phi along every
direction, and phi-scheduled constructor arguments (dropout) follow cost alike. Pixels grow from
the experiment's base resolution (not the rule's), in the rule's steps (`resolution.divisor`,
`rounding`, `min`, `max`).

Rounding makes real cost a step function of phi, so the search is closed-loop: each candidate is
built on the meta device exactly as it will be trained (the dataset's class count, its pixels) and
counted; bisection finds the edge where cost crosses budget x base cost, and of the plans on
either side of it the one closer to the budget (in ratio) is taken. Further off than `tolerance`
is an error before anything is trained, and so is a direction the rule cannot scale at all (a
depth-only experiment on a rule whose stages are all `fixed_stages`, or whose depth is `fixed`: the
rule's reason is quoted).

With ``cost="latency"`` (`equal_latency`) the budget is a multiple of the base's measured latency
on this machine: MACs guess and timings decide where each direction crosses it
(``cost.latency_search``), and of the timed networks either side the closer (in ratio) is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from timm_compound.cost.complexity import Complexity
from timm_compound.cost.latency import Latency, LatencySettings, time_plan
from timm_compound.cost.latency_search import Direction, Search
from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.experiment.results import BASE, Variant
from timm_compound.hub.load import build
from timm_compound.scaling import limits, rounding
from timm_compound.scaling import strategies as scaling_strategies
from timm_compound.scaling.meta_device import fast_meta
from timm_compound.scaling.plan import ScalePlan, base_resolution
from timm_compound.scaling.plan import plan as make_plan
from timm_compound.scaling.rulebook import active_rules
from timm_compound.scaling.schema import STRATEGIES, Coefficients, Rule, Strategy
from timm_compound.scaling.structure import extra_inputs

PHI_MAX = 24.0  # F**24 = 16.7 million times the base: far past any budget worth training
TOLERANCE = 1e-3  # the bisection stops when the bracket is this narrow in phi


def direction(
    strategy: str, rule: Rule, compound: Coefficients | None = None, dwr_alpha: float | None = None
) -> Coefficients:
    """The coefficients that scale only what `strategy` names (see the module docstring); a strategy
    that grows a dimension the rule fixes is refused with the rule's reason."""
    if strategy not in STRATEGIES:
        raise CompoundError(f"unknown strategy {strategy!r}")
    chosen = strategy_of(strategy, rule, dwr_alpha)
    coefficients = scaling_strategies.coefficients(chosen, rule, compound or rule.coefficients)
    scaling_strategies.refuse_fixed(chosen, coefficients, rule, f"'{rule.family}'")
    return coefficients


def strategy_of(strategy: str, rule: Rule, dwr_alpha: float | None = None) -> Strategy:
    """A strategy name as a Strategy: dWr's alpha from the call, else the rule's (if dWr), else the paper's."""
    if strategy != "dWr":
        return Strategy(name=strategy)
    if dwr_alpha is None and rule.strategy.name == "dWr":
        return rule.strategy
    try:
        return Strategy(name="dWr", alpha=dwr_alpha)
    except ValueError as error:
        raise CompoundError(str(error.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def check_base(base: str) -> Rule:
    """The rule covering `base`; a registered variant or an uncovered name is a clear error."""
    if not isinstance(base, str) or not base:
        raise CompoundError(f"base must be a model name, got {base!r}")
    book = active_rules()
    if base not in book.rules:
        raise UnknownModelError(
            f"{base!r} is not a base covered by a rule: an experiment scales a base "
            f"(bases: {', '.join(sorted(book.rules))})"
        )
    return book.rule_for(base)[0]


class Costing:
    """Plans along a direction from the experiment's base resolution, and what each costs as trained."""

    def __init__(
        self,
        base: str,
        num_classes: int,
        resolution: int | None,
        timing: LatencySettings | None = None,
        norm: str | None = None,
    ):
        self.base, self.num_classes, self.timing, self.norm = base, num_classes, timing, norm
        self.rule = check_base(base)
        self.resolution = base_resolution(self.rule, base) if resolution is None else resolution
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution < 1:
            raise CompoundError(f"resolution must be a positive int (pixels), got {resolution!r}")
        if self.resolution < self.rule.resolution.min:
            raise CompoundError(
                f"resolution {self.resolution} px is below the {self.rule.resolution.min} px "
                f"{base}'s rule accepts (resolution.min)"
            )
        self.cache: dict[tuple, Complexity] = {}
        self.timings: dict[tuple, Latency] = {}

    def pixels(self, gamma: float, phi: float) -> int:
        """The experiment's base resolution times gamma**phi, in the rule's steps and under its cap."""
        if gamma == 1.0 or phi == 0:
            return self.resolution
        policy = self.rule.resolution
        pixels = rounding.scale_resolution(self.resolution, gamma**phi, policy.divisor, policy.rounding, policy.min)
        return min(pixels, policy.max) if policy.max is not None else pixels

    def plan(self, coefficients: Coefficients, phi: float, strategy: Strategy | None = None) -> ScalePlan:
        """The plan at phi along `coefficients` (the direction of `strategy`, recorded in the plan)."""
        chosen = (
            {"coefficients": coefficients, "strategy": "compound"}
            if strategy is None or strategy.name == "compound"
            else {"strategy": strategy}
        )
        return make_plan(
            self.base,
            phi,
            resolution=self.pixels(coefficients.gamma, phi),
            allow_oversize=True,
            norm=self.norm,
            **chosen,
        )

    @staticmethod
    def too_large(scaled: ScalePlan) -> bool:
        try:
            limits.check(scaled.size, f"{scaled.base} at phi={scaled.phi:g}")
        except CompoundError:
            return True
        return False

    @staticmethod
    def key(scaled: ScalePlan) -> tuple:
        """Plans with equal keys build the same model and input (timed and counted once)."""
        return (
            tuple(scaled.depths),
            tuple(scaled.widths),
            scaled.stem,
            scaled.head,
            extra_inputs(scaled),
            tuple(sorted(scaled.constructor_args.items())),
            scaled.resolution,
        )

    def time(self, scaled: ScalePlan, earlier: Latency | None = None, fresh: bool = False) -> Latency:
        """The model as trained (the dataset's classes, its pixels) timed with the experiment's settings;
        `earlier` (a timing of it) is pooled with new blocks; `fresh` times it anew."""
        key = self.key(scaled)
        if earlier is not None or fresh or key not in self.timings:
            self.timings[key] = time_plan(
                scaled, self.timing, num_classes=self.num_classes, pooled_with=earlier, fresh=fresh
            )
        return self.timings[key]

    def __call__(self, scaled: ScalePlan) -> Complexity:
        """MACs and params of the model as trained: built on meta with the dataset's classes, counted."""
        key = self.key(scaled)
        if key not in self.cache:
            with fast_meta():  # shapes only: weight initialisation skipped
                model = build(scaled, num_classes=self.num_classes)
            self.cache[key] = measure(model, resolution=scaled.resolution)
        return self.cache[key]


@dataclass(frozen=True)
class _Point:
    phi: float
    plan: ScalePlan
    cost: Complexity


def base_variant(costing: Costing) -> Variant:
    scaled = costing.plan(costing.rule.coefficients, 0.0)
    cost = costing(scaled)
    return Variant(
        name=BASE,
        strategy=BASE,
        budget=1.0,
        model=scaled,
        plan=scaled,
        resolution=scaled.resolution,
        cost=cost,
        ratio=1.0,
        phi=0.0,
        d=1.0,
        w=1.0,
        r=1.0,
    )


def equal_cost(
    costing: Costing,
    strategy: str,
    budget: float,
    base: Variant,
    *,
    tolerance: float,
    compound: Coefficients | None = None,
    dwr_alpha: float | None = None,
) -> Variant:
    """The plan along `strategy` whose real cost is closest to `budget` x the base's (within `tolerance`)."""
    coefficients = direction(strategy, costing.rule, compound, dwr_alpha)
    along = strategy_of(strategy, costing.rule, dwr_alpha)
    target = budget * base.cost.macs
    _check_expressible(costing, strategy, coefficients, base, along)
    points: dict[float, _Point | None] = {}

    def point(phi: float) -> _Point | None:
        """The plan at phi, or None when it is past the size limits (never built)."""
        if phi not in points:
            scaled = costing.plan(coefficients, phi, along)
            points[phi] = None if costing.too_large(scaled) else _Point(phi, scaled, costing(scaled))
        return points[phi]

    def fits(phi: float) -> bool:
        found = point(phi)
        return found is not None and found.cost.macs <= target

    ideal = math.log(budget) / math.log(costing.rule.constraint.flops_factor)
    lo, hi = 0.0, ideal
    while fits(hi):
        lo, hi = hi, hi + max(1.0, hi)
        if lo >= PHI_MAX:
            cost = point(lo).cost.macs / base.cost.macs
            raise CompoundError(
                f"{strategy} scaling of {costing.base} cannot reach {budget:g}x the base's GMACs: "
                f"at phi={lo:g} it costs {cost:.3g}x (the rule caps what this direction can grow)"
            )
    while hi - lo > TOLERANCE:
        middle = (lo + hi) / 2
        lo, hi = (middle, hi) if fits(middle) else (lo, middle)
    candidates = [found for found in (point(lo), point(hi)) if found is not None]
    chosen = min(candidates, key=lambda found: abs(math.log(found.cost.macs / target)))
    ratio = chosen.cost.macs / base.cost.macs
    if abs(ratio / budget - 1) > tolerance:
        offered = " or ".join(
            f"{found.cost.macs / base.cost.macs:.3g}x ({_describe(costing, found.plan)})" for found in candidates
        )
        raise CompoundError(
            f"{strategy} scaling of {costing.base} from {costing.resolution} px cannot cost {budget:g}x the base "
            f"within {tolerance:.0%}: the rule's rounding steps allow {offered}; choose other budgets, a larger "
            f"base resolution, or a larger tolerance"
        )
    return _variant(costing, strategy, budget, chosen, ratio, base)


def equal_latency(
    costing: Costing,
    strategy: str,
    budget: float,
    base: Variant,
    *,
    tolerance: float,
    compound: Coefficients | None = None,
    dwr_alpha: float | None = None,
) -> Variant:
    """The timed plan along `strategy` whose measured median latency is closest to `budget` x the base's
    (within `tolerance`)."""
    coefficients = direction(strategy, costing.rule, compound, dwr_alpha)
    along = strategy_of(strategy, costing.rule, dwr_alpha)
    target = budget * base.latency.median_ms
    _check_expressible(costing, strategy, coefficients, base, along)

    def candidate(phi: float) -> ScalePlan | None:
        scaled = costing.plan(coefficients, phi, along)
        return None if costing.too_large(scaled) else scaled

    search = Search(
        Direction(
            plan=candidate,
            macs=lambda scaled: costing(scaled).macs,
            key=costing.key,
            time=costing.time,
            low=0.0,
            high=PHI_MAX,
        ),
        target,
    )
    edge = search.edge(0.0)
    timed = [point for point in (edge.fits, edge.over) if point is not None and point.latency is not None]
    if edge.over is None:
        raise CompoundError(
            f"{strategy} scaling of {costing.base} cannot reach {budget:g}x the base's latency: "
            f"at phi={edge.fits.phi:g} it takes {edge.fits.latency.describe()}"
        )
    chosen = min(timed, key=lambda point: abs(math.log(point.latency.median_ms / target)))
    ratio = chosen.latency.median_ms / base.latency.median_ms
    if abs(ratio / budget - 1) > tolerance:
        offered = " or ".join(
            f"{point.latency.median_ms / base.latency.median_ms:.3g}x ({_describe(costing, point.plan)})"
            for point in timed
        )
        raise CompoundError(
            f"{strategy} scaling of {costing.base} from {costing.resolution} px cannot take {budget:g}x the base's "
            f"latency within {tolerance:.0%}: the networks either side of it time {offered} on "
            f"{costing.timing.where()}; choose other budgets, a larger base resolution, or a larger tolerance"
        )
    point = _Point(chosen.phi, chosen.plan, costing(chosen.plan))
    return replace(
        _variant(costing, strategy, budget, point, point.cost.macs / base.cost.macs, base), latency=chosen.latency
    )


def _check_expressible(
    costing: Costing, strategy: str, coefficients: Coefficients, base: Variant, along: Strategy
) -> None:
    """A direction that changes nothing the strategy names, even far out, is one the rule cannot express."""
    far = costing.plan(coefficients, 4.0, along)
    unchanged = {
        "depth": far.depths == base.plan.depths,
        "width": (far.widths, far.stem, far.head) == (base.plan.widths, base.plan.stem, base.plan.head),
        "resolution": far.resolution == base.resolution,
        "compound": far.depths == base.plan.depths
        and far.widths == base.plan.widths
        and far.resolution == base.resolution,
    }
    unchanged["dWr"] = unchanged["compound"]
    unchanged = unchanged[strategy]
    if unchanged:
        raise CompoundError(
            f"rule {base.plan.rule_file} cannot scale {costing.base} by {strategy} alone: at phi=4 "
            f"(alpha={coefficients.alpha:g}, beta={coefficients.beta:g}, gamma={coefficients.gamma:g}) the model keeps "
            f"its {_describe(costing, far)} (fixed stages, a fixed width or a resolution cap); drop '{strategy}'"
        )


def _describe(costing: Costing, scaled: ScalePlan) -> str:
    return f"depths {scaled.depths}, widths {scaled.widths}, {scaled.resolution} px"


def _variant(costing: Costing, strategy: str, budget: float, chosen: _Point, ratio: float, base: Variant) -> Variant:
    scaled = chosen.plan
    return Variant(
        name=f"{budget:g}x-{strategy}",
        strategy=strategy,
        budget=budget,
        model=scaled,
        plan=scaled,
        resolution=scaled.resolution,
        cost=chosen.cost,
        ratio=ratio,
        phi=chosen.phi,
        d=sum(scaled.depths) / sum(base.plan.depths),
        w=sum(scaled.widths) / sum(base.plan.widths),
        r=scaled.resolution / base.resolution,
    )
