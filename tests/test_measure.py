"""measure(): MACs, params, activations equal to fvcore's count; training memory vs a real step.

The cost model against the exact meta path on every family: tests/test_cost_model.py."""

import pytest
import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

import timm_compound
from timm_compound.cost.measure import exact_counts, measure
from timm_compound.cost.model import full_counts
from timm_compound.cost.reference import measure_reference
from timm_compound.errors import CompoundError
from timm_compound.scaling.catalog import lookup


@pytest.mark.parametrize(
    "base, macs, published, tolerance",
    [
        ("resnet50", 4_089_184_256, 4.09, 0.01),
        ("efficientnet_b0", 385_814_752, 0.39, 0.02),
        ("mobilenetv2_100", 300_774_272, 0.30, 0.02),
        ("mobilenetv1_100", 568_740_352, 0.57, 0.02),
    ],
)
def test_base_gmacs_match_published_tables(base, macs, published, tolerance):
    cost = measure(base)
    assert cost.macs == macs and cost.resolution == 224 and cost.method == "model"
    assert cost.gmacs == pytest.approx(published, rel=tolerance)


FAMILIES = [
    "resnet18",
    "resnext50_32x4d",
    "mobilenetv1_100",
    "mobilenetv2_100",
    "efficientnet_b0",
    "convnext_atto",
    "densenet121",
    "mobilenetv3_large_100",
    "mnasnet_100",
]


@pytest.mark.parametrize("base", FAMILIES)
def test_fast_path_equals_fvcore_reference_exactly(base):
    for phi, resolution in ((0, 64), (2, 96)):
        scaled = timm_compound.plan(base, phi)
        fast = measure(scaled, resolution=resolution)
        reference = measure_reference(scaled, resolution=resolution)
        assert (fast.method, reference.method) == ("model", "fvcore")
        assert (fast.macs, fast.activations, fast.params, fast.weight_bytes) == (
            reference.macs,
            reference.activations,
            reference.params,
            reference.weight_bytes,
        ), (base, phi)
        assert sum(reference.per_stage.values()) == reference.macs
        assert len(reference.per_stage) == len(scaled.depths) + 1  # one per stage, plus "other"


def test_batch_size_multiplies_macs_and_activations():
    one, four = measure("resnet18", resolution=64), measure("resnet18", resolution=64, batch_size=4)
    assert (four.macs, four.activations, four.params) == (4 * one.macs, 4 * one.activations, one.params)


class _Unusual(nn.Module):
    """Ops the shipped families do not use: a transposed conv, a batched matmul, a linear layer."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 8, 4, stride=2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.up(x).flatten(2)  # (N, 8, P)
        x = torch.bmm(x, x.transpose(1, 2))  # (N, 8, 8)
        return self.fc(x)


def test_shape_arithmetic_counter_equals_flop_counter_mode_on_every_counted_op():
    """The cost model's counter (shape arithmetic) and FlopCounterMode agree on conv, transposed conv, bmm, addmm."""
    model = _Unusual().to("meta").eval()
    assert full_counts(model, 2, 16) == exact_counts(model, 2, 16)
    cost = measure(model, resolution=16, batch_size=2)
    assert cost.method == "meta" and (cost.macs, cost.activations) == exact_counts(model, 2, 16)


def test_b7_size_variant_is_measured_on_meta_without_weights():
    cost = measure("efficientnet_b0_cs_phi7")
    assert (cost.params, cost.macs, cost.resolution) == (68_741_810, 38_761_717_264, 592)


def test_a_built_model_measures_like_its_plan_and_keeps_its_weights():
    model = timm_compound.build(timm_compound.plan("mobilenetv2_100", -1))
    before = model.conv_stem.weight.clone()
    assert measure(model) == measure(model.compound_plan) and measure(model).method == "model"
    assert torch.equal(model.conv_stem.weight, before) and model.conv_stem.weight.device.type == "cpu"


@pytest.mark.parametrize("bad", [{"resolution": 0}, {"batch_size": 0}, {"resolution": 64.0}])
def test_bad_sizes_are_errors(bad):
    with pytest.raises(CompoundError):
        measure("resnet18", **bad)


def test_unknown_target_is_an_error():
    with pytest.raises(CompoundError, match="neither a registered variant"):
        measure("resnet9000")
    with pytest.raises(CompoundError, match="takes a variant or base name"):
        measure(42)


def _sgd_step(model, x, y, optimizer):
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def _measured_peak(name: str, resolution: int, batch_size: int) -> int:
    """Peak bytes of a real CPU training step: bytes held before it + the profiler's peak allocation delta."""
    torch.manual_seed(0)
    model = timm_compound.build(timm_compound.plan(*lookup(name))).train()
    x, y = torch.randn(batch_size, 3, resolution, resolution), torch.zeros(batch_size, dtype=torch.long)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _sgd_step(model, x, y, optimizer)  # momentum buffers exist from here on: the steady state
    held = sum(t.nbytes for t in (*model.parameters(), *model.buffers(), x, y))
    held += sum(v.nbytes for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _sgd_step(model, x, y, optimizer)

    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node.children)

    allocations = sorted(
        (
            n
            for n in walk(prof.profiler.kineto_results.experimental_event_tree())
            if n.tag == torch._C._profiler._EventType.Allocation
        ),
        key=lambda n: n.start_time_ns,
    )
    live = peak = 0
    for node in allocations:
        live += node.extra_fields.alloc_size
        peak = max(peak, live)
    return held + peak


def test_training_memory_estimate_is_within_10_percent_of_a_real_cpu_step():
    estimate = measure("resnet18_cs_phi0", resolution=96, batch_size=8, train_memory=True).train_memory_bytes
    assert estimate == 167_374_272
    real = _measured_peak("resnet18_cs_phi0", 96, 8)
    assert abs(estimate / real - 1) < 0.10, (estimate, real)


def test_reference_per_stage_breakdown_follows_the_rules_stage_modules():
    """'stages.*.blocks' (ConvNeXt) resolves to one entry per stage; the stages and the rest sum to the total."""
    reference = measure_reference("convnext_atto_cs_phi1", resolution=64)
    assert list(reference.per_stage) == [f"stages.{i}.blocks" for i in range(4)] + ["other"]
    assert sum(reference.per_stage.values()) == reference.macs == measure("convnext_atto_cs_phi1", resolution=64).macs
