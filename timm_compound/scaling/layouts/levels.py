"""Stages that are trees (`levels`): a list of tree levels, one per stage, where one more level doubles
the blocks (DLA's `levels`: a DlaTree of level L holds 2**L blocks). A stage's depth is its block count
2**L; d multiplies the blocks and the level becomes the rule's rounding of log2(blocks x d), so a tree
deepens a whole level at a time. (A level count that adds blocks instead is plain `counts`.)"""

from __future__ import annotations

import math
from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where, int_list
from timm_compound.scaling.rounding import round_to


class Levels(Layout):
    name = "levels"

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        levels = int_list(value, policy.arg, where)
        if any(level < 0 for level in levels):
            raise where.error(f"{policy.arg!r} holds a negative tree level: {levels}")
        return [2**level for level in levels], [1] * len(levels)

    def scale_depth(self, blocks: int, d: float, policy) -> int:
        """A whole level: 2 ** rounding(log2(blocks x d)), at least 2 ** ceil(log2(min))."""
        level = round_to(math.log2(blocks * d), policy.rounding)
        return 2 ** max(level, math.ceil(math.log2(policy.min)))

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        return [int(math.log2(depth)) for depth in depths]
