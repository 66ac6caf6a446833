"""The rules reproduce timm's own published scaled models exactly."""

import pytest
import timm
import torch
import yaml
from conftest import param_count

import timm_compound as tc
from timm_compound.scaling.rulebook import RuleBook, shipped_dir

# timm's efficientnet_b1..b7: (w, d, resolution) from the paper -> parameter count (pretrained=False)
EFFICIENTNETS = {
    "efficientnet_b1": (1.0, 1.1, 240, 7_794_184),
    "efficientnet_b2": (1.1, 1.2, 260, 9_109_994),
    "efficientnet_b3": (1.2, 1.4, 300, 12_233_232),
    "efficientnet_b4": (1.4, 1.8, 380, 19_341_616),
    "efficientnet_b5": (1.6, 2.2, 456, 30_389_784),
    "efficientnet_b6": (1.8, 2.6, 528, 43_040_704),
    "efficientnet_b7": (2.0, 3.1, 600, 66_347_960),
}


@pytest.mark.parametrize("name", sorted(EFFICIENTNETS))
def test_efficientnet_b1_to_b7(name, meta):
    w, d, resolution, params = EFFICIENTNETS[name]
    scaled = tc.scale("efficientnet_b0", d=d, w=w, resolution=resolution)
    assert param_count(scaled) == params
    reference = timm.create_model(name)
    assert {k: v.shape for k, v in scaled.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    assert scaled.pretrained_cfg["input_size"] == (3, resolution, resolution)


def test_mobilenetv2_140(meta):
    scaled = tc.scale("mobilenetv2_100", w=1.4)
    assert param_count(scaled) == 6_108_776
    assert param_count(timm.create_model("mobilenetv2_140")) == 6_108_776


def test_efficientnet_b3_outputs_equal_timm_with_same_weights():
    """Not only shapes: the same weights give the same outputs, so the blocks are the same blocks."""
    scaled = tc.scale("efficientnet_b0", d=1.4, w=1.2, resolution=300).eval()
    reference = timm.create_model("efficientnet_b3").eval()
    reference.load_state_dict(scaled.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(scaled(x), reference(x))


# timm's tf_efficientnetv2_b1..b3: B0's arch_def with the published (w, d) -> parameter count
EFFICIENTNETV2 = {
    "tf_efficientnetv2_b1": (1.0, 1.1, 8_141_052),
    "tf_efficientnetv2_b2": (1.1, 1.2, 10_096_086),
    "tf_efficientnetv2_b3": (1.2, 1.4, 14_358_406),
}


@pytest.mark.parametrize("name", sorted(EFFICIENTNETV2))
def test_efficientnetv2_b1_to_b3(name, meta):
    w, d, params = EFFICIENTNETV2[name]
    scaled = tc.scale("tf_efficientnetv2_b0", d=d, w=w)
    reference = timm.create_model(name)
    assert param_count(scaled) == param_count(reference) == params
    assert {k: v.shape for k, v in scaled.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_efficientnetv2_needs_round_limit_zero(tmp_path, meta):
    """timm rounds V2's channels with round_limit=0: B3's first stage is 16 x 1.2 = 19.2 -> 16, where the
    default round_limit (0.9) adds a divisor (16 < 0.9 x 19.2) and builds 24 channels."""
    data = yaml.safe_load((shipped_dir("rules") / "efficientnetv2.yaml").read_text())
    data["width"]["round_limit"] = 0.9
    path = tmp_path / "v2_default_rounding.yaml"
    path.write_text(yaml.safe_dump(data))
    book = RuleBook.alone(tc.load_rule(path), path)
    assert tc.plan("tf_efficientnetv2_b0", d=1.4, w=1.2).widths[0] == 16
    default = tc.plan("tf_efficientnetv2_b0", d=1.4, w=1.2, rules=book)
    assert default.widths[0] == 24
    assert param_count(tc.build(default)) != EFFICIENTNETV2["tf_efficientnetv2_b3"][2]


@pytest.mark.parametrize("name, w", [("ghostnet_050", 0.5), ("ghostnet_130", 1.3)])
def test_ghostnet_width_variants(name, w, meta):
    scaled = tc.scale("ghostnet_100", w=w)
    reference = timm.create_model(name)
    assert param_count(scaled) == param_count(reference)
    assert {k: v.shape for k, v in scaled.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
