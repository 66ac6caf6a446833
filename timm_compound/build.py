"""ScalePlan -> timm nn.Module, through the base's own timm entrypoint."""

from __future__ import annotations

import math
from typing import Any

import torch.nn as nn

from timm_compound import _timm_adapter, structure
from timm_compound.errors import CompoundError
from timm_compound.plan import ScalePlan, plan as make_plan

# pretrained_cfg fields that describe the data and the module layout, not the base's weights
_CFG_KEEP = (
    "num_classes", "mean", "std", "interpolation", "crop_pct", "crop_mode",
    "first_conv", "classifier", "fixed_input_size", "license",
)


def default_name(plan: ScalePlan) -> str:
    return f"{plan.base}_cs"


def pretrained_cfg(plan: ScalePlan, name: str | None = None, hf_hub_id: str | None = None) -> dict[str, Any]:
    """The scaled model's pretrained_cfg: the base's data settings, the planned input size, no base weights."""
    base_cfg = _timm_adapter.base_pretrained_cfg(plan.base)
    cfg = {key: base_cfg[key] for key in _CFG_KEEP if base_cfg.get(key) is not None}
    channels = base_cfg.get("input_size", (3,))[0]
    cfg["architecture"] = name or default_name(plan)
    cfg["input_size"] = (channels, plan.resolution, plan.resolution)
    if base_cfg.get("pool_size"):
        scale = plan.resolution / plan.base_resolution
        cfg["pool_size"] = tuple(math.ceil(p * scale) for p in base_cfg["pool_size"])
    if hf_hub_id:
        cfg["hf_hub_id"] = hf_hub_id
    cfg["notes"] = (f"compound-scaled from {plan.base} by timm-compound",)
    return cfg


def build(
    plan: ScalePlan,
    *,
    pretrained: bool = False,
    name: str | None = None,
    hf_hub_id: str | None = None,
    **timm_kwargs,
) -> nn.Module:
    """Build the timm model a plan describes; `timm_kwargs` go to timm as for any model.

    The base's own entrypoint runs, so `features_only`, `num_classes`, `drop_path_rate`
    and the rest behave as for the base. The plan is attached as `model.compound_plan`.
    """
    rule = plan.rule
    owned = sorted(rule.structural_args() & timm_kwargs.keys())
    if owned:
        raise CompoundError(
            f"{', '.join(owned)} {'is' if len(owned) == 1 else 'are'} set by the scaling plan "
            f"(rule {plan.rule_file}); change phi or d/w/r instead"
        )
    for arg, value in plan.constructor_args.items():
        timm_kwargs.setdefault(arg, value)

    cfg = pretrained_cfg(plan, name, hf_hub_id)
    given_cfg = timm_kwargs.get("pretrained_cfg")
    if pretrained and not _timm_adapter.has_weights(given_cfg or cfg):
        raise CompoundError(
            f"no weights are published for {name or default_name(plan)}: build it with pretrained=False, "
            "or load a published model with timm.create_model('hf-hub:<repo>', pretrained=True)"
        )

    load_cfg = None
    if pretrained:  # checked, safetensors-only weights: timm must never fall back to a pickle
        from timm_compound.hub import safe_pretrained_cfg

        load_cfg = safe_pretrained_cfg(plan, given_cfg or cfg, timm_kwargs.get("cache_dir"))

    def rewrite(call: _timm_adapter.BuildCall) -> _timm_adapter.BuildCall:
        structure.write(rule, call, plan.depths, plan.widths, plan.stem, plan.head)
        if load_cfg is not None:
            call.kwargs["pretrained_cfg"] = load_cfg
        elif not call.kwargs.get("pretrained_cfg"):
            call.kwargs["pretrained_cfg"] = cfg
        call.variant = name or default_name(plan)
        return call

    model = _timm_adapter.build(plan.base, rewrite, pretrained=pretrained, **timm_kwargs)
    if load_cfg is not None:  # report where the weights came from, not the checked cache file
        source_cfg = given_cfg.to_dict() if hasattr(given_cfg, "to_dict") else dict(given_cfg or cfg)
        model.pretrained_cfg.update(file=source_cfg.get("file"), source=source_cfg.get("source"))
    model.compound_plan = plan
    return model


def scale(
    base: str,
    phi: float | None = None,
    *,
    d: float | None = None,
    w: float | None = None,
    r: float | None = None,
    resolution: int | None = None,
    coefficients: Any = None,
    pretrained: bool = False,
    **timm_kwargs,
) -> nn.Module:
    """Plan and build a scaled `base` in one call: ``scale("resnet18", phi=2, num_classes=10)``."""
    scaled = make_plan(base, phi, d=d, w=w, r=r, resolution=resolution, coefficients=coefficients)
    return build(scaled, pretrained=pretrained, **timm_kwargs)


def stage_depths(model: nn.Module, plan: ScalePlan) -> list[int]:
    """Blocks per stage in a built model, found through the rule's `stage_modules`."""
    where = plan.rule.stage_modules
    if where is None:
        raise CompoundError(f"rule {plan.rule_file} has no stage_modules to verify against")
    return [len(stage) for stage in stage_modules(model, where)]


def stage_paths(model: nn.Module, where: str | list[str]) -> list[str]:
    """Resolve a rule's `stage_modules` to one module path per stage: a list of paths as given,
    a path whose children are the stages ('blocks'), or a path with one '*' standing for each
    child ('stages.*.blocks')."""
    if not isinstance(where, str):
        return list(where)
    parent, star, rest = where.partition("*")
    parent = parent.rstrip(".")
    children = [name for name, _ in (model.get_submodule(parent) if parent else model).named_children()]
    prefix = f"{parent}." if parent else ""
    if not star:
        return [f"{prefix}{name}" for name in children]
    suffix = rest if rest.startswith(".") or not rest else f".{rest}"
    return [f"{prefix}{name}{suffix}" for name in children]


def stage_modules(model: nn.Module, where: str | list[str]) -> list[nn.Module]:
    """The stage modules a rule's `stage_modules` names (see stage_paths)."""
    return [model.get_submodule(path) for path in stage_paths(model, where)]
