"""The cost model (timm_compound.cost.model): identical counts to the exact meta path, on every shipped family."""

import functools

import pytest
import torch
import torch.nn as nn

import timm_compound
from timm_compound.cost import blocks
from timm_compound.cost import model as cost_model
from timm_compound.cost.counter import _RULES, replay, spec_of
from timm_compound.cost.keys import Unkeyable, fingerprint, freeze
from timm_compound.cost.measure import measure
from timm_compound.cost.memory import memtracker_step_memory, train_step_memory
from timm_compound.cost.meta import meta_build
from timm_compound.errors import CompoundError
from timm_compound.scaling.plan import plan
from timm_compound.scaling.rulebook import shipped_rules

BASES = sorted(shipped_rules().rules)
PHIS = (-1, 0, 1, 3, 7)
EXPLICIT = ({"d": 1.7, "w": 0.8, "r": 1.0}, {"d": 0.6, "w": 1.45, "r": 1.3})


def _counts(cost):
    return cost.params, cost.macs, cost.activations, cost.weight_bytes


@pytest.mark.parametrize("base", BASES)
def test_cost_model_counts_what_the_exact_meta_path_counts(base):
    fixed = {part[0] for part in shipped_rules().rule_for(base)[0].fixed()}  # a fixed dimension refuses d/w/r
    plans = [plan(base, phi) for phi in PHIS] + [
        plan(base, **{key: 1.0 if key in fixed else value for key, value in mult.items()}) for mult in EXPLICIT
    ]
    for scaled in plans:
        modelled, exact = measure(scaled), measure(scaled, method="meta")
        assert exact.method == "meta"
        assert modelled.method == "model", (base, scaled.phi)  # VGG too: its stages' Conv2d layers are the blocks
        assert _counts(modelled) == _counts(exact), (base, scaled.phi, scaled.multipliers)
    # another batch and input size: the memoised blocks replay for the new shapes too
    scaled = plans[2]
    assert _counts(measure(scaled, resolution=136, batch_size=3)) == _counts(
        measure(scaled, resolution=136, batch_size=3, method="meta")
    )


@pytest.mark.parametrize(
    "base", ["resnet50", "efficientnet_b0", "convnext_atto", "densenet121", "mobilenetv3_large_100", "vgg11_bn"]
)
def test_training_memory_composed_from_blocks_equals_the_whole_models_timeline(base):
    """VGG too: a replayed layer's output is a non-leaf, so ConvMlp's in-place ReLU after fc1 accepts it."""
    for scaled in (plan(base, 1), plan(base, d=1.5, w=0.9, r=1.0)):
        composed = measure(scaled, resolution=96, batch_size=4, train_memory=True)
        assert composed.method == "model"
        assert composed.train_memory_bytes == train_step_memory(meta_build(scaled), 4, 96)


@pytest.mark.parametrize("base", ["resnet18", "efficientnet_b0", "convnext_atto"])
def test_the_timeline_is_within_1_percent_of_memtracker(base):
    scaled = plan(base, 0)
    timeline = measure(scaled, resolution=64, batch_size=4, train_memory=True).train_memory_bytes
    reference = memtracker_step_memory(meta_build(scaled), 4, 64)
    assert abs(timeline / reference - 1) < 0.01, (timeline, reference)


def test_a_neighbouring_plan_reuses_every_block():
    """The point of the model: a plan one block deeper per stage, or at another input size, builds no new
    block and, at a size seen before, traces none."""
    scaled = plan("efficientnet_b0", 2)
    measure(scaled)
    templates = len(blocks._templates)
    deeper = scaled.model_copy(update={"depths": [d + 1 for d in scaled.depths]})
    measure(deeper)
    measure(scaled, resolution=scaled.resolution + 32)
    assert len(blocks._templates) == templates


def test_a_module_built_from_its_plan_is_modelled_and_a_changed_one_is_counted_exactly():
    model = timm_compound.build(plan("resnet18", 1))
    assert measure(model).method == "model"
    assert measure(model) == measure(model, method="meta")
    model.layer2[0].act1 = nn.GELU()  # a layer the plan never builds
    assert measure(model).method == "meta"
    model = timm_compound.build(plan("resnet18", 1), num_classes=10)  # another head than the plan's
    assert measure(model).method == "meta"
    assert measure(nn.Sequential(nn.Conv2d(3, 8, 3)), resolution=32).method == "meta"


def test_a_family_without_stage_modules_falls_back_and_method_model_refuses():
    scaled = plan("resnet18", 1)
    blind = scaled.model_copy(update={"rule": scaled.rule.model_copy(update={"stage_modules": None})})
    cost = measure(blind)
    assert cost.method == "meta" and _counts(cost) == _counts(measure(scaled))
    with pytest.raises(CompoundError, match="cost model cannot measure this exactly"):
        measure(blind, method="model")
    with pytest.raises(CompoundError, match="method must be one of"):
        measure(scaled, method="guess")


class _Block(nn.Module):
    def __init__(self, channels: int, scale=None):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.scale = scale

    def forward(self, x):
        return self.conv(x)


class _Meddling(nn.Module):
    """A parent that changes a block after building it: the skeleton cannot stand for it."""

    def __init__(self, how: str):
        super().__init__()
        self.blocks = nn.Sequential(_Block(8), _Block(8))
        if how == "set":
            self.blocks[1].extra = nn.ReLU()
        elif how == "template":
            self.blocks[1].conv.stride = (2, 2)


