"""Closed-loop budget fitting: the largest phi whose realised model meets every budget.

Open-loop scaling promises ``(alpha*beta**2*gamma**2)**phi`` more FLOPs; rounding
(ceil'd blocks, channels in steps of 8, pixels in steps of 8) makes the real cost a
step function of phi. So the fit measures the realised model at each candidate:
bracket, bisect to 1e-3 in phi, scan the neighbourhood above for a later step that
fits again (cost need not be monotone), then spend what is left of a MACs or
memory budget on resolution in the rule's 8 px steps.

A latency budget (``max_latency_ms``) is met by timings on this machine (``cost.latency_search``):
MACs guess, timings decide, along the rule's compound direction at each plan's own resolution (no
fill: every filled plan would need timings of its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from timm_compound.cost.complexity import Complexity
from timm_compound.cost.latency import Latency, LatencySettings, time_plan
from timm_compound.cost.latency_search import Direction, Search
from timm_compound.cost.measure import NoTrainingStep, measure
from timm_compound.errors import CompoundError, RuleError, UnknownModelError
from timm_compound.scaling import limits as size_limits
from timm_compound.scaling.meta_device import gc_paused
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.plan import plan as make_plan
from timm_compound.scaling.rulebook import active_rules
from timm_compound.scaling.structure import extra_inputs

PHI_MIN = -200.0  # every stage at its minimum depth and width, the resolution at its floor (1.1**-200 ~ 5e-9)
PHI_MAX = 24.0
TOLERANCE = 1e-3  # bisection stops when the bracket is this narrow in phi
NEIGHBOURS = 0.5  # how far above the bisected phi to look for a later step that fits again
SCAN_STEP = 0.01

# budget name -> (Complexity attribute, unit scale shown to the user, unit)
BUDGETS = {
    "max_gmacs": ("macs", 1e9, "GMACs"),
    "max_params": ("params", 1e6, "M params"),
    "max_train_memory": ("train_memory_bytes", 2**20, "MiB"),
}
LATENCY_SECONDS = 5.0  # the time cap of each timing a latency fit takes


@dataclass(frozen=True)
class Budget:
    name: str  # max_gmacs, max_params, max_train_memory or max_latency_ms
    target: float  # in the unit the user gave: GMACs, millions of params, MiB, ms
    achieved: float  # for latency: the median
    unit: str
    interval: tuple[float, float] | None = None  # latency: the median's 95% interval

    @property
    def ratio(self) -> float:
        return self.achieved / self.target


@dataclass(frozen=True)
class FitResult:
    """The fitted plan, its measured cost, and achieved vs target for each budget."""

    plan: ScalePlan
    phi: float  # the fitted plan's phi (its depths; its widths unless fill == "width")
    phi_max: float  # the largest phi whose plan fits at its own resolution
    complexity: Complexity
    budgets: list[Budget]
    evaluations: int  # distinct (model, resolution) pairs measured
    fill: str = "none"  # what the budget left over bought: "none", "resolution" or "width"
    trace: list[tuple[float, bool]] = field(default_factory=list, repr=False, compare=False)
    # a latency budget: the fitted plan's timing, whether the verdicts either side of the edge were
    # clear of the noise, in words, and how many timings the fit took
    latency: Latency | None = None
    sure: bool | None = None
    certainty: str | None = None
    timings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.plan.base,
            "phi": self.phi,
            "resolution": self.plan.resolution,
            "phi_max": self.phi_max,
            "fill": self.fill,
            "resolution_source": self.plan.resolution_source,
            "depths": self.plan.depths,
            "widths": self.plan.widths,
            "params": self.complexity.params,
            "gmacs": self.complexity.gmacs,
            "train_memory_bytes": self.complexity.train_memory_bytes,
            "budgets": [
                {
                    "name": b.name,
                    "target": b.target,
                    "achieved": b.achieved,
                    "unit": b.unit,
                    "ratio": b.ratio,
                    **({} if b.interval is None else {"interval": list(b.interval)}),
                }
                for b in self.budgets
            ],
            "evaluations": self.evaluations,
            **(
                {}
                if self.latency is None
                else {
                    "latency": self.latency.to_dict(),
                    "sure": self.sure,
                    "certainty": self.certainty,
                    "timings": self.timings,
                }
            ),
            "plan": self.plan.to_dict(),
        }


def _budget(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompoundError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise CompoundError(f"{name} must be > 0, got {value!r}")
    return float(value)


class _Costs:
    """Measures each distinct rounded model once: many phis map to the same plan.

    ``measure`` does the counting (the cost model: milliseconds per plan, exact).
    """

    def __init__(
        self,
        base: str,
        coefficients: Any,
        batch_size: int,
        train_memory: bool,
        progress: Callable[[int], None] | None = None,
    ):
        self.base, self.coefficients = base, coefficients
        self.batch_size, self.train_memory = batch_size, train_memory
        self.progress = progress
        self.cache: dict[tuple, Complexity] = {}
        self.plans: dict[tuple, ScalePlan] = {}  # the scan and the fills plan the same phi more than once

    def plan(self, phi: float, resolution: int | None = None) -> ScalePlan:
        # the size limits are checked by `fits`: a plan past them is one that does not fit
        key = (phi, resolution)
        if key not in self.plans:
            self.plans[key] = make_plan(
                self.base, phi, resolution=resolution, coefficients=self.coefficients, allow_oversize=True
            )
        return self.plans[key]

    @staticmethod
    def oversize(scaled: ScalePlan) -> str | None:
        """Why the plan is past scaling.limits (never built, never measured), or None."""
        try:
            size_limits.check(
                scaled.size,
                f"the plan for {scaled.base} at phi={scaled.phi:g}"
                if scaled.phi is not None
                else f"the plan for {scaled.base}",
            )
        except CompoundError as error:
            return str(error)
        return None

    def fits(self, scaled: ScalePlan, limits: dict[str, float]) -> bool:
        return self.oversize(scaled) is None and _fits(self(scaled), limits)

    def __call__(self, scaled: ScalePlan) -> Complexity:
        structure = _structure(scaled)
        key = (*structure, scaled.resolution)
        if key in self.cache:
            return self.cache[key]
        cost = measure(scaled, batch_size=self.batch_size, train_memory=self.train_memory)
        self.cache[key] = cost
        if self.progress is not None:
            self.progress(len(self.cache))
        return cost


def _structure(scaled: ScalePlan, leave_out: Collection[str] = frozenset()) -> tuple:
    """Everything a plan's model depends on but its resolution (layouts' extra inputs and scheduled arguments
    included), less the constructor arguments named in `leave_out`."""
    return (
        tuple(scaled.depths),
        tuple(scaled.widths),
        scaled.stem,
        scaled.head,
        extra_inputs(scaled),
        tuple(sorted((k, v) for k, v in scaled.constructor_args.items() if k not in leave_out)),
    )


def _shape(scaled: ScalePlan) -> tuple:
    """The network's shape: `_structure` less the rule's `schedules` (EfficientNet's dropout moves with
    every phi step, so nearly every phi is a distinct structure yet most share depths and widths)."""
    return _structure(scaled, scaled.rule.schedules)


def _fits(cost: Complexity, limits: dict[str, float]) -> bool:
    return all(getattr(cost, BUDGETS[name][0]) <= limit for name, limit in limits.items())


def _describe(cost: Complexity, limits: dict[str, float]) -> str:
    return ", ".join(f"{getattr(cost, BUDGETS[name][0]) / BUDGETS[name][1]:.6g} {BUDGETS[name][2]}" for name in limits)


def fit(
    base: str,
    *,
    max_gmacs: float | None = None,
    max_params: float | None = None,
    max_train_memory: float | None = None,
    max_latency_ms: float | None = None,
    batch_size: int = 1,
    coefficients: Any = None,
    fill_resolution: bool = True,
    fill_width: bool = True,
    progress: Callable[[int], None] | None = None,
    device: str = "cpu",
    threads: int = 1,
    dtype: str = "float32",
    runtime: str = "eager",
    cache: bool = True,
    max_seconds: float = LATENCY_SECONDS,
) -> FitResult:
    """The largest phi (negative allowed) whose realised `base` meets every budget.

    Budgets: ``max_gmacs`` in GMACs (conv + linear, batch 1 unless `batch_size`),
    ``max_params`` in millions, ``max_train_memory`` in MiB for one SGD training step
    at `batch_size`. With `fill_resolution`, budget left over at that phi buys a
    larger input size in the rule's resolution steps (recorded as a resolution override).
    With `fill_width`, a params budget still more than 5% short (depth steps are coarse)
    buys width at the fitted depths, or the next width step at less depth where that is closer
    (the plan then has explicit d/w/r multipliers).
    `progress(n)` is called after each new measurement, with the number measured so far.

    ``max_latency_ms`` is the median milliseconds of a forward pass of `batch_size` images, timed on
    `device` with `threads` torch threads, `dtype` and `runtime` (as ``measure(latency=True)``; each
    timing capped at `max_seconds`, kept in the cache unless `cache=False`): the largest phi whose
    timed network meets it and every other budget, at its own resolution (no fills). The result's
    ``sure`` and ``certainty`` say whether the noise left either verdict at the edge in doubt.
    """
    given = {
        name: _budget(name, value)
        for name, value in (
            ("max_gmacs", max_gmacs),
            ("max_params", max_params),
            ("max_train_memory", max_train_memory),
        )
    }
    targets = {name: value for name, value in given.items() if value is not None}
    latency_ms = _budget("max_latency_ms", max_latency_ms)
    if latency_ms is not None:
        settings = LatencySettings.check(
            device=device,
            batch_size=batch_size,
            threads=threads,
            dtype=dtype,
            runtime=runtime,
            max_seconds=max_seconds,
            cache=cache,
        )
    if not targets and latency_ms is None:
        raise CompoundError("give at least one budget: max_gmacs, max_params, max_train_memory or max_latency_ms")
    if base not in active_rules().rules:
        raise UnknownModelError(f"{base!r} is not a base covered by a rule (fit scales a base, not a variant)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CompoundError(f"batch_size must be a positive int, got {batch_size!r}")
    limits = {name: value * BUDGETS[name][1] for name, value in targets.items()}
    if latency_ms is not None:
        return _fit_latency(base, latency_ms, settings, targets, limits, coefficients, progress)
    with gc_paused():
        return _fit(base, targets, limits, batch_size, coefficients, fill_resolution, fill_width, progress)


def _fit_latency(
    base: str,
    budget_ms: float,
    settings: LatencySettings,
    targets: dict[str, float],
    limits: dict[str, float],
    coefficients: Any,
    progress: Callable[[int], None] | None,
) -> FitResult:
    """The largest phi whose timed network answers within `budget_ms` and meets the counted budgets."""
    costs = _Costs(base, coefficients, settings.batch_size, "max_train_memory" in targets)
    high = PHI_MAX
    if targets:  # the counted budgets bound the search from above (and fail first when nothing meets them)
        with gc_paused():
            high = _fit(base, targets, limits, settings.batch_size, coefficients, False, False, None).phi_max
    timings = []

    def candidate(phi: float) -> ScalePlan | None:
        try:
            scaled = costs.plan(phi)
            return scaled if costs.oversize(scaled) is None and (not limits or costs.fits(scaled, limits)) else None
        except (RuleError, NoTrainingStep):
            return None

    def timed(scaled: ScalePlan, earlier: Latency | None, fresh: bool = False) -> Latency:
        found = time_plan(scaled, settings, pooled_with=earlier, fresh=fresh)
        timings.append(found)
        if progress is not None:
            progress(len(timings))
        return found

    def macs(scaled: ScalePlan) -> int:
        with gc_paused():
            return costs(scaled).macs

    low = _lowest_candidate(candidate)
    direction = Direction(
        plan=candidate,
        macs=macs,
        key=lambda scaled: (_shape(scaled), scaled.resolution),
        time=timed,
        low=low,
        high=high,
    )
    edge = Search(direction, budget_ms).edge(0.0)
    if edge.fits is None:
        floor = edge.over
        if floor.latency is None:
            raise CompoundError(f"no {base} meets the other budgets at phi={floor.phi:g} and below")
        raise CompoundError(
            f"no {base} answers within {budget_ms:g} ms on {settings.where()}: the smallest valid model (depths "
            f"{floor.plan.depths}, widths {floor.plan.widths}, {floor.plan.resolution} px) takes "
            f"{floor.latency.describe()}"
        )
    if edge.over is None and high >= PHI_MAX:
        raise CompoundError(
            f"the budget allows more than phi={PHI_MAX:g} of {base} ({edge.fits.latency.describe()} "
            "there); use a larger base"
        )
    chosen = costs.plan(edge.fits.phi)
    latency = edge.fits.latency
    sure, certainty = _certainty(edge.fits, edge.over, budget_ms, targets)
    measured = replace(costs(chosen), latency=latency)
    budgets = [
        Budget(name, target, getattr(measured, BUDGETS[name][0]) / BUDGETS[name][1], BUDGETS[name][2])
        for name, target in targets.items()
    ]
    budgets.append(Budget("max_latency_ms", budget_ms, latency.median_ms, "ms", latency.ci_ms))
    trace = [(point.phi, point.fits) for point in edge.timed]
    return FitResult(
        chosen,
        edge.fits.phi,
        edge.fits.phi,
        measured,
        budgets,
        len(costs.cache),
        "none",
        trace,
        latency=latency,
        sure=sure,
        certainty=certainty,
        timings=len(timings),
    )


def _lowest_candidate(candidate: Callable[[float], ScalePlan | None]) -> float:
    """PHI_MIN, or where the base's constructor rejects so small a model, the lowest phi it accepts."""
    if candidate(PHI_MIN) is not None or candidate(0.0) is None:
        return PHI_MIN
    lo, hi = PHI_MIN, 0.0
    while hi - lo > TOLERANCE:
        middle = (lo + hi) / 2
        lo, hi = (lo, middle) if candidate(middle) is not None else (middle, hi)
    return hi


