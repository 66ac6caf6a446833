"""Models on the meta device: shapes and parameter counts without allocating a single weight."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from timm_compound.scaling.build import build
from timm_compound.scaling.plan import ScalePlan


def meta_copy(model: nn.Module) -> nn.Module:
    """The model with every parameter and buffer on meta; the original's weights are not copied."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def meta_build(scaled: ScalePlan) -> nn.Module:
    """The plan's model built on meta, in eval mode (weight initialisation skipped: there are no values)."""
    with fast_meta():
        return build(scaled).eval()


def on_meta(model: nn.Module) -> bool:
    return all(t.device.type == "meta" for t in (*model.parameters(), *model.buffers()))


def in_chans(model: nn.Module) -> int:
    size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    return size[0] if size else 3


def sizes(model: nn.Module) -> tuple[int, int]:
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    return params, weight_bytes


class _SkipInit(TorchFunctionMode):
    """Skips in-place weight initialisation on meta tensors: it has no values to set and
    costs most of a meta build's time (torch runs meta random ops through Python refs)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _INIT_METHODS:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
                return tensor
        return func(*args, **kwargs)


_INIT_METHODS = {
    getattr(torch.Tensor, name) for name in (
        "normal_", "uniform_", "fill_", "zero_", "erfinv_", "mul_", "add_", "clamp_", "copy_", "exponential_",
        "log_normal_", "cauchy_", "geometric_", "random_", "bernoulli_", "sub_", "div_",
    )
} | {   # torch.nn.init's own functions dispatch as a whole (a mode does not see the calls inside them)
    getattr(torch.nn.init, name) for name in (
        "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
        "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
    ) if hasattr(torch.nn.init, name)
}


@contextmanager
def fast_meta():
    """Build on meta without running weight initialisation (shapes and counts are unchanged)."""
    with torch.device("meta"), _SkipInit():
        yield
