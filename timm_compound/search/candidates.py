"""Each search point planned at phi and measured after rounding: what a trial trains and what it costs.

Rounding moves real cost away from the nominal factor (resnet18 at phi = 1 with the paper's
coefficients costs 2.41x its base, not 1.92x), so every candidate carries both. With `match_cost`,
every candidate is instead fitted (`timm_compound.fit`, resolution fill) to the same realised GMACs:
the nominal cost of the factor at phi, so candidates are compared at equal real cost.

A proxy `resolution` trains the base at that many pixels and each candidate at it times the
candidate's resolution multiplier, rounded by the rule's resolution policy; GMACs are measured at
both sizes (the rule's own, which a written rule will use, and the trained one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from timm_compound.cost.fit import fit
from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError
from timm_compound.scaling import rounding
from timm_compound.scaling.plan import ScalePlan, plan
from timm_compound.scaling.rulebook import active_rules
from timm_compound.scaling.schema import Coefficients, Rule
from timm_compound.search.grid import Point


@dataclass(frozen=True)
class Candidate:
    """One point, planned and measured. `ratio` is realised MACs over the base's at the trained size,
    `ratio_native` the same at the rule's own sizes; `nominal` is the factor to the power phi."""

    point: Point
    plan: ScalePlan
    planned_by: str  # "phi" (plan(base, phi, coefficients)), "multipliers" (d/w/r: outside the
    # rule's constraint) or "fit" (match_cost)
    phi: float  # the phi planned; under match_cost the fitted one
    nominal: float
    params: int
    macs_native: int
    ratio_native: float
    train_resolution: int
    macs: int
    ratio: float

    @property
    def key(self) -> str:
        return self.point.key

    @property
    def model_key(self) -> str:
        """Everything the trained model depends on: candidates that round to the same model and input
        size train identically (same seed, data and schedule), so they share one training."""
        scaled = self.plan
        return json.dumps(
            [
                scaled.depths,
                scaled.widths,
                scaled.stem,
                scaled.head,
                scaled.structure_args,
                scaled.constructor_args,
                self.train_resolution,
            ],
            sort_keys=True,
            default=str,
        )

    def attrs(self) -> dict[str, Any]:
        """What a trial records about its candidate (Optuna user_attrs: JSON values)."""
        return {
            "alpha": self.point.alpha,
            "beta": self.point.beta,
            "gamma": self.point.gamma,
            "kind": self.point.kind,
            "nominal": self.nominal,
            "planned_by": self.planned_by,
            "phi": self.phi,
            "depths": list(self.plan.depths),
            "widths": list(self.plan.widths),
            "resolution": self.plan.resolution,
            "train_resolution": self.train_resolution,
            "params": self.params,
            "gmacs": self.macs / 1e9,
            "ratio": self.ratio,
            "gmacs_native": self.macs_native / 1e9,
            "ratio_native": self.ratio_native,
        }


@dataclass
class CandidateTable:
    """The base's own cost, then every candidate by key (in search order)."""

    base: str
    phi: float
    rule_file: str
    base_resolution: int
    train_resolution: int  # the base's trained input size (the proxy resolution)
    base_macs: int  # at the trained size
    base_macs_native: int
    candidates: dict[str, Candidate] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return list(self.candidates)

    def __getitem__(self, key: str) -> Candidate:
        return self.candidates[key]

    def twins(self, key: str) -> list[str]:
        """The other candidates that round to the same trained model."""
        model = self.candidates[key].model_key
        return [other for other, c in self.candidates.items() if other != key and c.model_key == model]


def rule_of(base: str) -> tuple[Rule, str]:
    """The rule covering `base` and its file name; UnknownModelError (a CompoundError) when none does."""
    rule, source = active_rules().rule_for(base)
    return rule, source.name


def meets_constraint(rule: Rule, point: Point) -> bool:
    try:
        rule.constraint.check(Coefficients(alpha=point.alpha, beta=point.beta, gamma=point.gamma))
    except ValueError:
        return False
    return True


