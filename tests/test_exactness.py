"""The rules reproduce timm's own published scaled models exactly."""

import pytest
import timm
import torch
from conftest import param_count

import timm_compound as tc

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
        k: v.shape for k, v in reference.state_dict().items()}
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