def _certainty(fits, over, budget_ms: float, targets: dict[str, float]) -> tuple[bool, str]:
    """Whether the noise left the verdicts either side of the edge in doubt, in words."""

    def interval(point) -> str:
        return f"{point.latency.ci_ms[0]:.4g}-{point.latency.ci_ms[1]:.4g} ms"

    if not fits.sure:
        return False, (
            f"not sure: the fitted network's 95% interval ({interval(fits)}) still straddles the "
            f"{budget_ms:g} ms budget after {fits.timings} timings; its median decided"
        )
    if over is not None and over.latency is not None and not over.sure:
        return False, (
            f"not sure: the next larger network's 95% interval ({interval(over)}) still straddles the "
            f"{budget_ms:g} ms budget after {over.timings} timings; it may fit too"
        )
    if over is None or over.latency is None:
        bound = ", ".join(targets) or "the size limits"
        return True, (
            f"sure: the fitted network's 95% interval ({interval(fits)}) is under the budget; the next "
            f"larger plan is ruled out by {bound}, not by latency"
        )
    return True, (
        f"sure: the fitted network's 95% interval ({interval(fits)}) is under the {budget_ms:g} ms budget "
        f"and the next larger network's ({interval(over)}) is over it"
    )


def _fit(
    base: str,
    targets: dict[str, float],
    limits: dict[str, float],
    batch_size: int,
    coefficients: Any,
    fill_resolution: bool,
    fill_width: bool,
    progress: Callable[[int], None] | None,
) -> FitResult:
    costs = _Costs(base, coefficients, batch_size, "max_train_memory" in targets, progress)
    trace: list[tuple[float, bool]] = []

    def feasible(phi: float) -> bool:
        try:
            ok = costs.fits(costs.plan(phi), limits)
        except NoTrainingStep:  # too small to train at this batch size (e.g. batch norm over 1x1 maps at batch 1)
            ok = False
        except RuleError:
            if phi >= 0:
                raise
            ok = False  # the constructor rejects so small a model (RegNet needs enough blocks for four stages)
        trace.append((phi, ok))
        return ok

    floor = _plan_or_none(costs, PHI_MIN)
    if floor is not None and not feasible(PHI_MIN) and _trainable(costs, floor):
        raise CompoundError(
            f"no {base} fits: the smallest valid model (depths {floor.depths}, widths "
            f"{floor.widths}, {floor.resolution} px) costs {_describe(costs(floor), limits)}; "
            f"budget: {', '.join(f'{v:g} {BUDGETS[n][2]}' for n, v in targets.items())}"
        )
    lo, hi = _bracket(feasible, base, limits, costs)
    lo = _bisect(feasible, lo, hi)
    lo = _neighbours(feasible, lo, lambda phi: (_shape(plan := costs.plan(phi)), plan.resolution))

    chosen, fill = costs.plan(lo), "none"
    fixed = active_rules().rule_for(base)[0].fixed()  # a dimension the rule holds is never filled
    if fill_resolution and "resolution" not in fixed and ("max_gmacs" in targets or "max_train_memory" in targets):
        chosen = _fill(costs, lo, limits)
        fill = "resolution" if chosen.resolution_source == "override" else "none"
    phi = chosen.phi
    if (
        fill_width
        and "width" not in fixed
        and "max_params" in targets
        and costs(chosen).params < WIDTH_FILL_BELOW * limits["max_params"]
    ):
        widened = _fill_width(costs, chosen, limits)
        if widened is not chosen:
            chosen, fill = widened, "width"
    measured = costs(chosen)
    budgets = [
        Budget(name, target, getattr(measured, BUDGETS[name][0]) / BUDGETS[name][1], BUDGETS[name][2])
        for name, target in targets.items()
    ]
    return FitResult(chosen, phi, lo, measured, budgets, len(costs.cache), fill, trace)


