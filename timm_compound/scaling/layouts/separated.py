"""A flat list whose `marker` item ends each stage (VGG's `[64, 'M', 128, 'M', 256, 256, 'M', ...]`):
a stage is a run of ints, its depth the run's length and its width the value the run shares."""

from __future__ import annotations

from typing import Any

from timm_compound.scaling.layouts.base import Layout, Where, short


def split(value: Any, policy, where: Where) -> tuple[list, list[tuple[list[int], list]]]:
    """(items before the first stage, [(the stage's ints, the markers after it)])."""
    marker = policy.marker
    if not isinstance(value, (list, tuple)):
        raise where.error(f"constructor argument {policy.arg!r} is {short(value)}, not a list")
    if marker not in value:
        raise where.error(f"marker {marker!r} never appears in {policy.arg!r} ({short(list(value))})", "marker")
    prefix: list = []
    found: list[tuple[list[int], list]] = []
    run: list[int] = []
    for item in value:
        if item == marker and not isinstance(item, bool):
            if run:
                found.append((run, [item]))
                run = []
            else:
                (found[-1][1] if found else prefix).append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            run.append(item)
        else:
            raise where.error(f"{policy.arg!r} holds {short(item)}, neither an int nor the marker {marker!r}", "marker")
    if run:
        found.append((run, []))
    return prefix, found


def _join(prefix: list, found: list[tuple[list[int], list]]) -> list:
    joined = list(prefix)
    for run, after in found:
        joined += run + after
    return joined


class Separated(Layout):
    name = "separated"

    def read_depths(self, value: Any, policy, where: Where) -> tuple[list[int], list[int]]:
        _, found = split(value, policy, where)
        return [len(run) for run, _ in found], [1] * len(found)

    def read_widths(self, value: Any, policy, where: Where) -> list[int]:
        _, found = split(value, policy, where)
        for index, (run, _) in enumerate(found):
            if len(set(run)) != 1:
                raise where.error(
                    f"stage {index} has widths {run}; layout 'separated' needs one width per stage", "layout"
                )
        return [run[0] for run, _ in found]

    def write_depths(self, value: Any, policy, depths: list[int]) -> Any:
        prefix, found = split(value, policy, Where("", "depth"))
        return _join(prefix, [([run[-1]] * depth, after) for (run, after), depth in zip(found, depths, strict=True)])

    def write_widths(
        self, value: Any, policy, widths: list[int], base_widths: list[int], w: float | None = None
    ) -> Any:
        prefix, found = split(value, policy, Where("", "width"))
        return _join(prefix, [([width] * len(run), after) for (run, after), width in zip(found, widths, strict=True)])
