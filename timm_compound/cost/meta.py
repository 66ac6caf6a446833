"""Models on the meta device: shapes and parameter counts without allocating a single weight."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn

from timm_compound.scaling.build import build
from timm_compound.scaling.meta_device import fast_meta
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