def _bracket(feasible, base: str, limits: dict[str, float], costs: _Costs) -> tuple[float, float]:
    """(lo, hi): lo fits, hi does not; steps double away from phi = 0."""
    if feasible(0.0):
        lo, step = 0.0, 1.0
        while feasible(lo + step):
            lo, step = lo + step, step * 2
            if lo >= PHI_MAX:
                at_max, at_zero = costs(costs.plan(PHI_MAX)), costs(costs.plan(0.0))
                if _describe(at_max, limits) == _describe(at_zero, limits):
                    raise CompoundError(
                        f"the budgeted cost of {base} does not grow with phi under these coefficients "
                        f"({_describe(at_zero, limits)} at every phi): no phi is the largest that fits"
                    )
                raise CompoundError(
                    f"the budget allows more than phi={PHI_MAX:g} of {base} "
                    f"({_describe(at_max, limits)} there); use a larger base"
                )
        too_large = costs.oversize(costs.plan(lo + step))
        if too_large is not None:  # the search ran into the size limits, not into the budget
            at_lo, at_zero = costs(costs.plan(lo)), costs(costs.plan(0.0))
            if lo > 0 and _describe(at_lo, limits) == _describe(at_zero, limits):
                raise CompoundError(
                    f"the budgeted cost of {base} does not grow with phi under these coefficients "
                    f"({_describe(at_zero, limits)} at every phi up to {lo:g}): no phi is the largest that fits"
                )
            raise CompoundError(f"the budget allows more of {base} than the size limits: {too_large}")
        return lo, lo + step
    hi, step = 0.0, 1.0
    while not feasible(max(PHI_MIN, hi - step)):
        if hi - step <= PHI_MIN:
            raise CompoundError(
                f"no {base} fits: no model that can take a training step at batch "
                f"{costs.batch_size} is under the budget; try a larger batch or budget"
            )
        hi, step = hi - step, step * 2
    return max(PHI_MIN, hi - step), hi


