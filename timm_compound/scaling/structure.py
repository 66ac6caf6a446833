"""Reading a base's stages from its constructor arguments, and writing a plan back into them.

A rule's `layout` names one of the generic shapes in `timm_compound.scaling.layouts`; this module
reads and writes through them and knows no family. Derived layouts (`multiplier`, `fields`) hold
no stages: `scale_derived` scales their numbers and the plan reads the stages back from a build.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from timm_compound.errors import RuleError
from timm_compound.scaling.layouts import LAYOUTS, shape_hint
from timm_compound.scaling.layouts.base import Layout, Where, get_path, scale_numbers, set_path
from timm_compound.scaling.schema import PartRule, Rule
from timm_compound.scaling.timm_adapter import BuildCall


@dataclass(frozen=True)
class BaseStructure:
    """What the base model's constructor is given: per-stage depths and widths, stem and head.

    Empty depths/widths for derived layouts (the plan reads them from a build). `scale_widths` are
    the values widths scale from: the constructor's own numbers, where `widths` are what it builds
    from them (timm's EfficientNet builder rounds arch_def's out_chs to the entrypoint's divisor).
    """

    depths: list[int]
    widths: list[int]
    stem: int | None
    head: int | None
    min_depths: list[int]  # a stage of k different block types keeps at least k blocks
    scale_widths: list[int]


def _layout(policy) -> Layout | None:
    """The layout a depth or width rule names; None for a fixed dimension."""
    return None if policy.fixed is not None else LAYOUTS[policy.layout]


def is_derived(rule: Rule) -> bool:
    """Does the constructor, not the rule, decide the stages (so the plan must read them back)?"""
    return any(layout is not None and layout.derived for layout in (_layout(rule.depth), _layout(rule.width)))


def derived_fields(rule: Rule) -> str:
    """The rule fields a constructor's rejection of derived values points at."""
    fields = [f"{part}.arg" for part in ("depth", "width") if (_layout(getattr(rule, part)) or Layout()).derived]
    fields += [f"width.scale_with.{index}" for index in range(len(rule.width.scale_with))]
    return ", ".join(fields)


def _part(part: PartRule, call: BuildCall, source: str, field: str) -> int | None:
    if part.policy == "derived":
        return None
    if part.arg is None:
        return part.value
    value = get_path(call, part.arg, Where(source, field))
    if not isinstance(value, int) or isinstance(value, bool):
        raise RuleError(source, f"{field}.arg", f"constructor argument {part.arg!r} is {value!r}, not an int")
    return value


@contextmanager
def _hinting(value: Any, part: str):
    """An argument of the wrong shape for its layout: say which layouts it does fit."""
    try:
        yield
    except RuleError as error:
        if error.field != f"{part}.arg":
            raise
        raise RuleError(error.source, error.field, error.reason + shape_hint(value, part)) from None


def read(rule: Rule, call: BuildCall, source: str) -> BaseStructure:
    """The base's structure, as the rule's layouts see it in the constructor arguments."""
    depth_layout, width_layout = _layout(rule.depth) or Layout(), _layout(rule.width) or Layout()
    depth_where, width_where = Where(source, "depth"), Where(source, "width")
    depths: list[int] = []
    min_depths: list[int] = []
    widths: list[int] = []
    if rule.depth.fixed is None and not depth_layout.derived:
        value = get_path(call, rule.depth.arg, depth_where)
        with _hinting(value, "depth"):
            depths, min_depths = depth_layout.read_depths(value, rule.depth, depth_where)
    if rule.width.fixed is None and not width_layout.derived:
        value = get_path(call, rule.width.arg, width_where)
        with _hinting(value, "width"):
            widths = width_layout.read_widths(value, rule.width, width_where)
        if width_layout.one_for_all:
            widths = widths * len(depths)
    for index, path in enumerate(rule.width.scale_with):  # each must exist and hold widths
        scale_numbers(
            get_path(call, path, width_where, f"scale_with.{index}"),
            1.0,
            rule.width,
            width_where,
            f"scale_with.{index}",
        )
    uneven = [index for index, blocks in enumerate(depths) if blocks % rule.depth.period]
    if uneven:
        raise RuleError(
            source,
            "depth.period",
            f"stage {uneven[0]} has {depths[uneven[0]]} blocks, not a multiple of the period {rule.depth.period}",
        )
    if depths and widths and len(depths) != len(widths):
        raise RuleError(source, "width.arg", f"{len(depths)} stage depths but {len(widths)} stage widths")
    for field, stages in (
        ("depth.fixed_stages", rule.depth.fixed_stages),
        ("width.fixed_stages", rule.width.fixed_stages),
    ):
        count = len(depths or widths)
        bad = [s for s in stages if not -count <= s < count]
        if bad:
            raise RuleError(source, field, f"stage index {bad} out of range for {count} stages")
    return BaseStructure(
        depths=depths,
        widths=width_layout.realised_widths(widths, rule.width),
        stem=_part(rule.stem, call, source, "stem"),
        head=_part(rule.head, call, source, "head"),
        min_depths=min_depths,
        scale_widths=widths,
    )


def scale_derived(rule: Rule, call: BuildCall, d: float, w: float, source: str) -> dict[str, Any]:
    """{argument path: value} for the derived layouts: their numbers scaled by d or w."""
    values: dict[str, Any] = {}
    for part, m in (("depth", d), ("width", w)):
        policy = getattr(rule, part)
        layout = _layout(policy)
        if layout is not None and layout.derived:
            values.update(layout.scale(call, policy, m, Where(source, part), d=d))
    return values


def write(
    rule: Rule,
    call: BuildCall,
    depths: list[int],
    widths: list[int],
    stem: int | None,
    head: int | None,
    derived: dict[str, Any] | None = None,
    w: float | None = None,
    source: str = "",
) -> None:
    """Put planned depths, widths, stem and head into the constructor arguments (in place).

    `derived` is the plan's `structure_args` (the scaled numbers of `multiplier` and `fields`
    layouts) and `w` its width multiplier (`rows` and `width.scale_with` scale by it); a rule with
    such a layout cannot be written without them: use `write_plan`. A fixed dimension is left as it is.
    """
    depth_layout, width_layout = _layout(rule.depth), _layout(rule.width)
    where, depth_where = Where(source, "width"), Where(source, "depth")
    if is_derived(rule):
        if derived is None:
            raise RuleError(None, None, f"the {rule.family} rule's layouts need the plan's structure_args to build")
        depth_paths = [rule.depth.arg] if isinstance(rule.depth.arg, str) else list(rule.depth.arg or [])
        for path, value in derived.items():
            set_path(call, path, value, depth_where if path in depth_paths else where)
    writes_widths = width_layout is not None and not width_layout.derived
    base_widths = (
        width_layout.read_widths(get_path(call, rule.width.arg, where), rule.width, where) if writes_widths else []
    )
    if depth_layout is not None and not depth_layout.derived:
        set_path(
            call,
            rule.depth.arg,
            depth_layout.write_depths(get_path(call, rule.depth.arg, depth_where), rule.depth, depths),
            depth_where,
        )
    if writes_widths:
        value = get_path(call, rule.width.arg, where)
        set_path(call, rule.width.arg, width_layout.write_widths(value, rule.width, widths, base_widths, w), where)
    if rule.width.scale_with and w is None:
        raise RuleError(None, None, f"the {rule.family} rule's width.scale_with scales by the plan's w: use write_plan")
    for index, path in enumerate(rule.width.scale_with):
        field = f"scale_with.{index}"
        set_path(
            call, path, scale_numbers(get_path(call, path, where, field), w, rule.width, where, field), where, field
        )
    for name, part, planned in (("stem", rule.stem, stem), ("head", rule.head, head)):
        if part.policy == "scale":
            set_path(call, part.arg, planned, Where(source, name))


def write_plan(call: BuildCall, plan) -> None:
    """Write a ScalePlan's structure into a captured build call."""
    write(
        plan.rule,
        call,
        plan.depths,
        plan.widths,
        plan.stem,
        plan.head,
        plan.structure_args,
        plan.multipliers.width,
        plan.rule_file,
    )


def extra_inputs(plan) -> tuple:
    """What building a plan reads beyond its depths, widths, stem, head and constructor_args: the
    numbers a `multiplier`/`fields` layout sets, and w where `rows` scales every row by it. Plans that
    agree on all of these build the same model (a key for caches of built structures)."""
    w = plan.multipliers.width if plan.rule.width.layout == "rows" or plan.rule.width.scale_with else None
    norm = getattr(plan, "norm", "batch")
    return tuple(sorted((path, _frozen(value)) for path, value in plan.structure_args.items())), w, norm


def _frozen(value: Any) -> Any:
    """Lists (a path with `*` sets one) as tuples, so the inputs can key a cache."""
    return tuple(_frozen(item) for item in value) if isinstance(value, (list, tuple)) else value
