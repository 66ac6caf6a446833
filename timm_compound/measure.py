"""What a scaled model costs: parameters, MACs, activations and training memory.

Closed-loop scaling needs the realised cost of a plan after all rounding, not the
ideal ``2**phi``. The fast path runs the model on the ``meta`` device, so a
B7-size variant (or far larger) is measured without allocating a single weight.
MACs follow the EfficientNet paper's "FLOPs" and timm's tables: multiply-adds of
convolutions and linear layers only (fvcore's convention, one fused multiply-add
counts once); ``measure_reference`` computes the same numbers with fvcore on a
real model, so the two can be compared exactly.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from timm_compound.errors import CompoundError
from timm_compound.plan import ScalePlan, lookup, plan as make_plan

_aten = torch.ops.aten
# conv + linear, as fvcore counts them (aten::_convolution, addmm, mm, matmul, bmm, linear)
COUNTED_OPS = (_aten.convolution, _aten._convolution, _aten.addmm, _aten.mm, _aten.bmm)


@dataclass(frozen=True)
class Complexity:
    """The measured cost of one model at one input size and batch size."""

    params: int
    macs: int                      # conv + linear multiply-adds for the whole batch (forward)
    activations: int               # elements output by conv + linear ops (fvcore's ActivationCountAnalysis)
    weight_bytes: int              # parameters + buffers, as a state_dict holds them
    resolution: int
    batch_size: int
    train_memory_bytes: int | None = None   # peak of one SGD-momentum training step, estimated on meta
    method: str = "meta"           # "meta" (fast path) or "fvcore" (reference)
    per_stage: dict[str, int] | None = field(default=None, compare=False)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6

    @property
    def train_memory_mib(self) -> float | None:
        return None if self.train_memory_bytes is None else self.train_memory_bytes / 2**20

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gmacs": self.gmacs, "mparams": self.mparams}


class _OutputCount(TorchDispatchMode):
    """Counts elements output by conv and linear ops: fvcore's definition of activations."""

    def __init__(self):
        super().__init__()
        self.elements = 0
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        op = func.overloadpacket
        if op in COUNTED_OPS:
            self.elements += out.numel()
            if op in (_aten.convolution, _aten._convolution):
                x, weight, transposed = args[0], args[1], args[6]
                if transposed:   # fvcore: batch x weight elements x input pixels
                    self.macs += x.shape[0] * math.prod(weight.shape) * math.prod(x.shape[2:])
                else:
                    self.macs += out.numel() * math.prod(weight.shape[1:])
            else:   # addmm(bias, a, b), mm(a, b), bmm(a, b): M x K x N (x batch)
                a = args[1] if op is _aten.addmm else args[0]
                self.macs += out.numel() * a.shape[-1]
        return out


def _resolve(target: str | ScalePlan | nn.Module, resolution: int | None) -> tuple[ScalePlan | None, nn.Module | None, int]:
    """(plan, model, resolution) from a variant name, a base name, a plan or a built model."""
    if isinstance(target, str):
        base, phi = lookup(target)
        target = make_plan(base, 0 if phi is None else phi)
    if isinstance(target, ScalePlan):
        return target, None, target.resolution if resolution is None else resolution
    if isinstance(target, nn.Module):
        scaled = getattr(target, "compound_plan", None)
        if resolution is None and scaled is not None:
            resolution = scaled.resolution
        if resolution is None:
            size = (getattr(target, "pretrained_cfg", None) or {}).get("input_size")
            resolution = size[-1] if size else None
        if resolution is None:
            raise CompoundError("cannot tell this model's input size: pass resolution=")
        return None, target, resolution
    raise CompoundError(f"measure() takes a variant or base name, a ScalePlan or an nn.Module, got {type(target).__name__}")


