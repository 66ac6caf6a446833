"""The timm model module that holds timm-compound's registered entrypoints.

timm's registry files each entrypoint under the last part of its module name
(`timm.list_models(module="compound_scaled")`) and reads the module's `default_cfgs`;
both live here. Importing it also makes timm's `local-dir:` / `hf-hub:` sources check a
timm-compound config (`timm_compound.hub.load.timm_source`) and build it here. Every entrypoint
builds through `timm_compound.hub.load.build`, so `pretrained=True` loads only checked safetensors
weights (published for that exact variant), and `inherit_from=BASE` grows the base's weights into
the variant instead (`timm_compound.inherit`).
"""

from __future__ import annotations

from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.hub.config import PLAN_ENTRYPOINT, plan_from_config
from timm_compound.hub.load import build, timm_source
from timm_compound.inherit.api import inherit
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.plan import plan

default_cfgs: dict[str, Any] = {}
__all__: list[str] = []


def make_entrypoint(name: str, base: str, phi: int, hf_hub_id: str | None):
    """A timm entrypoint `name(pretrained=False, **kwargs)` for one registered variant."""

    def entrypoint(
        pretrained: bool = False,
        inherit_from: Any = None,
        inherit_noise: float = 0.0,
        inherit_seed: int = 0,
        norm: str | None = None,
        **kwargs,
    ):
        scaled = plan(base, phi, norm=norm)
        if pretrained and scaled.norm != "batch":
            raise CompoundError(
                f"{name}: the weights published for {name} are for its batch-norm model; "
                f"norm={norm!r} builds a different model: use pretrained=False"
            )
        if inherit_from is None:
            return build(scaled, pretrained=pretrained, name=name, hf_hub_id=hf_hub_id, **kwargs)
        if pretrained:
            raise CompoundError(
                f"{name}: pretrained=True loads the weights published for {name}, inherit_from= grows "
                f"{base}'s weights into it: give one of them"
            )
        kwargs = {
            key: value for key, value in kwargs.items() if not (key.startswith("pretrained_cfg") and value is None)
        }
        return inherit(
            inherit_from,
            scaled,
            noise=inherit_noise,
            seed=inherit_seed,
            name=name,
            hf_hub_id=hf_hub_id,
            **kwargs,
        )

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = (
        f"{base} compound-scaled to phi={phi} by timm-compound; inherit_from=MODEL_OR_PATH grows "
        f"{base}'s weights into it (inherit_noise, inherit_seed: see timm_compound.inherit); "
        "norm='group' | 'layer' | 'proxy' | 'proxy-layer' builds it with batch-independent norms."
    )
    entrypoint.timm_compound_variant = (base, phi)
    globals()[name] = entrypoint
    return entrypoint


def compound_scaled_from_plan(pretrained: bool = False, compound_plan: dict[str, Any] | None = None, **kwargs):
    """Build the model a published config.json describes: its `model_args` carry the whole plan, so
    `timm.create_model("hf-hub:...")` works where the receiver's rules and registry do not know it."""
    cfg = kwargs.get("pretrained_cfg")
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})
    where = cfg.get("file") or cfg.get("hf_hub_id") or "config.json"
    scaled = plan_from_config(compound_plan, f"{where}: model_args.compound_plan")
    try:
        return build(scaled, pretrained=pretrained, **kwargs)
    except CompoundError as error:  # e.g. the memory guard: name the folder or repo
        if where in str(error):
            raise
        raise CompoundError(f"{where}: {error}") from None
    except TypeError as error:  # a published model_args entry the base's constructor does not take
        if "pretrained_model_args" not in kwargs:
            raise
        raise CompoundError(
            f"{where}: config.json model_args do not fit {scaled.base}'s constructor: {error}"
        ) from None


assert compound_scaled_from_plan.__name__ == PLAN_ENTRYPOINT  # the name published configs use


def register_plan_entrypoint() -> None:
    """Register `compound_scaled_from_plan` with timm once; a name timm already uses is an error."""
    if PLAN_ENTRYPOINT in default_cfgs:
        return
    if timm_adapter.is_model(PLAN_ENTRYPOINT):
        raise CompoundError(f"{PLAN_ENTRYPOINT!r} collides with an existing timm model name")
    timm_adapter.register(compound_scaled_from_plan, {})


register_plan_entrypoint()
timm_adapter.guard_sources(timm_source)  # timm.create_model("local-dir:..."/"hf-hub:...") checks as from_hub does