def _plan_or_none(costs: _Costs, phi: float) -> ScalePlan | None:
    """The plan at `phi`, or None where the base's constructor rejects it (derived layouts build to plan)."""
    try:
        return costs.plan(phi)
    except RuleError:
        return None


def _trainable(costs: _Costs, scaled: ScalePlan) -> bool:
    try:
        costs(scaled)
    except NoTrainingStep:
        return False
    return True


def _bisect(feasible, lo: float, hi: float) -> float:
    while hi - lo > TOLERANCE:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    return lo


def _neighbours(feasible, lo: float, shape_of: Callable[[float], tuple]) -> float:
    """Cost is a step function that need not be monotone: a later step may fit again.

    A candidate with the shape and resolution of one the scan found too costly is not measured
    again (its schedules, e.g. dropout, are all that differ): it is taken not to fit. A verdict
    that it fits is never borrowed, so a chosen phi is always one measured."""
    phi, too_costly = lo, set()
    for k in range(1, round(NEIGHBOURS / SCAN_STEP) + 1):
        candidate = lo + k * SCAN_STEP
        shape = shape_of(candidate)
        if shape in too_costly:
            continue
        if feasible(candidate):
            phi = candidate
        else:
            too_costly.add(shape)
    if phi != lo:  # a later step fits: bisect from there to its own edge
        return _neighbours(feasible, _bisect(feasible, phi, phi + SCAN_STEP), shape_of)
    return lo


