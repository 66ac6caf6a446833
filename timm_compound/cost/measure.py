"""What a scaled model costs: parameters, MACs, activations and training memory.

Closed-loop scaling needs the realised cost of a plan after all rounding, not the
ideal ``2**phi``. The fast path runs the model on the ``meta`` device, so a
B7-size variant (or far larger) is measured without allocating a single weight.
MACs follow the EfficientNet paper's "FLOPs" and timm's tables: multiply-adds of
convolutions and linear layers only (fvcore's convention, one fused multiply-add
counts once); ``measure_reference`` (``timm_compound.cost.reference``) computes the same numbers with fvcore on a
real model, so the two can be compared exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from timm_compound.cost.complexity import Complexity, check_sizes, resolve_target
from timm_compound.cost.memory import train_step_memory
from timm_compound.cost.meta import in_chans, meta_build, meta_copy, sizes
from timm_compound.scaling.plan import ScalePlan

_aten = torch.ops.aten
# conv + linear, as fvcore counts them (aten::_convolution, addmm, mm, matmul, bmm, linear)
COUNTED_OPS = (_aten.convolution, _aten._convolution, _aten.addmm, _aten.mm, _aten.bmm)


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


def meta_model(scaled: ScalePlan) -> tuple[nn.Module, int, int]:
    """(model on meta in eval mode, params, weight bytes) for a plan: the reusable part of a measurement."""
    model = meta_build(scaled)
    return (model, *sizes(model))


def count_forward(model: nn.Module, batch_size: int, resolution: int) -> tuple[int, int]:
    """(MACs, activations) of one forward on meta, by shape arithmetic alone.

    The same conv + linear convention as ``measure`` without FlopCounterMode's module
    tracking, for loops that measure many plans (``fit``): conv = output elements x
    (input channels / groups) x kernel area; mm = M x K x N.
    """
    counter = _OutputCount()
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    with torch.no_grad(), counter:
        model(x)
    return counter.macs, counter.elements


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
    scaled, given, resolution = resolve_target(target, resolution)
    check_sizes(resolution, batch_size)
    model = meta_copy(given).eval() if given is not None else meta_build(scaled)
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    flops, outputs = FlopCounterMode(display=False), _OutputCount()
    with torch.no_grad(), flops, outputs:
        model(x)
    counts = flops.get_flop_counts().get("Global", {})
    macs = sum(counts.get(op, 0) for op in COUNTED_OPS) // 2
    params, weight_bytes = sizes(model)
    memory = train_step_memory(model, batch_size, resolution) if train_memory else None
    return Complexity(params, macs, outputs.elements, weight_bytes, resolution, batch_size, memory)
