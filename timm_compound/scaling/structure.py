"""Reading a base's stages from its constructor arguments, and writing a plan back into them.

A rule's `layout` names one of a few generic shapes that timm constructors use
for per-stage depths and widths. Each shape has one reader and one writer here;
no code knows which family it is handling.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from timm_compound.errors import RuleError
from timm_compound.scaling.rounding import distribute
from timm_compound.scaling.schema import PartRule, Rule
from timm_compound.scaling.timm_adapter import BuildCall


@dataclass(frozen=True)
class BaseStructure:
    """What the base model's constructor is given: per-stage depths and widths, stem and head."""

    depths: list[int]
    widths: list[int]
    stem: int | None
    head: int | None
    min_depths: list[int]  # a stage of k different block types keeps at least k blocks


def _runs(stage: list[dict]) -> list[tuple[dict, int]]:
    """Consecutive identical block dicts: the block types of a decoded arch_def stage, with repeats."""
    return [(key.block, len(list(group))) for key, group in groupby(stage, key=_Frozen)]


class _Frozen:
    """Equality wrapper so groupby can compare block dicts."""

    def __init__(self, block: dict):
        self.block = block

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and self.block == other.block


def _fail(rule_source: str, field: str, message: str) -> RuleError:
    return RuleError(rule_source, field, message)


def _int_list(value: Any, source: str, field: str, arg: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        raise _fail(source, field, f"constructor argument {arg!r} is {value!r}, not a list of ints")
    return list(value)


def _block_stages(value: Any, source: str, field: str, arg: str) -> list[list[dict]]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(stage, (list, tuple)) and stage and all(isinstance(b, dict) for b in stage) for stage in value
    ):
        raise _fail(source, field, f"constructor argument {arg!r} is not a list of stages of block dicts")
    return [list(stage) for stage in value]


def _part(part: PartRule, call: BuildCall, source: str, field: str) -> int | None:
    if part.policy == "derived":
        return None
    if part.arg is None:
        return part.value
    try:
        value = call.arg(part.arg)
    except KeyError as error:
        raise _fail(source, f"{field}.arg", str(error.args[0])) from None
    if not isinstance(value, int):
        raise _fail(source, f"{field}.arg", f"constructor argument {part.arg!r} is {value!r}, not an int")
    return value


def read(rule: Rule, call: BuildCall, source: str) -> BaseStructure:
    """The base's structure, as the rule's layouts see it in the constructor arguments."""

    def arg(name: str, field: str) -> Any:
        try:
            return call.arg(name)
        except KeyError as error:
            raise _fail(source, field, str(error.args[0])) from None

    depth_value = arg(rule.depth.arg, "depth.arg")
    if rule.depth.layout == "counts":
        depths = _int_list(depth_value, source, "depth.arg", rule.depth.arg)
        min_depths = [1] * len(depths)
    else:
        stages = _block_stages(depth_value, source, "depth.arg", rule.depth.arg)
        depths = [len(stage) for stage in stages]
        min_depths = [len(_runs(stage)) for stage in stages]

    width_value = arg(rule.width.arg, "width.arg")
    if rule.width.layout == "list":
        widths = _int_list(width_value, source, "width.arg", rule.width.arg)
    elif rule.width.layout == "scalar":
        if not isinstance(width_value, int) or isinstance(width_value, bool):
            raise _fail(source, "width.arg", f"constructor argument {rule.width.arg!r} is {width_value!r}, not an int")
        widths = [width_value] * len(depths)
    else:
        widths = []
        for index, stage in enumerate(_block_stages(width_value, source, "width.arg", rule.width.arg)):
            outs = {block.get("out_chs") for block in stage}
            if len(outs) != 1 or not isinstance(next(iter(outs)), int):
                raise _fail(
                    source, "width.layout",
                    f"stage {index} has blocks with out_chs {sorted(outs, key=str)}; "
                    "layout 'block_args' needs one width per stage",
                )
            widths.append(outs.pop())

    if len(depths) != len(widths):
        raise _fail(source, "width.arg", f"{len(depths)} stage depths but {len(widths)} stage widths")
    for field, stages in (("depth.fixed_stages", rule.depth.fixed_stages), ("width.fixed_stages", rule.width.fixed_stages)):
        bad = [s for s in stages if not -len(depths) <= s < len(depths)]
        if bad:
            raise _fail(source, field, f"stage index {bad} out of range for {len(depths)} stages")

    return BaseStructure(
        depths=depths,
        widths=widths,
        stem=_part(rule.stem, call, source, "stem"),
        head=_part(rule.head, call, source, "head"),
        min_depths=min_depths,
    )


def write(rule: Rule, call: BuildCall, depths: list[int], widths: list[int], stem: int | None, head: int | None) -> None:
    """Put planned depths, widths, stem and head into the constructor arguments (in place)."""
    kwargs = call.kwargs
    if rule.depth.layout == "counts":
        kwargs[rule.depth.arg] = list(depths)
    else:
        stages = _block_stages(call.arg(rule.depth.arg), "", "", rule.depth.arg)
        scaled = []
        for stage, depth in zip(stages, depths, strict=True):
            runs = _runs(stage)
            counts = distribute([count for _, count in runs], depth)
            scaled.append([copy.deepcopy(block) for (block, _), n in zip(runs, counts) for _ in range(n)])
        kwargs[rule.depth.arg] = scaled

    if rule.width.layout == "list":
        kwargs[rule.width.arg] = list(widths)
    elif rule.width.layout == "scalar":
        kwargs[rule.width.arg] = widths[0]
    else:
        stages = [[copy.deepcopy(b) for b in stage] for stage in call.arg(rule.width.arg)]
        for stage, width in zip(stages, widths, strict=True):
            for block in stage:
                block["out_chs"] = width
        kwargs[rule.width.arg] = stages

    for part, value in ((rule.stem, stem), (rule.head, head)):
        if part.policy == "scale":
            kwargs[part.arg] = value
