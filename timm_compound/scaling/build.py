"""ScalePlan -> timm nn.Module, through the base's own timm entrypoint.

This builds the structure a plan describes. Weights come in only as a pretrained_cfg that
``timm_compound.hub.load`` has already resolved to a local, checked ``.safetensors`` file;
``timm_compound.build(plan, pretrained=True)`` is that checked path.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.scaling import limits, norms, structure, timm_adapter
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.plan import plan as make_plan

# pretrained_cfg fields that describe the data and the module layout, not the base's weights
_CFG_KEEP = (
    "num_classes",
    "mean",
    "std",
    "interpolation",
    "crop_pct",
    "crop_mode",
    "first_conv",
    "classifier",
    "fixed_input_size",
    "license",
)


def default_name(plan: ScalePlan) -> str:
    return f"{plan.base}_cs"


def pretrained_cfg(plan: ScalePlan, name: str | None = None, hf_hub_id: str | None = None) -> dict[str, Any]:
    """The scaled model's pretrained_cfg: the base's data settings, the planned input size, no base weights."""
    return variant_cfg(plan.base, plan.resolution, plan.base_resolution, name or default_name(plan), hf_hub_id)


def variant_cfg(
    base: str, resolution: int, base_resolution: int, name: str, hf_hub_id: str | None = None
) -> dict[str, Any]:
    """pretrained_cfg of `base` scaled to `resolution` px, under `name` (registration needs no plan)."""
    base_cfg = timm_adapter.base_pretrained_cfg(base)
    cfg = {key: base_cfg[key] for key in _CFG_KEEP if base_cfg.get(key) is not None}
    channels = base_cfg.get("input_size", (3,))[0]
    cfg["architecture"] = name
    cfg["input_size"] = (channels, resolution, resolution)
    if base_cfg.get("pool_size"):
        scale = resolution / base_resolution
        cfg["pool_size"] = tuple(math.ceil(p * scale) for p in base_cfg["pool_size"])
    if hf_hub_id:
        cfg["hf_hub_id"] = hf_hub_id
    cfg["notes"] = (f"compound-scaled from {base} by timm-compound",)
    return cfg


def build(
    plan: ScalePlan,
    *,
    name: str | None = None,
    hf_hub_id: str | None = None,
    weights_cfg: dict[str, Any] | None = None,
    allow_oversize: bool = False,
    **timm_kwargs,
) -> nn.Module:
    """Build the timm model a plan describes; `timm_kwargs` go to timm as for any model.

    The base's own entrypoint runs, so `features_only`, `num_classes`, `drop_path_rate`
    and the rest behave as for the base. The plan is attached as `model.compound_plan`.
    `weights_cfg`, when given, is a pretrained_cfg whose weights were checked against the
    plan (an in-memory state dict or a local .safetensors file): timm loads it.
    A plan above `limits` (or, off the meta device, larger than this machine's memory) is
    refused before anything is built, unless `allow_oversize=True`.
    """
    on_meta = torch.get_default_device().type == "meta" or str(timm_kwargs.get("device", "")) == "meta"
    limits.check(plan.size, f"the plan for {plan.base}", allocates=not on_meta, allow_oversize=allow_oversize)
    if not on_meta and not allow_oversize and limits.needs_exact_count(plan.size):
        limits.check_memory(_weight_bytes(plan, timm_kwargs), f"the plan for {plan.base}")
    if "pretrained" in timm_kwargs:
        raise CompoundError(
            "scaling.build builds the structure only: load weights with "
            "timm_compound.build(plan, pretrained=True), which checks them first"
        )
    rule = plan.rule
    owned = sorted(rule.structural_args() & timm_kwargs.keys())
    if owned:
        raise CompoundError(
            f"{', '.join(owned)} {'is' if len(owned) == 1 else 'are'} set by the scaling plan "
            f"(rule {plan.rule_file}); change phi or d/w/r instead"
        )
    if (
        weights_cfg is not None
        and weights_cfg.get("state_dict") is None
        and not str(weights_cfg.get("file") or "").endswith(".safetensors")
    ):
        raise CompoundError("weights must be a checked local .safetensors file; timm-compound never unpickles")
    norms.refuse_norm_kwargs(plan, timm_kwargs)
    for arg, value in plan.constructor_args.items():
        timm_kwargs.setdefault(arg, value)
    cfg = pretrained_cfg(plan, name, hf_hub_id)

    def rewrite(call: timm_adapter.BuildCall) -> timm_adapter.BuildCall:
        structure.write_plan(call, plan)
        norms.write(call, plan)
        if weights_cfg is not None:
            call.kwargs["pretrained_cfg"] = weights_cfg
        elif not call.kwargs.get("pretrained_cfg"):
            call.kwargs["pretrained_cfg"] = cfg
        call.variant = name or default_name(plan)
        return call

    model = timm_adapter.build(plan.base, rewrite, pretrained=weights_cfg is not None, **timm_kwargs)
    model.compound_plan = plan
    return model


def _weight_bytes(plan: ScalePlan, timm_kwargs: dict[str, Any]) -> int:
    """Bytes of the parameters and buffers the plan's model will allocate, counted on the meta device."""
    kwargs = {key: value for key, value in timm_kwargs.items() if key not in ("pretrained", "device")}
    with torch.device("meta"):
        model = build(plan, allow_oversize=True, **kwargs)
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def scale(
    base: str,
    phi: float | None = None,
    *,
    d: float | None = None,
    w: float | None = None,
    r: float | None = None,
    resolution: int | None = None,
    coefficients: Any = None,
    norm: str | None = None,
    **timm_kwargs,
) -> nn.Module:
    """Plan and build a scaled `base` in one call (structure only): ``scale("resnet18", phi=2, num_classes=10)``."""
    scaled = make_plan(base, phi, d=d, w=w, r=r, resolution=resolution, coefficients=coefficients, norm=norm)
    return build(scaled, **timm_kwargs)
