"""Growing a scaled model from its base's weights preserves the base's function (Net2Net), exactly.

Bases get random weights and random BatchNorm statistics and affine parameters (timm's own init
zeroes every ResNet block's last norm, which would make a grown ResNet trivially equal), and the
grown models are compared with them at the base's input size, in eval mode.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn as nn

import timm_compound
from timm_compound.inherit.align import Alignment
from timm_compound.inherit.grow import grow
from timm_compound.scaling.stages import stage_depths

PIXELS = 64


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random norm statistics, affine parameters and layer scales, so no block starts as the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                module.weight.copy_(torch.rand(n, generator=g) + 0.5)
                module.bias.copy_(torch.randn(n, generator=g) * 0.1)
            gamma = getattr(module, "gamma", None)
            if isinstance(gamma, nn.Parameter):
                gamma.copy_(torch.rand(gamma.shape, generator=g) + 0.5)
    return model.eval()


def relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


@pytest.fixture(scope="module")
def probe():
    return torch.randn(2, 3, PIXELS, PIXELS, generator=torch.Generator().manual_seed(123))


@pytest.fixture(scope="module")
def bases():
    cache: dict[str, nn.Module] = {}

    def get(name: str) -> nn.Module:
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = randomise(timm.create_model(name, num_classes=10))
        return cache[name]

    return get


@pytest.mark.parametrize("phi", [1, 2])
@pytest.mark.parametrize("base", ["resnet18", "resnet50", "mobilenetv2_100", "efficientnet_b0"])
def test_grown_model_computes_the_base_function(bases, probe, base, phi):
    model = bases(base)
    grown = timm_compound.inherit(model, f"{base}_cs_phi{phi}")
    scaled = grown.compound_plan
    assert scaled.phi == phi and stage_depths(grown, scaled) == scaled.depths  # depth grown
    assert sum(scaled.depths) > sum(scaled.base_depths) and sum(scaled.widths) > sum(scaled.base_widths)
    shapes = {k: v.shape for k, v in timm_compound.build(scaled, num_classes=10).state_dict().items()}
    assert {k: v.shape for k, v in grown.state_dict().items()} == shapes  # an ordinary model of the plan
    report = grown.inherit_report
    assert report.new_blocks and report.widened > 0 and report.deviation < 1e-4
    assert relative(outputs(grown, probe), outputs(model, probe)) < 1e-4


def test_noise_breaks_symmetry_by_a_bounded_amount(bases, probe):
    model = bases("resnet18")
    exact = timm_compound.inherit(model, "resnet18_cs_phi1", seed=3)
    want = outputs(model, probe)
    deviations = {}
    for noise in (1e-3, 1e-2):
        noisy = timm_compound.inherit(model, "resnet18_cs_phi1", seed=3, noise=noise)
        deviations[noise] = relative(outputs(noisy, probe), want)
        assert 0 < deviations[noise] < noise  # bounded: below the noise level itself
        assert 0 < noisy.inherit_report.deviation < noise  # and the report says so
    assert 5 < deviations[1e-2] / deviations[1e-3] < 20  # and proportional to it
    # without noise the copies of a channel are identical; with it, they differ
    weight = exact.state_dict()["layer4.0.conv1.weight"]
    noisy_weight = noisy.state_dict()["layer4.0.conv1.weight"]
    base_rows = model.state_dict()["layer4.0.conv1.weight"].shape[0]
    copies = list(range(base_rows, weight.shape[0]))
    assert torch.equal(weight[:base_rows], noisy_weight[:base_rows])  # the base's own units are untouched
    assert not torch.equal(weight[copies], noisy_weight[copies])


def test_the_seed_chooses_the_copies_and_is_reproducible(bases):
    model = bases("resnet18")
    a, b = (timm_compound.inherit(model, "resnet18_cs_phi1", seed=1) for _ in range(2))
    c = timm_compound.inherit(model, "resnet18_cs_phi1", seed=2)
    key = "layer2.0.conv1.weight"
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])


@pytest.mark.parametrize(
    "base, how",
    [
        ("resnext50_32x4d", {"phi": 1}),  # grouped convs keep their 32 groups: each widens in itself
        ("efficientnet_b0_g16_evos", {"phi": 1}),  # group convs keep groups of 16: whole groups are copied
        ("regnety_008", {"phi": 1}),  # a `fields` layout (stages read back), SE, grouped convs
        ("tf_efficientnetv2_b0", {"phi": 1}),  # fused MBConv and a ConvBnAct stage with a skip
        ("resnetv2_50", {"phi": 1}),  # pre-activation blocks end in a conv
        ("convnext_atto", {"d": 2.0}),  # depth only: its LayerNorm forbids widening
        ("gernet_s", {"phi": 1}),  # ByobNet basic and bottleneck blocks, a `multiplier` width
        ("tresnet_m", {"phi": 1}),  # SE after the zeroed norm, anti-aliased downsampling
        ("starnet_s1", {"phi": 1}),  # the star product; the zeroed layer is a conv, not a norm
        ("resnest50d", {"d": 2.0}),  # depth only: split attention reshapes channels into radix groups
        ("skresnet18", {"d": 2.0}),  # depth only: the selective kernel stacks its paths
        ("inception_next_tiny", {"d": 2.0}),  # depth only: the token mixer splits channels
    ],
)
def test_other_families_grow_exactly(bases, probe, base, how):
    model = bases(base)
    grown = timm_compound.inherit(model, timm_compound.plan(base, **how))
    assert grown.inherit_report.new_blocks
    assert relative(outputs(grown, probe), outputs(model, probe)) < 1e-4


@pytest.mark.parametrize(
    "base, op",
    [("resnest50d", "`reshape`"), ("skresnet18", "`stack`"), ("inception_next_tiny", "`split`")],
)
def test_depth_only_families_refuse_a_wider_plan_naming_the_op(bases, base, op):
    with pytest.raises(timm_compound.CompoundError, match=f"growing {base} into phi=1: .*pass through {op}"):
        timm_compound.inherit(bases(base), timm_compound.plan(base, phi=1))


def test_a_scaled_model_grows_further(bases, probe):
    """phi=1 grown from the base, then phi=2 grown from that phi=1 model: still the base's function."""
    model = bases("mobilenetv2_100")
    phi1 = timm_compound.inherit(model, "mobilenetv2_100_cs_phi1", seed=5)
    phi2 = timm_compound.inherit(phi1, "mobilenetv2_100_cs_phi2", seed=6)
    assert phi2.inherit_report.source == "the given mobilenetv2_100 model" and phi2.compound_plan.phi == 2
    assert relative(outputs(phi2, probe), outputs(model, probe)) < 1e-4


