"""Registered variants are ordinary timm models: names, pretrained_cfg, features, classifier."""

import pytest
import timm
import torch
from conftest import param_count

import timm_compound as tc
from timm_compound.scaling.rulebook import shipped_dir
from timm_compound.scaling.stages import stage_modules

BASES = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnext50_32x4d",
    "mobilenetv1_100",
    "mobilenetv2_100",
    "efficientnet_b0",
]
# families added as YAML only (rules/convnext.yaml, densenet.yaml, mobilenetv3.yaml), phi 0..3
YAML_ONLY_BASES = [
    "convnext_atto",
    "convnext_nano",
    "convnext_tiny",
    "densenet121",
    "mobilenetv3_large_100",
    "mnasnet_100",
]
PHIS = {**{base: range(8) for base in BASES}, **{base: range(4) for base in YAML_ONLY_BASES}}
# families of the v2 layouts (rows, separated, multiplier, fields) and EfficientNetV2 / G16, phi 0..3:
# built, run and compared with their bases in tests/test_layouts.py
LAYOUT_BASES = [
    "ghostnet_100",
    "vgg11_bn",
    "vgg16_bn",
    "regnety_008",
    "regnetx_016",
    "resnetv2_50",
    "tf_efficientnetv2_b0",
    "efficientnet_b0_g16_evos",
]
# the rules-v3 families, phi 0..3: tests/test_families_v3.py
RULES_V3_BASES = [
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
VARIANTS = [f"{base}_cs_phi{phi}" for base, phis in PHIS.items() for phi in phis] + [
    f"{base}_cs_phi{phi}" for base in LAYOUT_BASES + RULES_V3_BASES for phi in range(4)
]
SMALL_FORWARD = (
    [f"{base}_cs_phi{phi}" for base in BASES for phi in (1, 2)]
    + [f"{base}_cs_phi{phi}" for base in ("convnext_atto", "mobilenetv3_large_100", "mnasnet_100") for phi in (1, 2, 3)]
    + ["convnext_nano_cs_phi1", "convnext_tiny_cs_phi1", "densenet121_cs_phi1"]
)


def test_every_listed_variant_is_registered():
    shipped = shipped_dir("registry")
    assert sorted(n for n, v in tc.registered().items() if v.source.startswith(str(shipped))) == sorted(VARIANTS)
    assert set(VARIANTS) <= set(timm.list_models(module="compound_scaled"))
    assert timm.list_models("resnet18_cs_*") == [f"resnet18_cs_phi{phi}" for phi in range(8)]
    assert len(VARIANTS) == 172


def test_registered_input_sizes_follow_the_rule():
    """Registration computes only the resolution (no structure, no build): it must match the plan."""
    for name in ("regnety_008_cs_phi2", "tf_efficientnetv2_b0_cs_phi1", "ghostnet_100_cs_phi3", "resnet50_cs_phi7"):
        variant = tc.registered()[name]
        size = timm.models.get_pretrained_cfg(name).input_size
        assert size == (3, tc.plan(variant.base, variant.phi).resolution, tc.plan(variant.base, variant.phi).resolution)
    assert timm.models.get_pretrained_cfg("tf_efficientnetv2_b0_cs_phi1").input_size == (3, 224, 224)  # 192 x 1.15


def test_registration_leaves_timm_names_alone():
    assert timm.models.get_pretrained_cfg("resnet18").tag == "a1_in1k"
    assert "resnet18.a1_in1k" in timm.list_pretrained("resnet18*")


@pytest.mark.parametrize("base", list(PHIS))
def test_phi_zero_reproduces_the_base(base, meta):
    scaled = timm.create_model(f"{base}_cs_phi0")
    reference = timm.create_model(base)
    assert param_count(scaled) == param_count(reference)
    assert {k: v.shape for k, v in scaled.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def _last_conv_channels(stage: torch.nn.Module) -> int:
    last_block = list(stage.children())[-1]
    return [m for m in last_block.modules() if isinstance(m, torch.nn.Conv2d)][-1].out_channels


def _stage_out_channels(model, plan):
    """Channels each stage's last block outputs (DenseNet: the channels that block adds)."""
    return [_last_conv_channels(stage) for stage in stage_modules(model, plan.rule.stage_modules)]


@pytest.mark.parametrize("base", list(PHIS))
def test_every_variant_builds_as_planned(base, meta):
    base_model = timm.create_model(base)
    base_plan = tc.plan(base, phi=0)
    # block expansion: ResNet-50's stage outputs are 4x its `channels`; EfficientNet's are 1x
    expansion = [out // width for out, width in zip(_stage_out_channels(base_model, base_plan), base_plan.widths)]
    for phi in PHIS[base]:
        model = timm.create_model(f"{base}_cs_phi{phi}")
        plan = model.compound_plan
        assert plan.phi == phi
        assert tc.stage_depths(model, plan) == plan.depths
        assert _stage_out_channels(model, plan) == [w * e for w, e in zip(plan.widths, expansion)]
        assert model.pretrained_cfg["input_size"] == (3, plan.resolution, plan.resolution)
        assert model.pretrained_cfg["architecture"] == f"{base}_cs_phi{phi}"


@pytest.mark.parametrize("name", SMALL_FORWARD)
def test_small_variants_run_forward_at_their_own_input_size(name):
    model = timm.create_model(name, num_classes=7).eval()
    config = timm.data.resolve_model_data_config(model)
    assert config["input_size"] == (3, model.compound_plan.resolution, model.compound_plan.resolution)
    assert config["input_size"][-1] > 224
    with torch.inference_mode():
        out = model(torch.randn(1, *config["input_size"]))
    assert out.shape == (1, 7)
    assert torch.isfinite(out).all()


def test_pretrained_cfg_keeps_the_bases_data_settings():
    cfg = timm.models.get_pretrained_cfg("efficientnet_b0_cs_phi3").to_dict()
    base = timm.models.get_pretrained_cfg("efficientnet_b0").to_dict()
    for key in ("mean", "std", "crop_pct", "interpolation", "first_conv", "classifier", "num_classes"):
        assert cfg[key] == base[key]
    assert cfg["input_size"] == (3, 344, 344)
    assert cfg["pool_size"] == (11, 11)
    assert cfg.get("hf_hub_id") is None and cfg.get("url") is None  # the base's weights do not fit
    assert not timm.models.get_pretrained_cfg("efficientnet_b0_cs_phi3").has_weights


@pytest.mark.parametrize(
    "name",
    [
        "resnet50_cs_phi1",
        "mobilenetv1_100_cs_phi1",
        "efficientnet_b0_cs_phi1",
        "convnext_atto_cs_phi1",
        "densenet121_cs_phi1",
        "mobilenetv3_large_100_cs_phi1",
    ],
)
def test_timm_native_features_and_classifier(name):
    x = torch.randn(2, 3, 96, 96)
    model = timm.create_model(name).eval()
    plan = model.compound_plan

    features = timm.create_model(name, features_only=True).eval()
    with torch.inference_mode():
        maps = features(x)
    assert [m.shape[1] for m in maps] == features.feature_info.channels()
    assert [m.shape[-1] for m in maps] == [96 // r for r in features.feature_info.reduction()]
    assert features.pretrained_cfg["input_size"] == (3, plan.resolution, plan.resolution)

    with torch.inference_mode():
        pre = model.forward_features(x)
    assert pre.shape[1] == model.num_features
    model.reset_classifier(10)
    with torch.inference_mode():
        assert model(x).shape == (2, 10)
    assert model.get_classifier().out_features == 10


def test_timm_kwargs_pass_through():
    model = timm.create_model("efficientnet_b0_cs_phi2", num_classes=3, drop_path_rate=0.1, in_chans=1)
    assert model.num_classes == 3 and model.conv_stem.in_channels == 1
    assert model.drop_rate == 0.3  # the rule's dropout schedule at phi=2
    assert timm.create_model("efficientnet_b0_cs_phi2", drop_rate=0.0).drop_rate == 0.0  # user wins


def test_structural_kwargs_are_owned_by_the_plan():
    with pytest.raises(tc.CompoundError, match="layers is set by the scaling plan"):
        timm.create_model("resnet18_cs_phi1", layers=[1, 1, 1, 1])


def test_pretrained_without_published_weights_is_a_clear_error():
    with pytest.raises(tc.CompoundError, match="no weights are published for resnet18_cs_phi2"):
        timm.create_model("resnet18_cs_phi2", pretrained=True)


def test_scale_accepts_unregistered_plans():
    model = tc.scale("resnet18", d=1.5, w=0.5, resolution=160, num_classes=5)
    assert model.compound_plan.depths == [3, 3, 3, 3]
    assert model.compound_plan.widths == [32, 64, 128, 256]
    assert model.pretrained_cfg["architecture"] == "resnet18_cs"
    assert timm.data.resolve_model_data_config(model)["input_size"] == (3, 160, 160)
    assert model(torch.randn(1, 3, 160, 160)).shape == (1, 5)


@pytest.mark.parametrize("base", list(PHIS))
def test_negative_phi_builds_as_planned(base, meta):
    for phi in (-1, -2, -3):
        plan = tc.plan(base, phi=phi)
        model = tc.build(plan)
        assert tc.stage_depths(model, plan) == plan.depths
        assert all(d >= 1 for d in plan.depths)


def test_other_threads_timm_builds_are_not_rewritten(meta):
    """While a scaled build runs, another thread's plain timm.create_model builds timm's own model."""
    import threading

    from timm_compound.scaling import structure
    from timm_compound.scaling import timm_adapter as _timm_adapter

    plain = {}
    scaled_plan = tc.plan("resnet18", phi=2)

    def rewrite(call):
        other = threading.Thread(target=lambda: plain.update(model=timm.create_model("resnet18")))
        other.start()
        other.join()
        structure.write_plan(call, scaled_plan)
        return call

    scaled = _timm_adapter.build("resnet18", rewrite)
    assert [len(getattr(plain["model"], f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert [len(getattr(scaled, f"layer{i}")) for i in range(1, 5)] == scaled_plan.depths == [3, 3, 3, 3]
