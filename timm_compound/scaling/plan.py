"""From (base, phi or d/w/r) to a ScalePlan: pure data.

Most layouts plan without building anything. For `multiplier` and `fields` layouts the constructor
decides the stages, so the realised depths and widths are read back from a meta-device build
(`timm_compound.scaling.readback`), cached per arguments.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from timm_compound.errors import CompoundError, RuleError
from timm_compound.scaling import limits, norms, readback, rounding, strategies, structure, timm_adapter
from timm_compound.scaling.layouts import LAYOUTS
from timm_compound.scaling.rulebook import RuleBook, active_rules
from timm_compound.scaling.schema import NORMS, Coefficients, Rule, Strategy


class Multipliers(BaseModel):
    """Depth, width and resolution multipliers."""

    model_config = ConfigDict(frozen=True)
    depth: float
    width: float
    resolution: float


class ScalePlan(BaseModel):
    """Everything needed to build, describe or publish one scaled model; JSON-serialisable.

    `multipliers` are exact (alpha**phi, ...); `realised` are what rounding made of
    them: total blocks / base blocks, summed stage widths / base, pixels / base pixels.
    """

    model_config = ConfigDict(frozen=True)

    base: str
    family: str
    rule_file: str
    phi: float | None
    coefficients: Coefficients
    multipliers: Multipliers
    realised: Multipliers
    base_depths: list[int]
    depths: list[int]
    base_widths: list[int]
    widths: list[int]
    base_stem: int | None
    stem: int | None
    base_head: int | None
    head: int | None
    base_resolution: int
    resolution_exact: float
    resolution: int
    resolution_source: Literal["rounded", "capped", "override"]
    constructor_args: dict[str, Any]
    rule: Rule
    # the numbers a `multiplier` or `fields` layout wrote ({"width": 1.1}, {"model_cfg.w0": 64}):
    # with them the plan rebuilds exactly; depths and widths are what the constructor made of them
    structure_args: dict[str, Any] = {}
    # how phi was shared between d, w and r (`coefficients` are that strategy's), and the FLOPs
    # factor the plan was asked for, when it was planned by FLOPs
    strategy: Strategy = Strategy()
    flops: float | None = None
    # the norm layers it builds with (`scaling.norms`): 'batch' is the base's own
    norm: Literal[NORMS] = "batch"

    @property
    def size(self) -> limits.PlanSize:
        """How big this plan is: blocks, widths, pixels and a lower bound on its parameters."""
        return limits.size_of(self.depths, self.widths, self.resolution)

    def to_json(self, **kwargs) -> str:
        return self.model_dump_json(by_alias=True, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _number(name: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompoundError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise CompoundError(f"{name} must be > 0, got {value!r}")
    return float(value)


def resolve_coefficients(rule: Rule, coefficients: Any, source: str) -> Coefficients:
    """The rule's coefficients, or the caller's (a Coefficients, a dict or an (alpha, beta, gamma) tuple)."""
    if coefficients is None:
        return rule.coefficients
    try:
        if isinstance(coefficients, Coefficients):
            chosen = coefficients
        elif isinstance(coefficients, dict):
            chosen = Coefficients.model_validate(coefficients)
        else:
            alpha, beta, gamma = coefficients
            chosen = Coefficients(alpha=alpha, beta=beta, gamma=gamma)
    except (ValidationError, TypeError, ValueError) as error:
        raise CompoundError(f"invalid coefficients {coefficients!r}: {error}") from None
    try:
        rule.constraint.check(chosen)
    except ValueError as error:
        raise CompoundError(f"coefficients do not meet {source}'s constraint: {error}") from None
    return chosen


def base_resolution(rule: Rule, base: str) -> int:
    if rule.resolution.base is not None:
        return rule.resolution.base
    return int(timm_adapter.base_pretrained_cfg(base)["input_size"][-1])


def plan_resolution(rule: Rule, base: str, r: float, override: int | None = None) -> tuple[int, float, int, str]:
    """(base pixels, exact pixels, planned pixels, how it was decided); cheap: no timm build."""
    policy = rule.resolution
    start = base_resolution(rule, base)
    exact = start * r
    if override is not None:
        return start, exact, override, "override"
    if r == 1.0 or policy.fixed is not None:  # the base at its own size, even one off the divisor (299 px)
        pixels = start
    else:
        pixels = rounding.scale_resolution(start, r, policy.divisor, policy.rounding, policy.min)
    if policy.max is not None and pixels > policy.max:
        return start, exact, policy.max, "capped"
    return start, exact, pixels, "rounded"


def plan(
    base: str,
    phi: float | None = None,
    *,
    d: float | None = None,
    w: float | None = None,
    r: float | None = None,
    resolution: int | None = None,
    coefficients: Any = None,
    strategy: str | Strategy | None = None,
    alpha: float | None = None,
    flops: float | None = None,
    norm: str | None = None,
    rules: RuleBook | None = None,
    allow_oversize: bool = False,
) -> ScalePlan:
    """Plan a scaled `base`: give phi, a FLOPs factor `flops`, or any of d, w, r (missing ones are 1.0).

    phi and `flops` follow the rule's strategy (compound, with its coefficients, unless the rule says
    otherwise) or `strategy`: 'compound', 'dWr' (with `alpha`, the share of the FLOPs growth given to
    width, 0.8 by default), 'depth', 'width' or 'resolution' (``scaling.strategies``). `flops` here is
    open-loop, phi = log(flops) / log(alpha * beta**2 * gamma**2); ``timm_compound.plan`` measures.
    A dimension the rule fixes (`depth: {fixed: ...}`) refuses a strategy or d/w/r that grows it.

    `norm` is the norm its layers use: 'batch' (the base's own, the default), 'group', 'layer', 'proxy'
    or 'proxy-layer' (``scaling.norms``), for families whose rule has a `norm` section.

    A plan above `timm_compound.scaling.limits` (10,000 blocks in a stage, 8,192 px) is refused
    with its size unless `allow_oversize=True`.

    >>> plan("efficientnet_b0", d=2.2, w=1.6, resolution=456).widths
    [24, 40, 64, 128, 176, 304, 512]
    """
    explicit = any(v is not None for v in (d, w, r))
    if sum(given is not None for given in (phi, flops)) + explicit > 1:
        raise CompoundError("give either phi or explicit d/w/r multipliers, or flops: one of them")
    if explicit and (strategy is not None or alpha is not None):
        raise CompoundError("a strategy shares a growth between d, w and r: give it phi or flops, not d/w/r")
    rules = rules or active_rules()
    rule, source_path = rules.rule_for(base)
    source = str(source_path)
    norm = norms.check(rule, norm, source)
    # explicit d/w/r follow no strategy: the coefficients are only recorded (a fitted plan keeps its own)
    chosen_strategy = Strategy() if explicit else strategies.choose(strategy, alpha, rule)
    if coefficients is not None and chosen_strategy.name != "compound":
        raise CompoundError(
            f"coefficients are the compound strategy's; strategy {chosen_strategy.label()} "
            "takes none (give strategy='compound' to use them)"
        )
    chosen = strategies.coefficients(chosen_strategy, rule, resolve_coefficients(rule, coefficients, source))
    if flops is not None:
        flops = _number("flops", flops, positive=True)
        phi = strategies.phi_for(flops, chosen)

    if phi is not None:
        strategies.refuse_fixed(chosen_strategy, chosen, rule, source)
        phi = _number("phi", phi, positive=False)
        try:
            mult = Multipliers(depth=chosen.alpha**phi, width=chosen.beta**phi, resolution=chosen.gamma**phi)
        except OverflowError:
            raise CompoundError(f"phi={phi:g} overflows the multipliers (alpha**phi); use a smaller phi") from None
    else:
        mult = Multipliers(
            depth=1.0 if d is None else _number("d", d, positive=True),
            width=1.0 if w is None else _number("w", w, positive=True),
            resolution=1.0 if r is None else _number("r", r, positive=True),
        )
        for part, reason in rule.fixed().items():
            if getattr(mult, part) != 1.0:
                raise CompoundError(
                    f"{part[0]}={getattr(mult, part):g} scales {part}, but rule {source} fixes it: {reason}"
                )
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise CompoundError(f"resolution must be a positive int, got {resolution!r}")

    call, base_structure = _base_reading(rule, base, source)
    depths = _scale_depths(rule, base_structure, mult.depth) if base_structure.depths else []
    widths = _scale_widths(rule, base_structure, mult.width) if base_structure.widths else []
    stem = _scale_part(rule, rule.stem, base_structure.stem, mult.width)
    head = _scale_part(rule, rule.head, base_structure.head, mult.width)
    start, exact, pixels, how = plan_resolution(rule, base, mult.resolution, resolution)
    base_depths, base_widths, derived = base_structure.depths, base_structure.widths, {}
    what = _describe(base, phi, mult)
    if structure.is_derived(rule):
        derived = structure.scale_derived(rule, call, mult.depth, mult.width, source)
        base_depths, base_widths = readback.realised_stages(base, rule, source, None, None, None, None, None)
        # the constructor decides the stages: check what d and w promise before building it
        promised = limits.size_of(
            [math.ceil(n * mult.depth) for n in base_depths], [math.ceil(c * mult.width) for c in base_widths], pixels
        )
        limits.check(promised, what, allow_oversize=allow_oversize)
        depths, widths = readback.realised_stages(base, rule, source, depths, widths, stem, head, derived, mult.width)
    elif rule.depth.fixed is not None or rule.width.fixed is not None:
        # a fixed dimension has no argument to read: its stages are counted once in the built base
        counted_depths, counted_widths = readback.realised_stages(base, rule, source, None, None, None, None, None)
        if rule.depth.fixed is not None:
            base_depths = depths = counted_depths
        if rule.width.fixed is not None:
            base_widths = widths = counted_widths
        if len(depths) != len(widths):
            raise RuleError(
                source,
                "stage_modules",
                f"counts {len(counted_depths)} stages in the built {base}, "
                f"but the rule's {'width' if rule.depth.fixed else 'depth'}.arg holds "
                f"{len(widths) if rule.depth.fixed else len(depths)}",
            )
    limits.check(limits.size_of(depths, widths, pixels), what, allow_oversize=allow_oversize)

    realised = Multipliers(
        depth=sum(depths) / sum(base_depths),
        width=sum(widths) / sum(base_widths),
        resolution=pixels / start,
    )
    scheduled = {name: schedule.at(phi) for name, schedule in rule.schedules.items()} if phi is not None else {}
    return ScalePlan(
        base=base,
        family=rule.family,
        rule_file=Path(source).name,
        phi=phi,
        coefficients=chosen,
        multipliers=mult,
        realised=realised,
        base_depths=base_depths,
        depths=depths,
        base_widths=base_widths,
        widths=widths,
        base_stem=base_structure.stem,
        stem=stem,
        base_head=base_structure.head,
        head=head,
        base_resolution=start,
        resolution_exact=exact,
        resolution=pixels,
        resolution_source=how,
        constructor_args=scheduled,
        rule=rule,
        structure_args=derived,
        strategy=chosen_strategy,
        flops=flops,
        norm=norm,
    )


_MAX_BASE_READINGS = 256
_base_readings: dict[tuple, tuple] = {}


def _base_reading(rule: Rule, base: str, source: str) -> tuple[timm_adapter.BuildCall, structure.BaseStructure]:
    """The base's build call and its structure as `rule` reads it, once per (base, rule): capturing
    runs timm's entrypoint (milliseconds), and a fit plans hundreds of phis. Both are only read."""
    key = (base, timm_adapter.entrypoint(base), id(rule), source)
    hit = _base_readings.get(key)
    if hit is None or hit[0] is not rule:
        call = timm_adapter.capture(base)
        _check_schedules(rule, call, source)
        norms.check_rule(rule, call, source)
        if len(_base_readings) >= _MAX_BASE_READINGS:
            _base_readings.pop(next(iter(_base_readings)))
        hit = _base_readings[key] = (rule, call, structure.read(rule, call, source))
    return hit[1], hit[2]


def clear_base_readings() -> None:
    """Forget every base's captured build call and structure (a cold start, for benchmarks)."""
    _base_readings.clear()


def _describe(base: str, phi: float | None, mult: Multipliers) -> str:
    if phi is not None:
        return f"{base} at phi={phi:g}"
    return f"{base} at d={mult.depth:g}, w={mult.width:g}, r={mult.resolution:g}"


def _check_schedules(rule: Rule, call: timm_adapter.BuildCall, source: str) -> None:
    """A schedule sets a constructor argument: it must be one the model class declares (not a timm
    loading option such as pretrained_cfg_overlay, and not one only **kwargs would swallow)."""
    for name in rule.schedules:
        if not call.accepts(name):
            raise RuleError(
                source,
                f"schedules.{name}",
                f"{call.model_cls.__name__} has no constructor argument {name!r} a schedule may set",
            )


def _fixed(index: int, fixed: list[int], count: int) -> bool:
    return index in fixed or index - count in fixed


def _scale_depths(rule: Rule, base, d: float) -> list[int]:
    """Each stage's blocks times d as its layout rounds them (whole groups of `period`, whole tree levels)."""
    policy, count, layout = rule.depth, len(base.depths), LAYOUTS[rule.depth.layout]
    return [
        blocks if _fixed(i, policy.fixed_stages, count) else max(floor, layout.scale_depth(blocks, d, policy))
        for i, (blocks, floor) in enumerate(zip(base.depths, base.min_depths))
    ]


def _scale_widths(rule: Rule, base, w: float) -> list[int]:
    policy, count = rule.width, len(base.widths)
    return [
        built
        if _fixed(i, policy.fixed_stages, count)
        else rounding.scale_width(channels, w, policy.divisor, policy.round_limit, policy.min)
        for i, (channels, built) in enumerate(zip(base.scale_widths, base.widths))
    ]


def _scale_part(rule: Rule, part, channels: int | None, w: float) -> int | None:
    if part.policy != "scale" or channels is None:
        return channels
    scaled = rounding.scale_width(channels, w, rule.width.divisor, rule.width.round_limit, rule.width.min)
    return max(channels, scaled) if part.no_shrink else scaled


def variant_resolution(base: str, phi: float, rules: RuleBook | None = None) -> tuple[int, int]:
    """(base pixels, planned pixels) of `base` at `phi`: what a registered name's pretrained_cfg needs,
    without reading the structure (registration builds nothing)."""
    rule, _ = (rules or active_rules()).rule_for(base)
    c = rule.coefficients
    try:
        factors = (c.alpha**phi, c.beta**phi, c.gamma**phi)
    except OverflowError:
        factors = (math.inf,)
    if not all(math.isfinite(f) for f in factors):
        raise CompoundError(
            f"phi={phi:g} overflows the multipliers (alpha**phi, beta**phi, gamma**phi are not "
            "finite numbers); use a smaller phi"
        )
    if c.alpha > 1 and c.alpha**phi > limits.MAX_BLOCKS_PER_STAGE:
        raise CompoundError(
            f"phi={phi:g} multiplies depth by {c.alpha**phi:,.0f}: more than "
            f"{limits.MAX_BLOCKS_PER_STAGE:,} blocks in a stage"
        )
    start, _, pixels, _ = plan_resolution(rule, base, factors[2])
    if pixels > limits.MAX_RESOLUTION:
        raise CompoundError(f"phi={phi:g} gives a {pixels:,} px input (limit {limits.MAX_RESOLUTION:,})")
    return start, pixels


def check_resolves(rule: Rule, rules: RuleBook) -> None:
    """Plan phi = 0 of each architecture `rule` covers, so a constructor argument that does not exist
    or has the wrong shape is an error naming the rule file and field now, not at build time."""
    for arch in rule.architectures:
        try:
            plan(arch, 0, rules=rules)
        except RuleError:
            raise
        except CompoundError as error:  # e.g. a size limit: name the file it comes from
            raise RuleError(rules.rule_for(arch)[1], None, str(error)) from None
