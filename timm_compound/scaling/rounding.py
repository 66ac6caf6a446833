"""Rounding policies: the arithmetic that turns a multiplier into whole blocks, channels and pixels.

Pure functions with no torch or timm import, so each policy is one readable line
and can be tested against published numbers on its own.
"""

from __future__ import annotations

import math
from typing import Literal

Rounding = Literal["ceil", "round", "floor"]

_ROUND = {
    "ceil": math.ceil,
    "floor": math.floor,
    # half up, not Python's banker's rounding: 2.5 blocks -> 3
    "round": lambda x: math.floor(x + 0.5),
}


def round_to(value: float, how: Rounding) -> int:
    """Round with a named policy; tolerate float noise such as 2 * 1.1 * 1.1 = 2.4200000000000004."""
    return int(_ROUND[how](round(value, 9)))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Nearest multiple of `divisor`, never below `min_value`, never more than (1 - round_limit) below `value`.

    Same arithmetic as timm's ``make_divisible`` (and the TF EfficientNet/MobileNet
    reference), so widths match timm's own scaled models exactly:
    ``make_divisible(112 * 1.6) == 176``, ``make_divisible(32 * 1.6) == 48``.
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def scale_depth(blocks: int, d: float, how: Rounding = "ceil", minimum: int = 1) -> int:
    """Blocks in one stage after scaling by d: ``scale_depth(4, 2.2) == 9`` (EfficientNet-B5)."""
    return max(minimum, round_to(blocks * d, how))


def scale_width(channels: int, w: float, divisor: int = 8, round_limit: float = 0.9, minimum: int | None = None) -> int:
    """Channels after scaling by w: ``scale_width(112, 1.6) == 176``."""
    return make_divisible(channels * w, divisor, minimum, round_limit)


def scale_resolution(base: int, r: float, divisor: int = 8, how: Rounding = "round", minimum: int = 32) -> int:
    """Input size after scaling by r, as a multiple of `divisor`: ``scale_resolution(224, 1.15) == 256``."""
    return max(minimum, round_to(base * r / divisor, how) * divisor)


def distribute(repeats: list[int], total: int) -> list[int]:
    """Split `total` blocks over runs of different block types in one stage, like timm does.

    Proportional, filled from the last run backwards so rounding lands on the
    deepest blocks, and every run keeps at least one block (timm's
    ``_scale_stage_depth``): ``distribute([1, 1, 2], 6) == [1, 2, 3]``. Unlike timm,
    a share never takes blocks the runs still to come need, so the parts always sum
    to `total` (timm gives ``[1, 1, 2]``, 4 blocks, for a total of 3).
    """
    if total < len(repeats):
        raise ValueError(f"{total} blocks cannot keep one each of {len(repeats)} block types")
    remaining_base, remaining_total = sum(repeats), total
    scaled = []
    for runs_left, count in enumerate(reversed(repeats)):
        still_needed = len(repeats) - runs_left - 1
        share = max(1, round(count / remaining_base * remaining_total))
        share = min(share, remaining_total - still_needed)
        scaled.append(share)
        remaining_base -= count
        remaining_total -= share
    return scaled[::-1]
