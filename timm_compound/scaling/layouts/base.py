"""What every layout shares: the place an error points at, the reader/writer interface, and
argument paths (`model_cfg.blocks.*.d`, ``timm_compound.scaling.paths``) into a constructor's arguments."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

from timm_compound.errors import RuleError
from timm_compound.scaling import paths
from timm_compound.scaling.rounding import scale_depth, scale_width
from timm_compound.scaling.timm_adapter import BuildCall


@dataclass(frozen=True)
class Where:
    """The rule file and field a layout's error names (`depth.arg`, `width.column`, ...)."""

    source: str
    part: str  # "depth" or "width"

    def error(self, message: str, field: str = "arg") -> RuleError:
        return RuleError(self.source, f"{self.part}.{field}", message)


class Layout:
    """One shape of constructor argument. Direct layouts read per-stage depths or widths from the
    argument and write planned ones back; derived layouts (`derived = True`) scale a few numbers
    and leave the stages to the constructor, so the plan reads them back from a build."""

    name = ""
    derived = False
    one_for_all = False  # one value widens every stage (the caller repeats it per stage)

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        """(blocks per stage, fewest blocks each stage can keep)."""
        raise where.error(f"layout {self.name!r} does not hold depths", "layout")

    def read_widths(self, value: Any, policy, where: Where) -> list[int]:
        raise where.error(f"layout {self.name!r} does not hold widths", "layout")

    def scale_depth(self, blocks: int, d: float, policy) -> int:
        """A stage's blocks times d, rounded by the policy, in whole groups of `period` blocks."""
        period = policy.period
        return period * scale_depth(blocks // period, d, policy.rounding, -(-policy.min // period))

    def realised_widths(self, widths: list[int], policy) -> list[int]:
        """The widths the constructor builds from the ones read (the same, unless it rounds them)."""
        return widths

    def scale(self, call: BuildCall, policy, m: float, where: Where, d: float = 1.0) -> dict[str, Any]:
        """Derived layouts: {argument path: scaled value}."""
        raise NotImplementedError

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        raise NotImplementedError

    def write_widths(
        self, value: Any, policy, widths: list[int], base_widths: list[int], w: float | None = None
    ) -> Any:
        """The argument with the planned widths; `base_widths` as read from it, `w` the plan's multiplier."""
        raise NotImplementedError


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 6, 6, 4
_SHORT.maxstring = _SHORT.maxother = 40


def short(value: Any) -> str:
    """repr() cut to a readable length: a decoded arch_def is thousands of characters."""
    return _SHORT.repr(value)


def int_list(value: Any, arg: str, where: Where) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise where.error(f"constructor argument {arg!r} is {short(value)}, not a list of ints")
    return list(value)


def get_path(call: BuildCall, path: str, where: Where, field: str = "arg") -> Any:
    """The value at `path` (``timm_compound.scaling.paths``): a constructor argument, then fields,
    keys and items; a list of values where the path has `*` or a slice."""
    first, *rest = paths.steps(path)
    try:
        value = call.arg(first)
    except KeyError as error:
        raise where.error(str(error.args[0]), field) from None
    try:
        return paths.read(value, rest, first)
    except paths.PathError as error:
        raise where.error(str(error), field) from None


def set_path(call: BuildCall, path: str, value: Any, where: Where, field: str = "arg") -> None:
    """Set `path` to `value` in the call, rebuilding (never mutating) each container on the way:
    timm shares its config objects between builds."""
    first, *rest = paths.steps(path)
    if not rest:
        call.set(first, value)
        return
    current = get_path(call, first, where, field)
    try:
        call.set(first, paths.write(current, rest, value, first))
    except paths.PathError as error:
        raise where.error(str(error), field) from None


def scale_numbers(value: Any, factor: float, policy, where: Where, field: str = "arg") -> Any:
    """`value` with every number scaled by `factor`, lists and tuples item by item (their type kept):
    ints rounded by the policy (depth: `rounding`, `min`; width: `divisor`, `round_limit`, `min`, and
    0 stays 0, a branch that is not there), floats multiplied."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
        raise where.error(f"{short(value)} is not a number or a list of numbers", field)
    if isinstance(value, (list, tuple)):
        items = [scale_numbers(item, factor, policy, where, field) for item in value]
        return items if isinstance(value, list) else type(value)(items) if type(value) is tuple else type(value)(*items)
    if isinstance(value, float):
        return round(value * factor, 6)
    if where.part == "depth":
        return scale_depth(value, factor, policy.rounding, policy.min)
    return 0 if value == 0 else scale_width(value, factor, policy.divisor, policy.round_limit, policy.min)
