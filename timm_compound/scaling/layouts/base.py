"""What every layout shares: the place an error points at, the reader/writer interface, and
argument paths (`model_cfg.depth`) into a constructor's dataclass or dict arguments."""

from __future__ import annotations

import dataclasses
import reprlib
from dataclasses import dataclass
from typing import Any

from timm_compound.errors import RuleError
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

    def realised_widths(self, widths: list[int], policy) -> list[int]:
        """The widths the constructor builds from the ones read (the same, unless it rounds them)."""
        return widths

    def scale(self, call: BuildCall, policy, m: float, where: Where, d: float = 1.0) -> dict[str, Any]:
        """Derived layouts: {argument path: scaled value}."""
        raise NotImplementedError

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        raise NotImplementedError

    def write_widths(self, value: Any, policy, widths: list[int], base_widths: list[int],
                     w: float | None = None) -> Any:
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
    """The value at `path`: a constructor argument, then fields of dataclasses or keys of dicts."""
    first, *rest = path.split(".")
    try:
        value = call.arg(first)
    except KeyError as error:
        raise where.error(str(error.args[0]), field) from None
    walked = first
    for name in rest:
        value = _child(value, name, walked, where, field)
        walked = f"{walked}.{name}"
    return value


def set_path(call: BuildCall, path: str, value: Any, where: Where, field: str = "arg") -> None:
    """Set `path` to `value` in the call, copying (never mutating) each dataclass or dict on the way:
    timm shares its config objects between builds."""
    first, *rest = path.split(".")
    if not rest:
        call.set(first, value)
        return
    call.set(first, _replaced(get_path(call, first, where, field), rest, value, first, where, field))


def _child(value: Any, name: str, walked: str, where: Where, field: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value)]
        if name not in names:
            raise where.error(f"{walked} ({type(value).__name__}) has no field {name!r}; its fields: "
                              f"{', '.join(names)}", field)
        return getattr(value, name)
    if isinstance(value, dict):
        if name not in value:
            raise where.error(f"{walked} has no key {name!r}; its keys: {', '.join(map(str, value))}", field)
        return value[name]
    raise where.error(f"{walked} is {type(value).__name__}, not a dataclass or dict: "
                      f"the path cannot reach {name!r}", field)


def _replaced(container: Any, rest: list[str], value: Any, walked: str, where: Where, field: str) -> Any:
    name, *deeper = rest
    _child(container, name, walked, where, field)  # the error, if it does not exist
    new = value if not deeper else _replaced(_child(container, name, walked, where, field), deeper, value,
                                             f"{walked}.{name}", where, field)
    if isinstance(container, dict):
        return {**container, name: new}
    return dataclasses.replace(container, **{name: new})
