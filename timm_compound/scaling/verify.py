"""A plan from outside (a published config.json) is trusted only if its own rule reproduces it.

A published plan carries its rule, so a receiver needs no rules of its own; the same freedom would
let a hostile config name any constructor argument or any size. So before anything is built, the
plan is re-planned from its own rule, coefficients and multipliers (no model is built for direct
layouts), and every structural field must come out identical; the scheduled constructor arguments
must be the ones the rule's `schedules` declare, finite and in their ranges. Size limits apply first.
"""

from __future__ import annotations

import math
from pathlib import Path

from timm_compound.errors import CompoundError, RuleError
from timm_compound.scaling import limits
from timm_compound.scaling.plan import ScalePlan, plan
from timm_compound.scaling.rulebook import RuleBook

# fields that decide the tensors a plan builds
_REPRODUCED = (
    "family",
    "base_depths",
    "depths",
    "base_widths",
    "widths",
    "base_stem",
    "stem",
    "base_head",
    "head",
    "base_resolution",
    "resolution",
    "resolution_source",
    "structure_args",
    "multipliers",
)


def verify_plan(scaled: ScalePlan, where: str) -> ScalePlan:
    """`scaled` unchanged if its own rule reproduces it within the size limits; else a CompoundError."""
    limits.check(scaled.size, where)
    book = RuleBook.alone(scaled.rule, Path(scaled.rule_file))
    override = scaled.resolution if scaled.resolution_source == "override" else None
    try:
        if scaled.phi is not None:
            # the plan's coefficients are its strategy's (dWr's too): compound along them reproduces it
            again = plan(
                scaled.base,
                scaled.phi,
                resolution=override,
                coefficients=scaled.coefficients,
                strategy="compound",
                norm=scaled.norm,
                rules=book,
            )
        else:
            mult = scaled.multipliers
            again = plan(
                scaled.base,
                d=mult.depth,
                w=mult.width,
                r=mult.resolution,
                resolution=override,
                coefficients=scaled.coefficients,
                norm=scaled.norm,
                rules=book,
            )
    except RuleError as error:
        raise CompoundError(
            f"{where}: its rule does not apply to {scaled.base}: {error.field or ''} {error.reason}".replace("  ", " ")
        ) from None
    except CompoundError as error:
        raise CompoundError(f"{where}: {error}") from None
    for name in _REPRODUCED:
        if getattr(again, name) != getattr(scaled, name):
            raise CompoundError(
                f"{where}: {name} = {getattr(scaled, name)!r} is not what its own rule gives "
                f"({getattr(again, name)!r}): the plan was edited or made by another rule"
            )
    _check_constructor_args(scaled, again, where)
    return scaled


def _check_constructor_args(scaled: ScalePlan, again: ScalePlan, where: str) -> None:
    """Only the rule's schedules, with finite values in their ranges (equal to the schedule at phi
    when the plan has one; fit's width fill keeps the fitted phi's values on an explicit d/w/r plan)."""
    schedules = scaled.rule.schedules
    for name, value in scaled.constructor_args.items():
        field = f"constructor_args.{name}"
        if name not in schedules:
            raise CompoundError(
                f"{where}: {field} is not an argument its rule's schedules declare "
                f"({', '.join(schedules) or 'none'}): refused"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CompoundError(f"{where}: {field} = {value!r} is not a finite number")
        schedule = schedules[name]
        if (schedule.min is not None and value < schedule.min) or (schedule.max is not None and value > schedule.max):
            raise CompoundError(
                f"{where}: {field} = {value!r} is outside its schedule's range [{schedule.min}, {schedule.max}]"
            )
        if scaled.phi is not None and value != again.constructor_args.get(name):
            raise CompoundError(
                f"{where}: {field} = {value!r} is not its schedule at phi={scaled.phi:g} "
                f"({again.constructor_args.get(name)!r})"
            )
