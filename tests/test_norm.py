"""Batch-independent norms (issue 25): group, layer and Proxy Norm as a choice on any plan whose rule
has a `norm` section, carried through create_model, measure, publish/load, inherit and train."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

import timm_compound as tc
from timm_compound.errors import CompoundError, RuleError
from timm_compound.layers import GroupNormAct2d, ProxyNormAct2d, gaussian_proxy
from timm_compound.scaling.meta_device import fast_meta
from timm_compound.scaling.rulebook import RuleBook, shipped_rules

FINGERPRINTS = json.loads((Path(__file__).parent / "data" / "batch_norm_variants.json").read_text())
BATCH_FREE = ("group", "layer", "proxy", "proxy-layer")
# small plans of the two families the issue names, fast on CPU at 32 px
SMALL = {"resnet18": {"d": 0.5, "w": 0.25}, "efficientnet_b0": {"d": 0.5, "w": 0.25}}


def small(base: str, norm: str) -> nn.Module:
    torch.manual_seed(0)
    return tc.build(tc.plan(base, norm=norm, **SMALL[base]), num_classes=5, drop_rate=0.0, drop_path_rate=0.0)


# ------------------------------------------------------------------ the layers


@pytest.mark.parametrize("act", [nn.ReLU, nn.SiLU, nn.GELU])
@pytest.mark.parametrize(("gamma", "beta"), [(1.0, 0.0), (0.5, 0.7), (2.0, -1.0), (1.5, 0.3)])
def test_proxy_normalised_output_of_a_gaussian_channel_has_zero_mean_and_unit_variance(act, gamma, beta):
    layer = ProxyNormAct2d(1, group_size=1, act_layer=act, proxy_affine=False)
    with torch.no_grad():
        layer.weight.fill_(gamma)
        layer.bias.fill_(beta)
    y = torch.randn(100_000, generator=torch.Generator().manual_seed(0))  # the normalised pre-activation
    mean, var = layer.proxy_moments()
    out = (layer.act(gamma * y + beta) - mean) / torch.sqrt(var + layer.eps)
    assert abs(out.mean().item()) < 0.02
    assert abs(out.var().item() - 1.0) < 0.05
    # without the proxy the same activation is far from normalised (so the test can fail)
    raw = layer.act(gamma * y + beta)
    assert abs(raw.mean().item()) > 0.05 or abs(raw.var().item() - 1.0) > 0.05


def test_the_proxy_is_deterministic_standard_gaussian_quantiles():
    proxy = gaussian_proxy(256)
    assert proxy.shape == (256,) and torch.equal(proxy, gaussian_proxy(256))
    assert abs(proxy.mean().item()) < 1e-6 and abs(proxy.pow(2).mean().item() - 1.0) < 1e-6
    assert torch.all(proxy[1:] > proxy[:-1])  # quantiles, in order


def test_a_layer_computes_the_same_function_in_train_and_eval():
    layer = ProxyNormAct2d(32, group_size=16, act_layer=nn.SiLU)
    x = torch.randn(4, 32, 5, 5)
    assert torch.equal(layer.train()(x), layer.eval()(x))
    assert not any("running" in name for name, _ in layer.named_buffers())


def test_without_an_activation_the_proxy_layer_is_the_plain_group_norm():
    plain = ProxyNormAct2d(32, group_size=16, apply_act=False)
    x = torch.randn(2, 32, 4, 4)
    torch.testing.assert_close(plain(x), F.group_norm(x, 2, plain.weight, plain.bias, plain.eps))
    assert not plain.proxied and not hasattr(plain, "proxy_weight")


def test_a_group_size_that_does_not_divide_is_recorded_or_falls_back():
    assert GroupNormAct2d(24, group_size=16).indivisible
    fallback = GroupNormAct2d(24, group_size=16, fallback="divisor")
    assert not fallback.indivisible and fallback.num_groups == 2  # 12 channels per group
    assert GroupNormAct2d(24, group_size=None, num_groups=1).num_groups == 1


# ------------------------------------------------------------------ batch independence


def _one_image_alone_and_in_a_batch(model: nn.Module):
    """(output, parameter gradients of its loss) of image 0 alone and in a batch of 8, in training mode.
    In float64, so summation order (a batched convolution adds in another order) stays far below 1e-5."""
    model.double().train()
    x = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    results = []
    for batch in (x[:1], x):
        model.zero_grad()
        out = model(batch)
        F.cross_entropy(out[:1], torch.tensor([2])).backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((out[0].detach().clone(), grads))
    return results


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-12)
    return (a - b).abs().max().item() <= 1e-5 * scale


@pytest.mark.parametrize("base", sorted(SMALL))
@pytest.mark.parametrize("norm", BATCH_FREE)
def test_one_image_gets_the_same_output_and_gradients_alone_or_in_a_batch(base, norm):
    (alone, grads_alone), (batched, grads_batched) = _one_image_alone_and_in_a_batch(small(base, norm))
    assert _close(alone, batched), (alone - batched).abs().max()
    assert grads_alone.keys() == grads_batched.keys() and len(grads_alone) > 10
    for name in grads_alone:
        assert _close(grads_alone[name], grads_batched[name]), name


@pytest.mark.parametrize("base", sorted(SMALL))
def test_with_batch_norm_the_batch_changes_the_output(base):
    (alone, _), (batched, _) = _one_image_alone_and_in_a_batch(small(base, "batch"))
    assert not _close(alone, batched)


# ------------------------------------------------------------------ today's models unchanged


def _fingerprint(model: nn.Module) -> dict:
    import hashlib

    keys = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "state_dict": hashlib.sha256(keys.encode()).hexdigest()[:16],
    }


def _norm_families() -> set[str]:
    book = shipped_rules()
    return {family for family, (rule, _) in book.families().items() if rule.norm is not None and rule.norm.arg}


def test_norm_batch_builds_exactly_the_models_registered_before_the_norm_choice():
    """Every variant of a family that takes a norm choice, and one per other family, against the
    parameter counts and state-dict keys recorded before the choice existed (tests/data)."""
    families = _norm_families()
    book = shipped_rules()
    seen_other: set[str] = set()
    checked = 0
    for name, variant in sorted(tc.registered().items()):
        if name not in FINGERPRINTS:
            continue
        family = book.rule_for(variant.base)[0].family
        if family not in families:
            if family in seen_other:
                continue
            seen_other.add(family)
        with fast_meta():  # shapes and counts without weight initialisation
            batch = timm.create_model(name, norm="batch")
        assert _fingerprint(batch) == FINGERPRINTS[name], name
        assert batch.compound_plan == tc.plan(variant.base, variant.phi)  # norm=None, the default, is batch
        checked += 1
    assert families >= {"efficientnet", "efficientnet_g16", "efficientnetv2", "mobilenetv2", "resnet", "regnet"}
    assert checked > 60


# ------------------------------------------------------------------ every family, every norm


@pytest.mark.parametrize(
    "base",
    [
        "efficientnet_b0",
        "efficientnet_b0_g16_evos",
        "tf_efficientnetv2_b0",
        "mobilenetv2_100",
        "resnet50",
        "regnety_008",
    ],
)
def test_every_norm_family_builds_each_norm_with_no_batch_norm_left(base):
    for norm in BATCH_FREE:
        with torch.device("meta"):
            model = tc.build(tc.plan(base, 1, norm=norm))
        kinds = {type(m) for m in model.modules()}
        assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds), (base, norm)
        wanted = ProxyNormAct2d if norm.startswith("proxy") else GroupNormAct2d
        layers = [m for m in model.modules() if isinstance(m, GroupNormAct2d)]
        assert layers and all(type(m) is wanted for m in layers)
        if norm.endswith("layer"):
            assert all(m.num_groups == 1 for m in layers)
        if norm.startswith("proxy"):
            proxied = [m for m in layers if m.proxied]
            assert proxied and all(not isinstance(m.act, nn.Identity) for m in proxied)


def test_proxy_takes_over_the_activation_a_resnet_keeps_apart():
    model = tc.build(tc.plan("resnet18", 0, norm="proxy"))
    block = model.layer1[0]
    assert isinstance(model.act1, nn.Identity) and isinstance(model.bn1.act, nn.ReLU) and model.bn1.proxied
    assert isinstance(block.act1, nn.Identity) and block.bn1.proxied
    assert not block.bn2.proxied and isinstance(block.act2, nn.ReLU)  # bn2 comes before the residual addition
    bottleneck = tc.build(tc.plan("resnet50", 0, norm="proxy")).layer1[0]
    assert bottleneck.bn1.proxied and bottleneck.bn2.proxied and not bottleneck.bn3.proxied


def test_efficientnet_proxy_uses_the_models_own_activation():
    model = tc.build(tc.plan("efficientnet_b0", 0, norm="proxy"))
    assert isinstance(model.bn1.act, nn.SiLU) and isinstance(model.blocks[1][0].bn1.act, nn.SiLU)
    assert not model.blocks[1][0].bn3.proxied  # projection: no activation after it
    mobilenet = tc.build(tc.plan("mobilenetv2_100", 0, norm="proxy"))
    assert isinstance(mobilenet.bn1.act, nn.ReLU6)


def test_create_model_takes_norm_and_the_model_stays_timm_native():
    model = timm.create_model("efficientnet_b0_g16_evos_cs_phi1", norm="proxy", num_classes=7)
    assert model.compound_plan.norm == "proxy" and isinstance(model.bn1, ProxyNormAct2d)
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 7)
    assert model.forward_features(x).shape[1] == model.num_features
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    assert timm.data.resolve_model_data_config(model)["input_size"] == (3, 256, 256)
    features = timm.create_model("resnet18_cs_phi1", norm="group", features_only=True)
    maps = features(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == features.feature_info.channels()
    assert isinstance(features.bn1, GroupNormAct2d)


def test_measure_counts_a_norm_choice():
    batch = tc.measure("efficientnet_b0_cs_phi1")
    proxy = tc.measure("efficientnet_b0_cs_phi1", norm="proxy")
    group = tc.measure(tc.plan("efficientnet_b0", 1, norm="group"))
    assert proxy.macs == batch.macs == group.macs  # MACs count convolutions and linear layers
    assert group.params == batch.params  # GroupNorm's affine is batch norm's
    proxied = tc.build(tc.plan("efficientnet_b0", 1, norm="proxy"))
    second_affine = sum(2 * m.num_channels for m in proxied.modules() if isinstance(m, ProxyNormAct2d) and m.proxied)
    assert proxy.params == batch.params + second_affine
    assert proxy.method == "meta"  # the cost model is proven on batch-norm blocks: counted whole


def test_inherit_keeps_the_norm():
    base = tc.build(tc.plan("resnet18", 0, norm="proxy"), num_classes=10)
    grown = tc.inherit(base, tc.plan("resnet18", d=2.0, norm="proxy"), num_classes=10)
    assert grown.inherit_report.deviation == 0.0
    with pytest.raises(CompoundError, match="the base has proxy norm and the plan norm='batch'"):
        tc.inherit(base, tc.plan("resnet18", d=2.0), num_classes=10)
    with pytest.raises(CompoundError, match="passes through `group_norm`|pass through `group_norm`"):
        tc.inherit(base, tc.plan("resnet18", w=1.5, norm="proxy"), num_classes=10)


# ------------------------------------------------------------------ the Hub


def test_a_proxy_variant_round_trips_through_the_hub(hub):
    torch.manual_seed(0)
    model = timm.create_model("resnet18_cs_phi1", norm="proxy", num_classes=4)
    with torch.no_grad():  # not the initial values, so the round trip carries real numbers
        for module in model.modules():
            if isinstance(module, ProxyNormAct2d) and module.proxied:
                module.proxy_weight.uniform_(0.5, 1.5)
                module.proxy_bias.uniform_(-0.5, 0.5)
    repo = "org/resnet18-proxy-round-trip"
    tc.publish(model, repo)
    loaded = tc.from_hub(repo)
    assert loaded.compound_plan.norm == "proxy" and isinstance(loaded.bn1, ProxyNormAct2d)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))
    again = timm.create_model(f"hf-hub:{repo}", pretrained=True)
    with torch.no_grad():
        assert torch.equal(model(x), again.eval()(x))


# ------------------------------------------------------------------ bad input


def test_an_unknown_norm_is_refused_with_the_choices():
    with pytest.raises(CompoundError, match=r"unknown norm 'instance': choose one of batch, group, layer, proxy"):
        tc.plan("resnet18", 1, norm="instance")
    with pytest.raises(CompoundError, match="unknown norm"):
        timm.create_model("resnet18_cs_phi1", norm="Proxy")


def test_a_family_that_cannot_change_its_norm_says_why():
    with pytest.raises(CompoundError, match="ConvNeXt normalises with LayerNorm already"):
        tc.plan("convnext_atto", 1, norm="group")
    with pytest.raises(CompoundError, match="has no `norm` section, so its models keep batch norm"):
        tc.plan("vgg11_bn", 1, norm="proxy")
    assert tc.plan("vgg11_bn", 1, norm="batch").norm == "batch"


def _rule_book(tmp_path: Path, base: str, change) -> RuleBook:
    _, source = shipped_rules().rule_for(base)
    data = yaml.safe_load(Path(source).read_text())
    change(data)
    path = tmp_path / Path(source).name
    path.write_text(yaml.safe_dump(data))
    return RuleBook.alone(tc.load_rule(path), path)


def test_a_group_size_that_does_not_divide_names_the_layers_and_widths(tmp_path):
    book = _rule_book(tmp_path, "efficientnet_b0", lambda data: data["norm"].update(fallback="error"))
    scaled = tc.plan("efficientnet_b0", 1, norm="group", rules=book)
    with pytest.raises(CompoundError) as error:
        tc.build(scaled)
    message = str(error.value)
    assert "norm='group' puts 16 channels in a group" in message
    assert "blocks.1.0.bn3 (24)" in message and str(scaled.widths) in message
    assert "fallback: divisor" in message and "efficientnet.yaml" in message


def test_a_wrong_norm_section_names_the_file_and_the_field(tmp_path):
    book = _rule_book(tmp_path, "resnet18", lambda data: data["norm"].update(arg="norm_kind"))
    with pytest.raises(RuleError, match=r"resnet\.yaml.*norm\.arg"):
        tc.plan("resnet18", 1, rules=book)
    book = _rule_book(
        tmp_path, "resnet18", lambda data: data["norm"]["activations"].update(BasicBlock=[["bn1", "relu"]])
    )
    with pytest.raises(RuleError, match=r"norm\.activations\.BasicBlock.*no norm 'bn1' followed by an activation"):
        tc.build(tc.plan("resnet18", 0, norm="proxy", rules=book))
    bad = tmp_path / "bad.yaml"
    _, source = shipped_rules().rule_for("efficientnet_b0")
    data = yaml.safe_load(Path(source).read_text())
    data["norm"]["activations"] = {"InvertedResidual": [["bn1", "act"]]}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleError, match=r"bad\.yaml.*norm.*needs takes: norm"):
        tc.load_rule(bad)


def test_user_norm_kwargs_beside_a_norm_choice_are_refused():
    with pytest.raises(CompoundError, match="norm_layer is set by norm='group'"):
        tc.build(tc.plan("resnet18", 0, norm="group"), norm_layer=nn.BatchNorm2d)
    with pytest.raises(CompoundError, match="weights published for resnet18_cs_phi1 are for its batch-norm model"):
        timm.create_model("resnet18_cs_phi1", pretrained=True, norm="proxy")


def test_norm_stays_within_one_scale_plan_json():
    scaled = tc.plan("regnety_008", 1, norm="proxy-layer")
    again = tc.ScalePlan.model_validate_json(scaled.to_json())
    assert again.norm == "proxy-layer" and again == scaled
    assert math.isclose(again.multipliers.width, 1.1)


# ------------------------------------------------------------------ train, eval and the command line


def cli(*args) -> tuple[int, str]:
    from typer.testing import CliRunner

    from timm_compound.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def test_a_run_trains_with_its_norm_records_it_and_resume_keeps_it(tmp_path):
    out = tmp_path / "run"
    tiny = ["--epochs", 1, "--resolution", 32, "--train-samples", 64, "--val-samples", 64, "--batch-size", 32]
    code, output = cli("train", "resnet18", "--phi", -2, "--norm", "proxy", *tiny, "--out", out, "--quiet")
    assert code == 0, output
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["norm"] == "proxy" and record["model"]["plan"]["norm"] == "proxy"
    assert record["model"]["spec"] == "resnet18 phi=-2 norm=proxy"
    code, output = cli("train", "--resume", out, "--norm", "group", "--epochs", 2)
    assert code == 1 and "--norm cannot be given with it" in output, output
    code, output = cli("eval", "--run", out, "--val-samples", 64, "--json")
    assert code == 0, output
    # the weights are the proxy model's: as a batch-norm model they do not fit, and the error says so
    code, output = cli("eval", "resnet18", "--weights", out / "best.safetensors", "--resolution", 32)
    assert code == 1 and "best.safetensors" in output and "Traceback" not in output, output


def test_measure_and_table_take_norm_on_the_command_line():
    code, output = cli("measure", "resnet18_cs_phi0", "--norm", "proxy", "--json")
    assert code == 0, output
    assert json.loads(output)["params"] == tc.measure("resnet18_cs_phi0", norm="proxy").params
    code, output = cli("table", "resnet18", "--phi", "0,1", "--norm", "group", "--format", "csv")
    assert code == 0 and "phi" in output, output
    code, output = cli("measure", "convnext_atto_cs_phi0", "--norm", "proxy")
    assert code == 1 and "ConvNeXt normalises with LayerNorm already" in output, output
    code, output = cli("measure", "resnet18_cs_phi0", "--norm", "instance")
    assert code == 1 and "unknown norm 'instance'" in output, output


def test_publish_takes_norm_and_the_folder_rebuilds_it(tmp_path):
    code, output = cli("publish", "resnet18_cs_phi0", "--norm", "proxy-layer", "--to-dir", tmp_path / "out")
    assert code == 0, output
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["compound_plan"]["norm"] == "proxy-layer" and "norm" not in config.get("model_args", {})
    model = tc.from_dir(tmp_path / "out")
    assert model.compound_plan.norm == "proxy-layer" and model.bn1.num_groups == 1


def test_an_experiment_trains_every_model_with_its_norm(tmp_path):
    result = tc.experiment(
        "resnet18",
        budgets=2,
        tolerance=0.5,  # at 32 px the rounding steps do not reach 2x within 5%
        strategies=["compound"],
        references=["resnet34"],
        include_base=False,
        epochs=1,
        resolution=32,
        train_samples=64,
        val_samples=64,
        batch_size=32,
        cam_images=0,
        latency=False,
        norm="proxy",
        out=tmp_path / "exp",
        progress=False,
    )
    for row in result.rows:
        record = json.loads((row.run_dir / "run.json").read_text())
        assert record["config"]["norm"] == "proxy" and record["model"]["plan"]["norm"] == "proxy", row.variant.name
    with pytest.raises(CompoundError, match="reference resnet10t: norm='proxy'.*plain timm model"):
        tc.experiment("resnet18", references=["resnet10t"], norm="proxy", out=tmp_path / "refused", progress=False)
    assert not list((tmp_path / "refused").rglob("run.json"))  # refused before any training


def test_class_activation_maps_of_a_proxy_model():
    from PIL import Image

    from timm_compound.experiment import cam

    torch.manual_seed(0)
    model = tc.build(tc.plan("resnet18", 0, norm="proxy", resolution=32), num_classes=3)
    images = [Image.new("RGB", (40, 40), colour) for colour in ("white", "grey")]
    maps = cam.compute(model, images, resolution=32, stage=-1)
    assert maps.overlays.shape == (2, 32, 32, 3) and len(maps.predicted) == 2
