"""What to train: a model, a registered name, a base a rule covers (phi = 0) or a ScalePlan -> an
nn.Module with the dataset's class count, and the plan and pixels it is trained and evaluated at.

`resolution` overrides the plan's input size (the plan then says `resolution_source: override`),
so a model trained and evaluated at 32 px says so in its pretrained_cfg, run.json and model card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.hub.load import build
from timm_compound.scaling import norms
from timm_compound.scaling.build import pretrained_cfg
from timm_compound.scaling.catalog import lookup, registered
from timm_compound.scaling.plan import Multipliers, ScalePlan
from timm_compound.scaling.plan import plan as make_plan
from timm_compound.scaling.weights import check_shapes, safetensors_shapes, state_shapes
from timm_compound.train.checkpoint import load_weights


@dataclass
class Chosen:
    """The model to train and what describes it in run.json."""

    model: nn.Module
    plan: ScalePlan | None
    spec: str  # the name asked for, a plan in a few words, or the module's class
    name: str | None  # a registered variant name (publishable under that name), else None

    def record(self) -> dict[str, Any]:
        cfg = getattr(self.model, "pretrained_cfg", None) or {}
        return {
            "spec": self.spec,
            "name": self.name,
            "architecture": cfg.get("architecture"),
            "num_classes": getattr(self.model, "num_classes", None),
            "params": sum(p.numel() for p in self.model.parameters()),
            "plan": self.plan.to_dict() if self.plan is not None else None,
        }


def with_resolution(scaled: ScalePlan, resolution: int | None) -> ScalePlan:
    """The same plan at another input size (structure and weights unchanged)."""
    if resolution is None or resolution == scaled.resolution:
        return scaled
    realised = Multipliers(
        depth=scaled.realised.depth, width=scaled.realised.width, resolution=resolution / scaled.base_resolution
    )
    return scaled.model_copy(update={"resolution": resolution, "resolution_source": "override", "realised": realised})


def plan_for(
    spec: Any, resolution: int | None = None, phi: float | None = None, norm: str | None = None
) -> tuple[ScalePlan, str | None, str]:
    """(plan at `resolution` with `norm`, registered name when the plan is that name's own, label for
    run.json); `phi` scales a base name (a registered variant's phi is part of its name)."""
    if phi is not None and not isinstance(spec, str):
        raise CompoundError("phi scales a base given by name; a plan or a model already has its size")
    if isinstance(spec, ScalePlan):
        scaled, name, label = spec, None, plan_label(spec)
    elif isinstance(spec, str):
        base, registered_phi = lookup(spec)  # UnknownModelError for anything else
        if phi is not None and registered_phi is not None:
            raise CompoundError(f"{spec} is registered at phi={registered_phi}; give its base ({base}) to choose phi")
        is_registered = spec in registered()
        if phi is not None:
            scaled, name, label = make_plan(base, phi), None, f"{spec} phi={phi:g}"
        else:
            scaled = (
                registered_plan(spec)
                if is_registered
                else make_plan(base, 0.0 if registered_phi is None else registered_phi)
            )
            name, label = (spec if is_registered else None), spec
    else:
        raise UnknownModelError(
            f"cannot train {type(spec).__name__}: give a model, a registered name, a base or a ScalePlan"
        )
    overridden = norms.with_norm(with_resolution(scaled, resolution), norm)
    if overridden.norm != "batch":
        label = f"{label} norm={overridden.norm}"
    return overridden, (name if overridden is scaled else None), label


def plan_label(scaled: ScalePlan) -> str:
    """'resnet18 phi=2' or 'resnet18 d=0.5 w=0.25 r=1': a plan in a few words."""
    if scaled.phi is not None:
        return f"{scaled.base} phi={scaled.phi:g}"
    mult = scaled.multipliers
    return f"{scaled.base} d={mult.depth:g} w={mult.width:g} r={mult.resolution:g}"


def choose_model(
    spec: Any,
    *,
    num_classes: int,
    resolution: int | None = None,
    phi: float | None = None,
    norm: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> Chosen:
    """Build (or check) the model for a dataset of `num_classes` classes."""
    if isinstance(spec, nn.Module):
        if phi is not None:
            raise CompoundError("phi scales a base given by name; this model is already built")
        built_norm = getattr(getattr(spec, "compound_plan", None), "norm", "batch")
        if norm is not None and norm != built_norm:
            raise CompoundError(f"norm={norm!r}: this model is already built, with {built_norm} norm")
        if model_kwargs:
            raise CompoundError("model_kwargs apply when train() builds the model; this model is already built")
        classes = getattr(spec, "num_classes", None)
        if classes != num_classes:
            raise CompoundError(
                f"the model has {classes} classes but the dataset has {num_classes}: "
                f"call model.reset_classifier({num_classes}) first"
            )
        scaled = getattr(spec, "compound_plan", None)
        return Chosen(spec, scaled if isinstance(scaled, ScalePlan) else None, type(spec).__name__, None)
    scaled, name, label = plan_for(spec, resolution, phi, norm)
    model = build(scaled, name=name, num_classes=num_classes, **dict(model_kwargs or {}))
    return Chosen(model, scaled, label, name)


def registered_plan(name: str) -> ScalePlan:
    """The plan a registered name builds (what `timm.create_model(name)` attaches), on the meta device."""
    import timm

    with torch.device("meta"):
        return timm.create_model(name).compound_plan


def minimum_resolution(chosen: Chosen) -> int:
    """The smallest input the model takes: the rule's resolution floor, else the network's total stride."""
    if chosen.plan is not None:
        return chosen.plan.rule.resolution.min
    info = getattr(chosen.model, "feature_info", None)
    try:
        return int(info[-1]["reduction"]) if info else 1
    except (KeyError, TypeError, IndexError):
        return 1


def load_trained(spec: Any, weights: str | Path, *, resolution: int | None = None, norm: str | None = None) -> Chosen:
    """A model with trained weights from a .safetensors file; the class count comes from the file."""
    path = Path(weights)
    shapes = safetensors_shapes(path, str(path))  # a clear error for a pickle or a corrupt file
    if isinstance(spec, nn.Module):
        chosen = choose_model(spec, num_classes=getattr(spec, "num_classes", 0), norm=norm)
        what = f"the {type(spec).__name__} given"
    else:
        scaled, _, _ = plan_for(spec, resolution, norm=norm)
        classifier = pretrained_cfg(scaled).get("classifier")
        if not isinstance(classifier, str) or f"{classifier}.weight" not in shapes:
            raise CompoundError(f"{path}: no {classifier}.weight tensor to tell the class count from")
        chosen = choose_model(spec, num_classes=shapes[f"{classifier}.weight"][0], resolution=resolution, norm=norm)
        what = f"the model {chosen.spec}"
    check_shapes(state_shapes(chosen.model.state_dict()), shapes, str(path), what)
    chosen.model.load_state_dict(load_weights(path))
    return chosen
