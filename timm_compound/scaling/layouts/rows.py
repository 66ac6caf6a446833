"""Per-block rows: a list of stages, each a list of rows of numbers (GhostNet's `cfgs`:
`[[kernel, expansion, out_chs, se, stride], ...]` per stage). A deeper stage repeats its last row
with stride 1; a shallower one keeps its last rows, the first of them taking the stage's first
stride. The width `column` holds each row's output width; it and the `scale_columns` (GhostNet's
expansion size) scale by w, each value rounded like a width."""

from __future__ import annotations

import copy
from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where
from timm_compound.scaling.rounding import scale_width


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stages(value: Any, arg: str, where: Where) -> list[list[list]]:
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(
            isinstance(stage, (list, tuple))
            and stage
            and all(isinstance(row, (list, tuple)) and row and all(map(_number, row)) for row in stage)
            for stage in value
        )
    ):
        raise where.error(f"constructor argument {arg!r} is not a list of stages, each a list of rows of numbers")
    return [[list(row) for row in stage] for stage in value]


def _column(found: list[list[list]], column: int, field: str, where: Where) -> None:
    shortest = min(len(row) for stage in found for row in stage)
    if column >= shortest:
        raise where.error(
            f"column {column} is out of range for rows of {shortest} values (columns 0-{shortest - 1})", field
        )


class Rows(Layout):
    name = "rows"

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        found = stages(value, policy.arg, where)
        if policy.stride_column is not None:
            _column(found, policy.stride_column, "stride_column", where)
        return [len(stage) for stage in found], [1] * len(found)

    def read_widths(self, value: Any, policy, where: Where) -> list[int]:
        found = stages(value, policy.arg, where)
        _column(found, policy.column, "column", where)
        for index, column in enumerate(policy.scale_columns):
            _column(found, column, f"scale_columns.{index}", where)
        widths = [stage[-1][policy.column] for stage in found]
        if not all(isinstance(width, int) for width in widths):
            raise where.error(f"column {policy.column} holds {widths}, not ints: it is not a width column", "column")
        return widths

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        stride = policy.stride_column
        scaled = []
        for stage, depth in zip(stages(value, policy.arg, Where("", "depth")), depths, strict=True):
            if depth >= len(stage):
                extra = copy.deepcopy(stage[-1])
                if stride is not None:
                    extra[stride] = 1
                rows = stage + [list(extra) for _ in range(depth - len(stage))]
            else:
                rows = copy.deepcopy(stage[len(stage) - depth :])
                if stride is not None:
                    rows[0][stride] = stage[0][stride]
            scaled.append(rows)
        return scaled

    def write_widths(
        self, value: Any, policy, widths: list[int], base_widths: list[int], w: float | None = None
    ) -> Any:
        """Every width-column and scale-column value times w, rounded like a width (as a constructor's
        own width multiplier does); the last row of each stage then holds the planned stage width."""
        if w is None:
            raise Where("", "width").error(
                "layout 'rows' scales every row by the plan's w: build from a plan", "layout"
            )
        scaled = stages(value, policy.arg, Where("", "width"))
        count = len(scaled)
        for index, (stage, width) in enumerate(zip(scaled, widths, strict=True)):
            if index in policy.fixed_stages or index - count in policy.fixed_stages:
                continue
            for row in stage:
                for column in (policy.column, *policy.scale_columns):
                    row[column] = self._scale(row[column], w, policy)
            stage[-1][policy.column] = width
        return scaled

    @staticmethod
    def _scale(value: Any, factor: float, policy) -> Any:
        if isinstance(value, float):
            return round(value * factor, 6)
        return scale_width(value, factor, policy.divisor, policy.round_limit, policy.min)
