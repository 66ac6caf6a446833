"""timm's decoded arch_def (`block_args`): a list of stages, each a list of block dicts with `out_chs`
(EfficientNet, MobileNet, MnasNet). A stage of several block types keeps one of each and shares
extra blocks out in proportion from the last type backwards, as timm's own depth_multiplier does."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where
from timm_compound.scaling.rounding import distribute, scale_width


class _Frozen:
    """Equality wrapper so groupby can compare block dicts."""

    def __init__(self, block: dict):
        self.block = block

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and self.block == other.block


def runs(stage: list[dict]) -> list[tuple[dict, int]]:
    """Consecutive identical block dicts: the block types of a decoded arch_def stage, with repeats."""
    return [(key.block, len(list(group))) for key, group in groupby(stage, key=_Frozen)]


def stages(value: Any, arg: str, where: Where) -> list[list[dict]]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(stage, (list, tuple)) and stage and all(isinstance(b, dict) for b in stage) for stage in value
    ):
        raise where.error(f"constructor argument {arg!r} is not a list of stages of block dicts")
    return [list(stage) for stage in value]


class BlockArgs(Layout):
    name = "block_args"

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        found = stages(value, policy.arg, where)
        return [len(stage) for stage in found], [len(runs(stage)) for stage in found]

    def read_widths(self, value: Any, policy, where: Where) -> list[int]:
        widths = []
        for index, stage in enumerate(stages(value, policy.arg, where)):
            outs = {block.get("out_chs") for block in stage}
            if len(outs) != 1 or not isinstance(next(iter(outs)), int):
                raise where.error(
                    f"stage {index} has blocks with out_chs {sorted(outs, key=str)}; "
                    "layout 'block_args' needs one width per stage",
                    "layout",
                )
            widths.append(outs.pop())
        return widths

    def realised_widths(self, widths: list[int], policy) -> list[int]:
        """timm's builder rounds every out_chs with the entrypoint's round_chs_fn, which the rule's
        divisor and round_limit describe: arch_def's 24 is a 32-wide stage when channels go in 16s."""
        return [scale_width(width, 1.0, policy.divisor, policy.round_limit, policy.min) for width in widths]

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        scaled = []
        for stage, depth in zip(stages(value, policy.arg, Where("", "depth")), depths, strict=True):
            found = runs(stage)
            counts = distribute([count for _, count in found], depth)
            scaled.append([dict(block) for (block, _), n in zip(found, counts) for _ in range(n)])
        return scaled

    def write_widths(
        self, value: Any, policy, widths: list[int], base_widths: list[int], w: float | None = None
    ) -> Any:
        # a dict per block (the constructor pops and sets keys in place); the values are only read
        scaled = [[dict(b) for b in stage] for stage in stages(value, policy.arg, Where("", "width"))]
        for stage, width in zip(scaled, widths, strict=True):
            for block in stage:
                block["out_chs"] = width
        return scaled
