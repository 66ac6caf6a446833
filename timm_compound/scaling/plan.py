"""From (base, phi or d/w/r) to a ScalePlan: pure data, computed without building a model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from timm_compound.errors import CompoundError
from timm_compound.scaling import rounding, structure, timm_adapter
from timm_compound.scaling.rulebook import RuleBook, active_rules
from timm_compound.scaling.schema import Coefficients, Rule


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
    rules: RuleBook | None = None,
) -> ScalePlan:
    """Plan a scaled `base`: give phi (compound) or any of d, w, r (missing ones are 1.0).

    >>> plan("efficientnet_b0", d=2.2, w=1.6, resolution=456).widths
    [24, 40, 64, 128, 176, 304, 512]
    """
    if phi is not None and any(v is not None for v in (d, w, r)):
        raise CompoundError("give either phi or explicit d/w/r multipliers, not both")
    rules = rules or active_rules()
    rule, source_path = rules.rule_for(base)
    source = str(source_path)
    chosen = resolve_coefficients(rule, coefficients, source)

    if phi is not None:
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
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise CompoundError(f"resolution must be a positive int, got {resolution!r}")

    base_structure = structure.read(rule, timm_adapter.capture(base), source)
    depths = _scale_depths(rule, base_structure, mult.depth)
    widths = _scale_widths(rule, base_structure.widths, mult.width)
    stem = _scale_part(rule, rule.stem, base_structure.stem, mult.width)
    head = _scale_part(rule, rule.head, base_structure.head, mult.width)
    start, exact, pixels, how = plan_resolution(rule, base, mult.resolution, resolution)

    realised = Multipliers(
        depth=sum(depths) / sum(base_structure.depths),
        width=sum(widths) / sum(base_structure.widths),
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
        base_depths=base_structure.depths,
        depths=depths,
        base_widths=base_structure.widths,
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
    )


def _fixed(index: int, fixed: list[int], count: int) -> bool:
    return index in fixed or index - count in fixed


def _scale_depths(rule: Rule, base, d: float) -> list[int]:
    policy, count = rule.depth, len(base.depths)
    return [
        blocks if _fixed(i, policy.fixed_stages, count)
        else max(floor, rounding.scale_depth(blocks, d, policy.rounding, policy.min))
        for i, (blocks, floor) in enumerate(zip(base.depths, base.min_depths))
    ]


def _scale_widths(rule: Rule, widths: list[int], w: float) -> list[int]:
    policy, count = rule.width, len(widths)
    return [
        channels if _fixed(i, policy.fixed_stages, count)
        else rounding.scale_width(channels, w, policy.divisor, policy.round_limit, policy.min)
        for i, channels in enumerate(widths)
    ]


def _scale_part(rule: Rule, part, channels: int | None, w: float) -> int | None:
    if part.policy != "scale" or channels is None:
        return channels
    scaled = rounding.scale_width(channels, w, rule.width.divisor, rule.width.round_limit, rule.width.min)
    return max(channels, scaled) if part.no_shrink else scaled


def check_resolves(rule: Rule, rules: RuleBook) -> None:
    """Plan phi = 0 of each architecture `rule` covers, so a constructor argument that does not exist
    or has the wrong shape is an error naming the rule file and field now, not at build time."""
    for arch in rule.architectures:
        plan(arch, 0, rules=rules)

