"""The rules-v3 families: phi=0 is timm's base exactly, phi=1..3 build as planned at their own resolution,
cost more with each phi, and run on real tensors; published relatives are reproduced exactly."""

import pytest
import timm
import torch
from conftest import param_count

import timm_compound as tc
from timm_compound.scaling.stages import stage_blocks

NEW_BASES = [
    "mobileone_s0",
    "gernet_s",
    "dm_nfnet_f0",
    "resnest50d",
    "skresnet18",
    "xception41",
    "tresnet_m",
    "selecsls42b",
    "ese_vovnet19b_dw",
    "repghostnet_100",
    "inception_next_tiny",
    "efficientvit_b0",
    "starnet_s1",
]
# what each rule says does not scale, and the first words of why
FIXED = {
    "dm_nfnet_f0": {"width": "NFNet's grouped 3x3 convs"},
    "xception41": {"depth": "XceptionAligned takes"},
    "selecsls42b": {"depth": "A SelecSLS stage"},
    "ese_vovnet19b_dw": {"depth": "A second OSA block"},
}


def _shapes(model):
    return {key: value.shape for key, value in model.state_dict().items()}


def _stages(model, plan):
    """Blocks per stage, and each stage's output channels from one meta forward at the plan's resolution."""
    stages = stage_blocks(model, plan.rule.stage_modules)
    seen = {}

    def channels(out):  # SelecSLS blocks pass a list along: the feature map is its first item
        return (out[0] if isinstance(out, (list, tuple)) else out).shape[1]

    hooks = [
        blocks[-1][1].register_forward_hook(lambda m, i, out, k=k: seen.__setitem__(k, channels(out)))
        for k, blocks in enumerate(stages)
    ]
    out = model(torch.empty(1, 3, plan.resolution, plan.resolution, device="meta"))
    for hook in hooks:
        hook.remove()
    assert out.shape == (1, 1000)
    return [len(blocks) for blocks in stages], [seen[k] for k in range(len(stages))]


@pytest.mark.parametrize("base", NEW_BASES)
def test_phi_zero_is_timms_base_and_each_phi_builds_as_planned(base, meta):
    reference, phi0 = timm.create_model(base), timm.create_model(f"{base}_cs_phi0").eval()
    assert param_count(phi0) == param_count(reference)
    assert _shapes(phi0) == _shapes(reference)
    assert phi0.pretrained_cfg["input_size"] == reference.pretrained_cfg["input_size"]
    macs = [tc.measure(f"{base}_cs_phi0").macs]
    # a stage's output is its planned width times the block expansion (4 for ResNeSt and TResNet)
    expansion = [out // width for out, width in zip(_stages(phi0, phi0.compound_plan)[1], phi0.compound_plan.widths)]
    for phi in (1, 2, 3):
        model = timm.create_model(f"{base}_cs_phi{phi}").eval()
        plan = model.compound_plan
        assert timm.data.resolve_model_data_config(model)["input_size"] == (3, plan.resolution, plan.resolution)
        assert _stages(model, plan) == (plan.depths, [width * e for width, e in zip(plan.widths, expansion)])
        macs.append(tc.measure(f"{base}_cs_phi{phi}").macs)
    assert macs == sorted(macs) and len(set(macs)) == 4, macs
    assert {
        part: reason[: len(FIXED.get(base, {}).get(part, ""))] for part, reason in plan.rule.fixed().items()
    } == FIXED.get(base, {})


@pytest.mark.parametrize("base", NEW_BASES)
def test_phi_one_runs_on_real_tensors(base):
    torch.manual_seed(0)
    model = timm.create_model(f"{base}_cs_phi1", num_classes=5).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


# published relatives: the F-series deepens F0 (x2, x3) at F0's widths; RepGhostNet's widths are `width`
RELATIVES = {
    "dm_nfnet_f1": ("dm_nfnet_f0", {"d": 2}, 132_634_256),
    "dm_nfnet_f2": ("dm_nfnet_f0", {"d": 3}, 193_779_228),
    "repghostnet_050": ("repghostnet_100", {"w": 0.5}, 2_313_968),
    "repghostnet_130": ("repghostnet_100", {"w": 1.3}, 5_478_612),
}


@pytest.mark.parametrize("name", sorted(RELATIVES))
def test_rules_reproduce_published_relatives(name, meta):
    base, multipliers, params = RELATIVES[name]
    scaled, reference = tc.scale(base, **multipliers), timm.create_model(name)
    assert param_count(scaled) == param_count(reference) == params
    assert _shapes(scaled) == _shapes(reference)
