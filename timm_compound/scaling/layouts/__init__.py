"""The shapes timm constructors give their stages in, one module each; `layout(name)` picks one.

No module here knows an architecture family: a rule names the layout and the arguments.
"""

from __future__ import annotations

from timm_compound.scaling.layouts.base import Layout
from timm_compound.scaling.layouts.block_args import BlockArgs
from timm_compound.scaling.layouts.counts import Counts, IntList, Scalar
from timm_compound.scaling.layouts.derived import Fields, Multiplier
from timm_compound.scaling.layouts.entries import Entries
from timm_compound.scaling.layouts.levels import Levels
from timm_compound.scaling.layouts.rows import Rows
from timm_compound.scaling.layouts.separated import Separated

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Counts(),
        Levels(),
        IntList(),
        Scalar(),
        BlockArgs(),
        Rows(),
        Separated(),
        Entries(),
        Multiplier(),
        Fields(),
    )
}


def layout(name: str) -> Layout:
    return LAYOUTS[name]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fitting(value, part: str) -> list[str]:
    """Layouts a constructor argument's value has the shape of, for error messages."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ["fields (with a dotted path to a field)"]
    if _is_int(value):
        return ["scalar", "fields"] if part == "width" else ["fields"]
    if isinstance(value, float):
        return ["multiplier", "fields"]
    if not isinstance(value, (list, tuple)) or not value:
        return []
    if all(map(_is_int, value)):
        return ["counts" if part == "depth" else "list"]
    if all(isinstance(stage, (list, tuple)) and stage and all(isinstance(b, dict) for b in stage) for stage in value):
        return ["block_args"]
    if all(
        isinstance(stage, (list, tuple)) and stage and all(isinstance(row, (list, tuple)) for row in stage)
        for stage in value
    ):
        return ["rows"]
    others = {item for item in value if not _is_int(item)}
    if len(others) == 1 and any(map(_is_int, value)):
        return [f"separated (marker: {next(iter(others))})"]
    return []


def shape_hint(value, part: str) -> str:
    """'; it fits layout rows (layouts: counts, ...)' for an argument the rule's layout cannot read."""
    names = [name for name, layout in LAYOUTS.items() if _holds(name, part)]
    fits = fitting(value, part)
    fit = f"it fits layout {' or '.join(fits)}" if fits else "it fits no layout"
    return f"; {fit} (layouts for {part}: {', '.join(names)})"


def _holds(name: str, part: str) -> bool:
    depth_only, width_only = {"counts", "levels", "entries"}, {"list", "scalar"}
    return name not in (width_only if part == "depth" else depth_only)