@pytest.mark.parametrize(
    "how, reason", [("set", "was set after construction"), ("template", "was modified by its parent")]
)
def test_a_parent_that_changes_a_block_taints_the_skeleton(how, reason):
    with torch.device("meta"), blocks.stubbing([_Block]) as taints:
        _Meddling(how)
        blocks.check_templates(taints)
    assert taints and reason in taints[0]


def test_stubs_share_a_template_only_for_identical_constructor_calls():
    with torch.device("meta"), blocks.stubbing([_Block]) as taints:
        a, b, c = _Block(8), _Block(8), _Block(16)
        d = _Block(8, scale=torch.ones(1))  # a tensor argument cannot be keyed: built for real
    assert not taints and all(blocks.is_stub(m) for m in (a, b, c)) and not blocks.is_stub(d)
    assert blocks.template_of(a) is blocks.template_of(b) is not blocks.template_of(c)


def test_keys_tell_apart_what_constructs_different_modules():
    assert freeze(True) != freeze(1) and freeze(1) != freeze(1.0)
    assert freeze(functools.partial(nn.ReLU, inplace=True)) == freeze(functools.partial(nn.ReLU, inplace=True))
    assert freeze(functools.partial(nn.ReLU, inplace=True)) != freeze(functools.partial(nn.ReLU, inplace=False))
    assert fingerprint(nn.Conv2d(4, 8, 3)) != fingerprint(nn.Conv2d(4, 8, 3, stride=2))
    hooked = nn.Conv2d(4, 8, 3)
    hooked.register_forward_hook(lambda *args: None)
    with pytest.raises(Unkeyable):
        fingerprint(hooked)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "permuted"])
def test_shape_rules_match_the_meta_kernels(layout):
    x = torch.empty(2, 8, 5, 7, device="meta")
    x = {"contiguous": x, "channels_last": x.to(memory_format=torch.channels_last), "permuted": x.permute(0, 2, 3, 1)}[
        layout
    ]
    channels, last = x.shape[1], x.shape[-1]
    for func, rule in _RULES.items():
        if "batch_norm" in str(func):
            c = torch.empty(channels, device="meta")
            args = (
                (x, c, c, c, c, False, 0.1, 1e-5)
                if str(func).split("aten.")[-1] == "native_batch_norm.default"
                else (x, c, c, c, c, 0.1, 1e-5)
            )
        elif "layer_norm" in str(func):
            args = (x, [last], torch.empty(last, device="meta"), torch.empty(last, device="meta"), 1e-6)
        elif "mean" in str(func):
            for dims, keepdim in (([2, 3], True), ([1], False), ([-1], True)):
                assert spec_of(func(x, dims, keepdim)) == rule(x, dims, keepdim), (func, layout, dims)
            continue
        elif "cat" in str(func):
            continue  # its rule holds for contiguous inputs only: see the next test
        elif "convolution" in str(func):
            for weight, stride, padding, dilation, groups in (
                ((16, channels, 3, 3), [2, 1], [1, 0], [1, 1], 1),
                ((channels, 1, 5, 3), [1, 2], [2, 1], [2, 1], channels),
            ):
                args = (x, torch.empty(weight, device="meta"), None, stride, padding, dilation, False, [0, 0], groups)
                assert spec_of(func(*args)) == rule(*args), (func, layout, weight)
            continue
        elif "addmm" in str(func):
            args = (
                torch.empty(4, device="meta"),
                torch.empty(3, x.numel() // 3, device="meta"),
                torch.empty(x.numel() // 3, 4, device="meta"),
            )
        else:
            args = (x,)
        assert spec_of(func(*args)) == rule(*args), (func, layout)
        assert spec_of(replay(rule(*args))) == rule(*args)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "permuted"])
def test_concatenation_gives_the_kernels_shapes_whether_its_rule_is_trusted_or_not(layout):
    """The rule is trusted per input layout only where it matched the real kernel the first time."""
    from timm_compound.cost.counter import ShapeCounter, _checked

    x = torch.empty(2, 8, 5, 7, device="meta")
    x = {"contiguous": x, "channels_last": x.to(memory_format=torch.channels_last), "permuted": x.permute(0, 2, 3, 1)}[
        layout
    ]
    y = torch.empty_like(x)
    for args in (([x, y], 1), ([x, y, x], 1), ([x, y], -1), ([x, y], 1)):  # the last one after the check
        expected = spec_of(torch.ops.aten.cat.default(*args))
        assert spec_of(ShapeCounter._memoised(torch.ops.aten.cat.default, args, {})) == expected, (layout, args)
    if layout == "contiguous":  # DenseNet's case: the rule is trusted, the kernel not run again
        from timm_compound.cost.counter import _layout

        assert _checked[(torch.ops.aten.cat.default, (_layout(x), _layout(y)), (1,))] is True


def test_clear_forgets_and_the_next_count_is_the_same():
    scaled = plan("mobilenetv2_100", 1)
    before = measure(scaled)
    cost_model.clear()
    assert not blocks._templates
    assert measure(scaled) == before


def test_measure_and_fit_leave_the_garbage_collector_as_they_found_it():
    import gc

    from timm_compound.cost.fit import fit

    assert gc.isenabled()
    measure(plan("resnet18", 0.5))
    fit("resnet18", max_gmacs=2.0)
    assert gc.isenabled()
    gc.disable()
    try:
        measure(plan("resnet18", 0.7))
        assert not gc.isenabled()  # a caller that holds it keeps holding it
    finally:
        gc.enable()