FILL_WINDOW = 0.5  # how far below phi_max to look for a structure that a resolution change fits better
CLOSE_ENOUGH = 0.99  # a filled plan this close to the budget ends the search for a better one lower down


def _fill(costs: _Costs, phi_max: float, limits: dict[str, float]) -> ScalePlan:
    """Spend what the budget leaves on resolution, in the rule's pixel steps.

    Pixels change MACs in coarse steps (224 -> 232 px adds 15% on a ResNet, as the
    stride-32 feature map grows from 7 to 8), so each network shape (`_shape`) from phi_max down
    (to FILL_WINDOW below it) gets its largest fitting resolution at or above its own, at the
    largest phi that has that shape. The
    first plan within 1% of the budget (CLOSE_ENOUGH) wins: the largest phi that gets there,
    so the least departure from compound scaling and the fewest measurements. If none gets
    there, the closest in the window wins (ties: the larger phi).
    """
    best = costs.plan(phi_max)
    best_score = _closeness(costs(best), limits)
    seen = set()
    steps = round(FILL_WINDOW / SCAN_STEP)
    for k in range(steps + 1):
        if best_score >= CLOSE_ENOUGH:
            break
        phi = phi_max - k * SCAN_STEP
        own = costs.plan(phi)
        shape = _shape(own)
        if shape in seen:  # the largest phi of each shape is tried (schedules alone do not change the network)
            continue
        seen.add(shape)
        if costs.fits(own, limits):
            fitted = _largest_resolution(costs, phi, own, limits)
            if _closeness(costs(fitted), limits) > best_score:
                best, best_score = fitted, _closeness(costs(fitted), limits)
    return best


