"""The rounding policies agree with timm's own helpers and with published numbers."""

import pytest
from timm.layers import make_divisible as timm_make_divisible
from timm.models._efficientnet_builder import _scale_stage_depth

from timm_compound.scaling.rounding import (
    distribute,
    make_divisible,
    round_to,
    scale_depth,
    scale_resolution,
    scale_width,
)


@pytest.mark.parametrize("value", [1.0, 7.9, 12.0, 25.6, 29.09, 38.4, 112 * 1.6, 192 * 1.6, 320 * 1.8, 1280 * 3.1])
@pytest.mark.parametrize("divisor", [4, 8, 16])
def test_make_divisible_matches_timm(value, divisor):
    assert make_divisible(value, divisor) == timm_make_divisible(value, divisor)


def test_widths_of_efficientnet_b5():
    assert [scale_width(c, 1.6) for c in (32, 16, 24, 40, 80, 112, 192, 320, 1280)] == [
        48,
        24,
        40,
        64,
        128,
        176,
        304,
        512,
        2048,
    ]


def test_round_limit_rounds_up_when_rounding_down_loses_over_ten_percent():
    assert make_divisible(11.0, 8) == 16  # 8 would lose 27%
    assert make_divisible(11.0, 8, round_limit=0.5) == 8


def test_depth_policies():
    assert [scale_depth(b, 2.2) for b in (1, 2, 2, 3, 3, 4, 1)] == [3, 5, 5, 7, 7, 9, 3]
    assert scale_depth(2, 1.25, "round") == 3  # 2.5 rounds half up, not to even
    assert scale_depth(3, 0.1, "floor") == 1  # the minimum holds
    assert round_to(2 * 1.1 * 1.1 / 1.21, "ceil") == 2  # float noise does not add a block


def test_resolution_rounds_to_divisor():
    assert scale_resolution(224, 1.15) == 256
    assert scale_resolution(224, 1.15**7) == 592  # 595.9 px -> 74.49 * 8 -> 74 * 8
    assert scale_resolution(224, 0.1) == 32


@pytest.mark.parametrize("repeats,d", [([1, 1, 2], 1.5), ([1, 1, 2], 2.2), ([2, 3], 3.1), ([4], 1.8), ([1, 2, 1], 1.2)])
def test_distribute_matches_timm_stage_depth(repeats, d):
    stage = [f"block{i}" for i in range(len(repeats))]
    timm_stage = _scale_stage_depth(stage, repeats, d, "ceil")
    assert distribute(repeats, len(timm_stage)) == [timm_stage.count(name) for name in stage]


@pytest.mark.parametrize("repeats", [[1, 1, 2], [1, 2], [2, 1, 1, 3], [4]])
def test_distribute_always_sums_to_the_total(repeats):
    for total in range(len(repeats), 4 * sum(repeats)):
        parts = distribute(repeats, total)
        assert sum(parts) == total and min(parts) >= 1, (repeats, total, parts)
    assert distribute([1, 1, 2], 3) == [1, 1, 1]  # timm's own rule would build 4 blocks here
