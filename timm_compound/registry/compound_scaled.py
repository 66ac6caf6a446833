"""The timm model module that holds timm-compound's registered entrypoints.

timm's registry files each entrypoint under the last part of its module name
(`timm.list_models(module="compound_scaled")`) and reads the module's `default_cfgs`;
both live here. Every entrypoint builds through `timm_compound.hub.load.build`, so
`pretrained=True` loads only checked safetensors weights.
"""

from __future__ import annotations

from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.hub.config import PLAN_ENTRYPOINT, plan_from_config
from timm_compound.hub.load import build
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.plan import plan

default_cfgs: dict[str, Any] = {}
__all__: list[str] = []


def make_entrypoint(name: str, base: str, phi: int, hf_hub_id: str | None):
    """A timm entrypoint `name(pretrained=False, **kwargs)` for one registered variant."""

    def entrypoint(pretrained: bool = False, **kwargs):
        return build(plan(base, phi), pretrained=pretrained, name=name, hf_hub_id=hf_hub_id, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"{base} compound-scaled to phi={phi} by timm-compound."
    entrypoint.timm_compound_variant = (base, phi)
    globals()[name] = entrypoint
    return entrypoint


def compound_scaled_from_plan(pretrained: bool = False, compound_plan: dict[str, Any] | None = None, **kwargs):
    """Build the model a published config.json describes: its `model_args` carry the whole plan, so
    `timm.create_model("hf-hub:...")` works where the receiver's rules and registry do not know it."""
    scaled = plan_from_config(compound_plan, "model_args.compound_plan")
    return build(scaled, pretrained=pretrained, **kwargs)


assert compound_scaled_from_plan.__name__ == PLAN_ENTRYPOINT  # the name published configs use


def register_plan_entrypoint() -> None:
    """Register `compound_scaled_from_plan` with timm once; a name timm already uses is an error."""
    if PLAN_ENTRYPOINT in default_cfgs:
        return
    if timm_adapter.is_model(PLAN_ENTRYPOINT):
        raise CompoundError(f"{PLAN_ENTRYPOINT!r} collides with an existing timm model name")
    timm_adapter.register(compound_scaled_from_plan, {})


register_plan_entrypoint()
