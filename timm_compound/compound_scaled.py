"""The timm model module that holds timm-compound's registered entrypoints.

timm's registry files each entrypoint under its module (`timm.list_models(module=
"compound_scaled")`) and reads the module's `default_cfgs`; both live here.
"""

from __future__ import annotations

from typing import Any

default_cfgs: dict[str, Any] = {}
__all__: list[str] = []


def make_entrypoint(name: str, base: str, phi: int, hf_hub_id: str | None):
    """A timm entrypoint `name(pretrained=False, **kwargs)` for one registered variant."""

    def entrypoint(pretrained: bool = False, **kwargs):
        from timm_compound.build import build
        from timm_compound.plan import plan

        return build(plan(base, phi), pretrained=pretrained, name=name, hf_hub_id=hf_hub_id, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"{base} compound-scaled to phi={phi} by timm-compound."
    entrypoint.timm_compound_variant = (base, phi)
    globals()[name] = entrypoint
    return entrypoint
