"""Per-block entries of any kind (`entries`): a list of stages, each a list with one entry per block,
whatever an entry is (a config dataclass, a dict, a tuple). MobileOne keeps its stages as lists of
ByoBlockCfg, a depthwise and a pointwise entry per block (`period: 2`). A deeper stage repeats its
last `period` entries; a shallower one keeps its first, which take the stage's input width and stride."""

from __future__ import annotations

import copy
from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where, short


def stages(value: Any, arg: str, where: Where) -> list[list]:
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(stage, (list, tuple)) and stage for stage in value)
    ):
        raise where.error(
            f"constructor argument {arg!r} is {short(value)}, not a list of stages, each a list of per-block entries"
        )
    return [list(stage) for stage in value]


class Entries(Layout):
    name = "entries"

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        found = stages(value, policy.arg, where)
        uneven = [index for index, stage in enumerate(found) if len(stage) % policy.period]
        if uneven:
            raise where.error(
                f"stage {uneven[0]} has {len(found[uneven[0]])} entries, not a multiple of the period {policy.period}",
                "period",
            )
        return [len(stage) for stage in found], [policy.period] * len(found)

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        scaled = []
        for stage, depth in zip(stages(value, policy.arg, Where("", "depth")), depths, strict=True):
            extra = [copy.deepcopy(stage[-policy.period :]) for _ in range((depth - len(stage)) // policy.period)]
            rebuilt = stage[:depth] + [entry for group in extra for entry in group]
            scaled.append(type(value[0])(rebuilt) if type(value[0]) in (list, tuple) else rebuilt)
        return type(value)(scaled) if type(value) in (list, tuple) else scaled