def _largest_resolution(costs: _Costs, phi: float, own: ScalePlan, limits: dict[str, float]) -> ScalePlan:
    """The largest resolution, in the rule's steps up from `own`'s and under its cap, at which the plan
    still fits. For a fixed structure cost never falls as pixels grow (every feature map is a
    non-decreasing function of the input size), so the edge is found by probing: first where cost
    growing with pixels squared would put it (usually right: then two measurements decide), then
    galloping and bisecting from what that probe showed. Every answer is a measured one."""
    step, cap = own.rule.resolution.divisor, own.rule.resolution.max

    def at(steps: int) -> ScalePlan | None:
        pixels = own.resolution + steps * step
        if cap is not None and pixels > cap:
            return None  # the rule's resolution cap holds for fitted plans too
        candidate = costs.plan(phi, resolution=pixels)
        return candidate if costs.fits(candidate, limits) else None

    good, bad = 0, None  # steps known to fit; steps known not to (None: not yet)
    guess = _predicted_steps(costs(own), limits, own.resolution, step)
    if guess > 0:
        if at(guess) is not None:
            good = guess
        else:
            bad = guess
    if bad is None:
        width = 1
        while at(good + width) is not None:
            good, width = good + width, width * 2
        bad = good + width
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if at(mid) is not None else (good, mid)
    return own if good == 0 else at(good)