def test_registered_name_grows_through_timm(bases, probe):
    model = bases("resnet18")
    grown = timm.create_model("resnet18_cs_phi2", inherit_from=model, drop_path_rate=0.1)
    assert grown.pretrained_cfg["architecture"] == "resnet18_cs_phi2" and grown.num_classes == 10
    assert grown.pretrained_cfg["input_size"] == (3, 296, 296)
    assert relative(outputs(grown, probe), outputs(model, probe)) < 1e-4
    with pytest.raises(timm_compound.CompoundError, match="pretrained=True loads the weights published for"):
        timm.create_model("resnet18_cs_phi2", inherit_from=model, pretrained=True)
    with pytest.raises(timm_compound.CompoundError, match="no weights are published"):
        timm.create_model("resnet18_cs_phi2", pretrained=True)  # pretrained keeps its meaning


# ---------------------------------------------------------------- the generic machinery, on small models


class Branchy(nn.Module):
    """Two convs concatenated and normalised, a 1x1 expansion, a grouped conv, a squeeze-excitation
    gate, a residual addition and a classifier: every way channels are coupled."""

    def __init__(self, a: int, b: int, groups: int, width: int, mix_concat: bool = False):
        super().__init__()
        self.mix_concat = mix_concat
        self.left, self.right = nn.Conv2d(3, a, 3, padding=1), nn.Conv2d(3, b, 3, padding=1)
        self.norm = nn.BatchNorm2d(a + b)
        self.concat_mix = nn.Conv2d(a + b, a + b, 3, padding=1, groups=2, bias=False) if mix_concat else None
        self.expand = nn.Conv2d(a + b, width, 1)
        self.mix = nn.Conv2d(width, width, 3, padding=1, groups=groups, bias=False)
        self.reduce, self.gate = nn.Conv2d(width, width // 4, 1), nn.Conv2d(width // 4, width, 1)
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.head = nn.Linear(width, 5)

    def forward(self, x):
        x = torch.relu(self.norm(torch.cat([self.left(x), self.right(x)], dim=1)))
        if self.concat_mix is not None:
            x = self.concat_mix(x)
        x = self.mix(self.expand(x))
        x = x * torch.sigmoid(self.gate(torch.relu(self.reduce(x.mean((2, 3), keepdim=True)))))
        x = torch.relu(x + self.body(x))
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize(
    "base, wide",
    [
        ((8, 4, 2, 16), (12, 6, 2, 24)),  # the group count stays: channels copied within their group
        ((8, 4, 4, 16), (12, 6, 4, 32)),  # 4 groups of 4 -> of 8
        ((8, 4, 16, 16), (10, 8, 24, 24)),  # depthwise: the group size (1) stays, whole groups are copied
    ],
)
def test_concatenation_groups_gates_and_residuals(base, wide):
    torch.manual_seed(0)
    small, large = randomise(Branchy(*base)), Branchy(*wide)
    x = torch.randn(2, 3, 16, 16)
    growth = grow(small, large, Alignment({}, []), [], x=x)
    assert growth.widened >= 4 and growth.deviation < 1e-5
    probe = torch.randn(2, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    assert relative(outputs(large, probe), outputs(small, probe)) < 1e-5


@pytest.mark.parametrize(
    "base, wide, message",
    [
        ((8, 4, 4, 16, False), (12, 6, 2, 24, False), "keeps neither its group count nor its group size"),
        ((8, 4, 2, 16, True), (12, 6, 2, 24, True), "a grouped conv over concatenated channels cannot be widened"),
    ],
)
def test_groupings_that_cannot_be_copied_are_refused(base, wide, message):
    small, large = randomise(Branchy(*base)), Branchy(*wide)
    with pytest.raises(timm_compound.CompoundError, match=message):
        grow(small, large, Alignment({}, []), [], x=torch.randn(2, 3, 16, 16))