def _check(resolution: int, batch_size: int) -> None:
    for name, value in (("resolution", resolution), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CompoundError(f"{name} must be a positive int, got {value!r}")


def _meta_copy(model: nn.Module) -> nn.Module:
    """The model with every parameter and buffer on meta; the original's weights are not copied."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def _meta_model(scaled: ScalePlan | None, model: nn.Module | None) -> nn.Module:
    if model is not None:
        return _meta_copy(model)
    from timm_compound.build import build

    with torch.device("meta"):
        return build(scaled)


def meta_model(scaled: ScalePlan) -> tuple[nn.Module, int, int]:
    """(model on meta in eval mode, params, weight bytes) for a plan: the reusable part of a measurement."""
    model = _meta_model(scaled, None).eval()
    return (model, *_sizes(model))


def count_forward(model: nn.Module, batch_size: int, resolution: int) -> tuple[int, int]:
    """(MACs, activations) of one forward on meta, by shape arithmetic alone.

    The same conv + linear convention as ``measure`` without FlopCounterMode's module
    tracking, for loops that measure many plans (``fit``): conv = output elements x
    (input channels / groups) x kernel area; mm = M x K x N.
    """
    counter = _OutputCount()
    x = torch.empty(batch_size, _in_chans(model), resolution, resolution, device="meta")
    with torch.no_grad(), counter:
        model(x)
    return counter.macs, counter.elements


def _in_chans(model: nn.Module) -> int:
    size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    return size[0] if size else 3


def _sizes(model: nn.Module) -> tuple[int, int]:
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    return params, weight_bytes


def measure(
    target: str | ScalePlan | nn.Module,
    *,
    resolution: int | None = None,
    batch_size: int = 1,
    train_memory: bool = False,
) -> Complexity:
    """Params, MACs and activations of a variant, base, plan or model, counted on meta (no weights allocated).

    MACs are FlopCounterMode's forward FLOPs of conv + linear ops, halved (it counts a
    multiply-add as two); identical to fvcore's conv + linear count (``measure_reference``).
    """
    scaled, given, resolution = _resolve(target, resolution)
    _check(resolution, batch_size)
    model = _meta_model(scaled, given).eval()
    x = torch.empty(batch_size, _in_chans(model), resolution, resolution, device="meta")
    flops, outputs = FlopCounterMode(display=False), _OutputCount()
    with torch.no_grad(), flops, outputs:
        model(x)
    counts = flops.get_flop_counts().get("Global", {})
    macs = sum(counts.get(op, 0) for op in COUNTED_OPS) // 2
    params, weight_bytes = _sizes(model)
    memory = train_step_memory(model, batch_size, resolution) if train_memory else None
    return Complexity(params, macs, outputs.elements, weight_bytes, resolution, batch_size, memory)


def train_step_memory(model: nn.Module, batch_size: int, resolution: int, num_classes: int | None = None) -> int:
    """Peak bytes live during one steady-state training step, estimated on meta (no real weights).

    The step: ``zero_grad(set_to_none=True)``, forward, cross-entropy, backward,
    ``SGD(momentum=0.9).step()``, with the momentum buffers already there (a step
    after the first). The peak counts parameters, buffers, gradients, momentum,
    saved activations, temporaries and the input batch, as torch's MemTracker sees
    them. Backend workspaces that meta kernels never allocate (e.g. CPU im2col
    buffers of slow_conv2d) are not included.
    """
    from torch.distributed._tools.mem_tracker import MemTracker

    model = model if _on_meta(model) else _meta_copy(model)
    model.train()
    x = torch.empty(batch_size, _in_chans(model), resolution, resolution, device="meta")
    y = torch.zeros(batch_size, dtype=torch.long, device="meta")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _sgd_step(model, x, y, optimizer)     # creates the momentum buffers: the next step is the steady state
    tracker = MemTracker()
    tracker.track_external(model, optimizer)
    with tracker:
        _sgd_step(model, x, y, optimizer)
    peak = tracker.get_tracker_snapshot("peak")[torch.device("meta")]["Total"]
    return int(peak) + x.numel() * x.element_size() + y.numel() * y.element_size()


def _on_meta(model: nn.Module) -> bool:
    return all(t.device.type == "meta" for t in (*model.parameters(), *model.buffers()))


def _sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def measure_reference(
    target: str | ScalePlan | nn.Module,
    *,
    resolution: int | None = None,
    batch_size: int = 1,
) -> Complexity:
    """The same numbers from fvcore on a real model and input: the check on the fast path.

    fvcore is set to count conv + linear only (batchnorm, pooling, upsample and
    elementwise handles off); ``per_stage`` is its per-module MAC breakdown over the
    rule's ``stage_modules``, plus ``other`` for stem, head and classifier.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # fvcore scripts helpers with the deprecated torch.jit
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
        from fvcore.nn import jit_handles as fv

    from timm_compound.build import build

    scaled, given, resolution = _resolve(target, resolution)
    _check(resolution, batch_size)
    model = (given if given is not None else build(scaled)).eval()
    device = next(model.parameters()).device
    x = torch.randn(batch_size, _in_chans(model), resolution, resolution, device=device)
    # fvcore's defaults also count batchnorm, pooling and upsampling, and set_op_handle(name, None)
    # does not drop a default handle: start from none and add conv + linear back
    flops = FlopCountAnalysis(model, x).clear_op_handles().set_op_handle(
        "aten::_convolution", fv.conv_flop_jit, "aten::addmm", fv.addmm_flop_jit, "aten::linear", fv.linear_flop_jit,
        "aten::mm", fv.matmul_flop_jit, "aten::matmul", fv.matmul_flop_jit, "aten::bmm", fv.bmm_flop_jit,
        "aten::einsum", fv.einsum_flop_jit,
    )
    activations = ActivationCountAnalysis(model, x)
    for analysis in (flops, activations):
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.jit deprecation notices from fvcore's tracer
        total, by_module, elements = int(flops.total()), flops.by_module(), int(activations.total())
    params, weight_bytes = _sizes(model)
    stages = _stage_paths(model, scaled or getattr(model, "compound_plan", None))
    per_stage = {path: int(by_module[path]) for path in stages}
    per_stage["other"] = total - sum(per_stage.values())
    return Complexity(
        params, total, elements, weight_bytes, resolution, batch_size,
        method="fvcore", per_stage=per_stage,
    )


def _stage_paths(model: nn.Module, scaled: ScalePlan | None) -> list[str]:
    where = scaled.rule.stage_modules if scaled is not None else None
    if where is None:
        return []
    from timm_compound.build import stage_paths

    return stage_paths(model, where)
