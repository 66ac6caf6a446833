"""Plans are pure data: multipliers follow alpha**phi, rounding is recorded, JSON round-trips."""

import json
import math

import pytest

import timm_compound as tc
from timm_compound.scaling.plan import ScalePlan


def test_multipliers_follow_coefficients_before_rounding():
    p = tc.plan("resnet50", phi=3)
    assert p.multipliers.depth == pytest.approx(1.2**3)
    assert p.multipliers.width == pytest.approx(1.1**3)
    assert p.multipliers.resolution == pytest.approx(1.15**3)
    assert p.resolution_exact == pytest.approx(224 * 1.15**3)
    assert p.resolution == 344  # 340.7 px -> 42.6 * 8 -> 43 * 8
    assert p.depths == [math.ceil(b * 1.2**3) for b in (3, 4, 6, 3)] == [6, 7, 11, 6]
    assert p.widths == [88, 168, 344, 680]
    assert p.realised.depth == pytest.approx(30 / 16)
    assert p.realised.resolution == pytest.approx(344 / 224)


def test_efficientnet_b5_plan_matches_the_paper():
    p = tc.plan("efficientnet_b0", d=2.2, w=1.6, resolution=456)
    assert p.stem == 48
    assert p.widths == [24, 40, 64, 128, 176, 304, 512]
    assert p.depths == [3, 5, 5, 7, 7, 9, 3]
    assert p.head == 2048
    assert p.resolution == 456 and p.resolution_source == "override"
    assert p.base_depths == [1, 2, 2, 3, 3, 4, 1]
    assert p.base_widths == [16, 24, 40, 80, 112, 192, 320]


def test_phi_zero_is_the_base():
    p = tc.plan("mobilenetv2_100", phi=0)
    assert p.depths == p.base_depths and p.widths == p.base_widths
    assert (p.stem, p.head, p.resolution) == (32, 1280, 224)


def test_negative_phi_scales_down_with_minimums():
    p = tc.plan("mobilenetv2_100", phi=-2)
    assert p.multipliers.depth == pytest.approx(1.2**-2)
    assert p.depths == [1, 2, 3, 3, 3, 3, 1]  # ceil keeps single-block stages at one
    assert p.widths == [16, 24, 24, 56, 80, 136, 264]  # 32 * 0.826 = 26.4 -> 24
    assert p.head == 1280  # MobileNetV2's head never shrinks (no_shrink in the rule)
    assert p.resolution == 168


def test_explicit_multipliers_default_to_one():
    p = tc.plan("resnet18", w=2.0)
    assert p.depths == [2, 2, 2, 2]
    assert p.widths == [128, 256, 512, 1024]
    assert p.resolution == 224
    assert p.phi is None and p.constructor_args == {}


def test_resnet_stem_stays_fixed_and_head_is_derived():
    p = tc.plan("resnet18", phi=2)
    assert p.stem == p.base_stem == 64
    assert p.head is None and p.rule.head.policy == "derived"


def test_schedule_sets_dropout_from_phi():
    assert tc.plan("efficientnet_b0", phi=0).constructor_args == {"drop_rate": 0.2}
    assert tc.plan("efficientnet_b0", phi=4).constructor_args == {"drop_rate": 0.4}
    assert tc.plan("efficientnet_b0", phi=7).constructor_args == {"drop_rate": 0.5}  # capped by the rule's max


def test_custom_coefficients_are_recorded_and_used():
    p = tc.plan("resnet18", phi=1, coefficients=(1.4, 1.2, 1.0))
    assert p.coefficients.alpha == 1.4
    assert p.depths == [3, 3, 3, 3]
    assert p.resolution == 224


def test_plan_json_round_trip():
    p = tc.plan("efficientnet_b0", phi=2)
    data = json.loads(p.to_json())
    assert data["depths"] == p.depths and data["rule"]["family"] == "efficientnet"
    assert ScalePlan.model_validate_json(p.to_json()) == p


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(phi=1, d=1.2), "either phi or explicit"),
        (dict(phi="2"), "phi must be a finite number"),
        (dict(phi=float("nan")), "phi must be a finite number"),
        (dict(d=0), "d must be > 0"),
        (dict(w=-1.0), "w must be > 0"),
        (dict(resolution=0), "resolution must be a positive int"),
        (dict(phi=1, coefficients=(0.9, 1.2, 1.2)), "greater than or equal to 1"),
        (dict(phi=1, coefficients=(1.2, 1.2, 1.2)), "outside 2.0 ± 5%"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(tc.CompoundError, match=message):
        tc.plan("resnet18", **kwargs)


def test_unknown_base():
    with pytest.raises(tc.UnknownModelError, match="no rule covers 'vgg16'"):
        tc.plan("vgg16", phi=1)


def test_per_architecture_override_is_applied_and_recorded():
    """ResNeXt's grouped width is floor(channels * 4 / 64) * 32: channels move in steps of 16."""
    resnext = tc.plan("resnext50_32x4d", phi=1)
    assert resnext.rule.width.divisor == 16 and resnext.rule.architectures == ["resnext50_32x4d"]
    assert resnext.widths == [64, 144, 288, 560]
    assert all(width % 16 == 0 for width in tc.plan("resnext50_32x4d", phi=5).widths)
    resnet = tc.plan("resnet50", phi=1)
    assert resnet.rule.width.divisor == 8 and resnet.widths == [72, 144, 280, 560]


def test_derived_layouts_record_the_numbers_they_set():
    """multiplier/fields plans keep what they wrote (structure_args) beside the read-back stages."""
    p = tc.plan("ghostnet_100", phi=1)
    assert p.structure_args == {"width": 1.1}
    assert p.base_depths == [1, 1, 1, 1, 1, 1, 5, 1, 4] and p.depths == [2, 2, 2, 2, 2, 2, 6, 2, 5]
    assert p.widths == [16, 28, 28, 44, 44, 88, 124, 176, 176]  # GhostNet's make_divisible(c * 1.1, 4)
    assert ScalePlan.model_validate_json(p.to_json()) == p
    assert tc.plan("vgg11_bn", phi=1).structure_args == {}
    published_before = json.loads(tc.plan("resnet18", phi=1).to_json())
    published_before.pop("structure_args")
    assert ScalePlan.model_validate(published_before).structure_args == {}


def test_registration_resolution_is_the_plans():
    from timm_compound.scaling.plan import variant_resolution

    for base, phi in [("efficientnet_b0", 3), ("tf_efficientnetv2_b0", 2), ("regnetx_016", 1), ("mobilenetv2_100", 0)]:
        p = tc.plan(base, phi=phi)
        assert variant_resolution(base, phi) == (p.base_resolution, p.resolution)