def plan_candidates(
    base: str,
    points: list[Point],
    *,
    phi: float,
    resolution: int | None = None,
    match_cost: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CandidateTable:
    """Plan and measure every point; `progress(n)` after each."""
    rule, rule_file = rule_of(base)
    if match_cost:
        outside = [p.key for p in points if not meets_constraint(rule, p)]
        if outside:
            raise CompoundError(
                f"match_cost fits each candidate with timm_compound.fit, which plans with {rule_file}'s constraint "
                f"(alpha*beta^2*gamma^2 = {rule.constraint.flops_factor:g} +- {rule.constraint.tolerance:.0%}); "
                f"{', '.join(outside)} lie outside it: search at the rule's flops_factor and tolerance, or without match_cost"
            )
    base_plan = plan(base, 0)
    train_resolution = base_plan.resolution if resolution is None else _pixels(resolution, rule, rule_file)
    base_native = measure(base_plan)
    base_trained = measure(base_plan, resolution=train_resolution)
    table = CandidateTable(
        base, phi, rule_file, base_plan.resolution, train_resolution, base_trained.macs, base_native.macs
    )
    for index, point in enumerate(points):
        nominal = point.factor**phi
        if match_cost:
            fitted = fit(base, max_gmacs=base_native.macs * nominal / 1e9, coefficients=point.coefficients)
            scaled, how, planned_phi = fitted.plan, "fit", fitted.phi
        elif meets_constraint(rule, point):
            scaled, how, planned_phi = plan(base, phi, coefficients=point.coefficients), "phi", phi
        else:
            scaled, how, planned_phi = _by_multipliers(base, point, phi), "multipliers", phi
        pixels = _train_pixels(scaled, rule, resolution)
        native = measure(scaled)
        trained = native if pixels == scaled.resolution else measure(scaled, resolution=pixels)
        table.candidates[point.key] = Candidate(
            point,
            scaled,
            how,
            planned_phi,
            nominal,
            native.params,
            native.macs,
            native.macs / base_native.macs,
            pixels,
            trained.macs,
            trained.macs / base_trained.macs,
        )
        if progress is not None:
            progress(index + 1)
    return table


def _pixels(resolution: Any, rule: Rule, rule_file: str) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise CompoundError(f"resolution (the base's trained input size) must be a positive int, got {resolution!r}")
    floor = rule.resolution.min
    if resolution < floor:  # candidates are rounded up to the floor: gamma would change nothing, ratios inflate
        raise CompoundError(
            f"resolution {resolution} px is below {rule_file}'s resolution.min ({floor} px): every "
            f"candidate would train at {floor} px or more, so gamma would change nothing and each "
            f"candidate's cost would be compared with the base at {resolution} px; use at least {floor}"
        )
    return resolution


def _by_multipliers(base: str, point: Point, phi: float) -> ScalePlan:
    """A point outside the rule's constraint (a search at another flops_factor or tolerance): the same
    multipliers as explicit d, w, r, with the rule's phi schedules (dropout) at phi."""
    explicit = plan(base, d=point.alpha**phi, w=point.beta**phi, r=point.gamma**phi)
    return explicit.model_copy(update={"constructor_args": dict(plan(base, phi).constructor_args)})


def _train_pixels(scaled: ScalePlan, rule: Rule, resolution: int | None) -> int:
    """The plan's own input size, or the proxy base size times the plan's resolution multiplier, rounded
    by the rule (a fitted plan's multiplier is its realised one: the fill chose its pixels)."""
    if resolution is None:
        return scaled.resolution
    r = (
        scaled.resolution / scaled.base_resolution
        if scaled.resolution_source == "override"
        else scaled.multipliers.resolution
    )
    policy = rule.resolution
    return rounding.scale_resolution(resolution, r, policy.divisor, policy.rounding, policy.min)
