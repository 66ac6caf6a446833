"""Layouts where the constructor builds the stages from a few numbers: `multiplier` (float
multipliers it applies itself: `depth_mult`, `width_mult`, GhostNet's `width`) and `fields` (ints
or floats, often in a config dataclass: RegNet's `model_cfg.depth`, `model_cfg.w0`, `model_cfg.wa`).
The rule scales the numbers; the plan reads the realised stages back from a meta-device build."""

from __future__ import annotations

from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where, get_path, scale_numbers, short
from timm_compound.scaling.timm_adapter import BuildCall


def _paths(policy) -> list[str]:
    return [policy.arg] if isinstance(policy.arg, str) else list(policy.arg)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Multiplier(Layout):
    name = "multiplier"
    derived = True

    def scale(self, call: BuildCall, policy, m: float, where: Where, d: float = 1.0) -> dict[str, Any]:
        """{path: base value x m} for each path; the base value is usually 1.0."""
        scaled = {}
        for path in _paths(policy):
            value = get_path(call, path, where)
            if not _is_number(value):
                raise where.error(
                    f"{path} is {short(value)}, not a number: layout 'multiplier' multiplies it by "
                    f"{'d' if where.part == 'depth' else 'w'}"
                )
            scaled[path] = round(float(value) * m, 6)
        return scaled


class Fields(Layout):
    name = "fields"
    derived = True

    def scale(self, call: BuildCall, policy, m: float, where: Where, d: float = 1.0) -> dict[str, Any]:
        """{path: scaled value}: ints rounded by the rule's policy (depth: `rounding`, `min`; width:
        `divisor`, `round_limit`, `min`), floats multiplied as they are, lists and tuples (a path with
        `*`, a tuple of branch widths) item by item; a width rule's `per_block` fields by w/d."""
        scaled = {}
        factors = [(path, m, "arg") for path in _paths(policy)]
        factors += [(path, m / d, f"per_block.{i}") for i, path in enumerate(getattr(policy, "per_block", []))]
        for path, factor, field in factors:
            value = get_path(call, path, where, field)
            if not _is_number(value) and not (isinstance(value, (list, tuple)) and value):
                raise where.error(f"{path} is {short(value)}, not an int or float field", field)
            scaled[path] = scale_numbers(value, factor, policy, where, field)
        return scaled
