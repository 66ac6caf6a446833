"""Plain per-stage values: `counts` (depths) and `list` (widths) are lists of ints, one per stage
(ResNet's `layers` and `channels`); `scalar` is one int that widens every stage (DenseNet's `growth_rate`)."""

from __future__ import annotations

from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where, int_list, short


class Counts(Layout):
    name = "counts"

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        depths = int_list(value, policy.arg, where)
        return depths, [1] * len(depths)

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        return list(depths)


class IntList(Layout):
    name = "list"

    def read_widths(self, value: Any, policy, where: Where) -> list[int]:
        return int_list(value, policy.arg, where)

    def write_widths(
        self, value: Any, policy, widths: list[int], base_widths: list[int], w: float | None = None
    ) -> Any:
        return list(widths)


class Scalar(Layout):
    """One width for all stages: read as a one-element list that the caller repeats per stage."""

    name = "scalar"
    one_for_all = True

    def read_widths(self, value: Any, policy, where: Where) -> list[int]:
        if not isinstance(value, int) or isinstance(value, bool):
            raise where.error(f"constructor argument {policy.arg!r} is {short(value)}, not an int")
        return [value]

    def write_widths(
        self, value: Any, policy, widths: list[int], base_widths: list[int], w: float | None = None
    ) -> Any:
        return widths[0]