def _predicted_steps(cost: Complexity, limits: dict[str, float], pixels: int, step: int) -> int:
    """Resolution steps up from `pixels` that a cost growing with pixels squared would allow (a guess)."""
    rooms = [
        limit / getattr(cost, BUDGETS[name][0])
        for name, limit in limits.items()
        if name != "max_params" and getattr(cost, BUDGETS[name][0])
    ]
    room = min(rooms, default=1.0)
    return max(0, int((pixels * math.sqrt(max(room, 1.0)) - pixels) // step))


WIDTH_FILL_BELOW = 0.95  # a params budget met by less than this gets its remainder spent on width


def _fill_width(costs: _Costs, chosen: ScalePlan, limits: dict[str, float]) -> ScalePlan:
    """Spend a params budget's remainder on width, keeping the fitted resolution.

    Resolution cannot buy parameters, and depth steps are coarse: ResNet-18's four stages have
    equal depths, so all gain a block at the same phi (at 8x its params the largest phi reaches
    84% of the budget). Widening by a factor on w (bisected; cost grows with w) fills the gap in
    channel-divisor steps at the fitted depths. Where width steps are coarse too (DenseNet's growth
    rate: 32 -> 36 channels is +25% params) and that still leaves the budget more than 5% short,
    the next width step is taken with the largest depth multiplier under the fitted one that fits
    (bisected); the closer of the two plans to the budget wins.
    """
    mult = chosen.multipliers

    def scaled(depth: float, factor: float) -> ScalePlan:
        explicit = make_plan(
            chosen.base,
            d=depth,
            w=mult.width * factor,
            r=mult.resolution,
            resolution=chosen.resolution,
            coefficients=costs.coefficients,
            allow_oversize=True,
        )
        # explicit multipliers carry no phi, so keep the fitted phi's scheduled args (dropout)
        return explicit.model_copy(update={"constructor_args": dict(chosen.constructor_args)})

    lo, hi = 1.0, 2.0
    while costs.fits(scaled(mult.depth, hi), limits):
        lo, hi = hi, hi * 2
    lo, hi = _bisect_factor(lambda factor: costs.fits(scaled(mult.depth, factor), limits), lo, hi)
    best = chosen if lo == 1.0 else scaled(mult.depth, lo)
    if _closeness(costs(best), limits) < WIDTH_FILL_BELOW and chosen.rule.depth.fixed is None:
        shallower = _shallower(costs, lambda depth: scaled(depth, hi), mult.depth, limits)
        if shallower is not None and _closeness(costs(shallower), limits) > _closeness(costs(best), limits):
            best = shallower
    if best.widths == chosen.widths and best.stem == chosen.stem and best.head == chosen.head:
        return chosen
    return best


def _shallower(
    costs: _Costs, at_depth: Callable[[float], ScalePlan], depth: float, limits: dict[str, float]
) -> ScalePlan | None:
    """The plan at the largest depth multiplier under `depth` that fits (bisected; cost grows with
    depth), or None when not even half the depth fits."""
    if not costs.fits(at_depth(depth / 2), limits):
        return None
    lo, _ = _bisect_factor(lambda d: costs.fits(at_depth(d), limits), depth / 2, depth)
    return at_depth(lo)


def _bisect_factor(fits: Callable[[float], bool], lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi) narrowed to a ratio of 1 + TOLERANCE, lo fitting and hi not (bisected geometrically:
    multipliers act as ratios)."""
    while hi / lo > 1 + TOLERANCE:
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, hi


def _closeness(cost: Complexity, limits: dict[str, float]) -> float:
    """How much of the tightest budget a cost uses."""
    return max(getattr(cost, BUDGETS[name][0]) / limit for name, limit in limits.items())
