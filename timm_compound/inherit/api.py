"""`inherit()`: a scaled model that starts exactly where its base is (Net2Net growth, checked).

It resolves the base (`source`: a model, a safetensors file, a published folder or a Hub repo),
refuses what cannot grow (a smaller plan, a rule without `inherit`), builds the scaled model with
fresh weights seeded by `seed`, matches its blocks to the base's stage by stage (`align`), and
hands both to `grow`, which moves the weights across and checks the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.hub.load import build
from timm_compound.inherit import source
from timm_compound.inherit.align import align
from timm_compound.inherit.grow import PROBE_PIXELS, TOLERANCE, grow
from timm_compound.scaling.catalog import lookup
from timm_compound.scaling.plan import ScalePlan, plan

__all__ = ["InheritReport", "TOLERANCE", "inherit"]


@dataclass
class InheritReport:
    """What `inherit` did, attached to the model as `model.inherit_report`."""

    source: str
    new_blocks: list[str]
    widened: int  # channel spaces that grew
    deviation: float  # max |grown - base| / max |base| on a random input, after noise
    noise: float
    seed: int
    identity: dict[str, str] = field(default_factory=dict)  # zeroed tensor -> the rule entry that chose it
    # how the source's weights were trained, when known (a training run's summary: dataset, resolution,
    # train_resolution, top1, ...); the model card states it, input sizes included
    source_training: dict[str, Any] | None = None


def _target(target: Any) -> ScalePlan:
    if isinstance(target, ScalePlan):
        return target
    if isinstance(target, str):
        base, phi = lookup(target)
        if phi is None:
            raise CompoundError(
                f"{target} is a base: give a registered variant ({target}_cs_phi1) or a plan "
                f"(timm_compound.plan({target!r}, phi=1))"
            )
        return plan(base, phi)
    raise CompoundError(f"cannot grow into {type(target).__name__}: give a ScalePlan or a registered variant name")


def _check_growth(base: ScalePlan, target: ScalePlan) -> None:
    name = f"{target.base} at phi={target.phi:g}" if target.phi is not None else f"the plan for {target.base}"
    if target.phi is not None and target.phi < 0:
        raise CompoundError(
            f"{name} is smaller than its base: inheritance only grows a model (phi >= 0); "
            "train a smaller variant from scratch or distil into it"
        )
    for what, old, new in (("blocks", base.depths, target.depths), ("channels", base.widths, target.widths)):
        if len(old) != len(new):
            raise CompoundError(f"{name} has {len(new)} stages and its base {len(old)}")
        for stage, (a, b) in enumerate(zip(old, new)):
            if b < a:
                raise CompoundError(
                    f"{name} has {b} {what} in stage {stage + 1} of {len(old)} where its base has {a}: "
                    "inheritance only grows a model"
                )
    for part, old, new in (("stem", base.stem, target.stem), ("head", base.head, target.head)):
        if old is not None and new is not None and new < old:
            raise CompoundError(f"{name} narrows the {part} ({old} -> {new}): inheritance only grows a model")


def _check_options(noise: Any, seed: Any, timm_kwargs: dict[str, Any]) -> None:
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
        raise CompoundError(f"noise must be a finite number >= 0, got {noise!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CompoundError(f"seed must be an int, got {seed!r}")
    for key, why in (
        (
            "pretrained",
            "the weights come from the base; pretrained=True would load published weights "
            "of this exact variant instead",
        ),
        ("features_only", "grow the classification model, then wrap it with timm's feature extraction"),
    ):
        if timm_kwargs.get(key):
            raise CompoundError(f"inherit: {key}=True is not possible: {why}")


def _classes(model: nn.Module, timm_kwargs: dict[str, Any]) -> int | None:
    classes = getattr(model, "num_classes", None)
    asked = timm_kwargs.pop("num_classes", None)
    if asked is not None and asked != classes:
        raise CompoundError(
            f"inherit: num_classes={asked}, but the base's classifier has {classes} classes and is "
            f"inherited; grow it, then call model.reset_classifier({asked})"
        )
    return classes


def _resolution_params(target: ScalePlan, base: ScalePlan, model: nn.Module) -> None:
    suffixes = target.rule.inherit.resolution_params
    if not suffixes or target.resolution == base.resolution:
        return
    for name, _ in model.named_parameters():
        if any(name == s or name.endswith("." + s) for s in suffixes):
            raise CompoundError(
                f"{name} depends on the input resolution (rule {target.rule_file}: "
                f"inherit.resolution_params) and inheritance cannot resize it: plan {target.base} at "
                f"the base's resolution ({base.resolution} px, resolution=...)"
            )


def inherit(
    base_model_or_weights: Any,
    plan_or_name: Any,
    *,
    noise: float = 0.0,
    seed: int = 0,
    name: str | None = None,
    **timm_kwargs,
) -> nn.Module:
    """A scaled model initialised from its base's weights so that, in eval mode, it computes the base's function.

    `base_model_or_weights`: the base model (timm's, or a timm-compound model of a smaller plan), a
    `.safetensors` state dict of the base architecture, a published folder (`local-dir:DIR` or a path)
    or a Hub repo (`org/name`, `hf-hub:org/name[@rev]`; timm's own repos too). `plan_or_name`: a
    ScalePlan or a registered variant (`resnet18_cs_phi1`). Widths grow Net2WiderNet-style, new blocks
    start as the identity (the rule's `inherit.identity`), and the result is checked on a random input
    before it is returned. `noise` (relative to each weight's standard deviation) then perturbs the
    copied units to break their symmetry; `seed` chooses the copies, the new blocks' weights and the
    noise. `timm_kwargs` go to timm (drop_path_rate, ...). `model.inherit_report` says what was done.
    """
    target = _target(plan_or_name)
    where = f"growing {target.base} into {name or _describe(target)}"
    if target.rule.inherit is None:
        raise CompoundError(
            f"{where}: rule {target.rule_file} ({target.family}) has no `inherit` field, so its new "
            "blocks have no identity initialisation: this family cannot inherit its base's weights"
        )
    _check_options(noise, seed, timm_kwargs)
    _check_growth(source.base_plan(target), target)
    found = source.resolve(base_model_or_weights, target)
    _check_growth(found.plan, target)
    _check_norm(found.plan, target, where)
    timm_kwargs = {key: value for key, value in timm_kwargs.items() if value is not None or key != "num_classes"}
    classes = _classes(found.model, timm_kwargs)
    _resolution_params(target, found.plan, found.model)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = build(target, name=name, num_classes=classes, **timm_kwargs)
    with torch.device("meta"):  # traced on the meta device: the grown model's structure costs no arithmetic
        structure = build(target, name=name, num_classes=classes, **timm_kwargs)
    channels = (getattr(found.model, "pretrained_cfg", None) or {}).get("input_size", (3,))[0]
    x = torch.randn(2, channels, PROBE_PIXELS, PROBE_PIXELS, generator=torch.Generator().manual_seed(seed))
    alignment = align(found.model, grown, target.rule.stage_modules, where)
    growth = grow(
        found.model,
        grown,
        alignment,
        target.rule.inherit.identity,
        x=x,
        seed=seed,
        noise=float(noise),
        where=where,
        structure=structure,
    )
    grown.inherit_report = InheritReport(
        found.described, list(alignment.new), growth.widened, growth.deviation, float(noise), seed, growth.zeroed
    )
    return grown


def _check_norm(base: ScalePlan | None, target: ScalePlan, where: str) -> None:
    """Growth keeps the norm: batch norm's running statistics have no group-norm counterpart, and a
    proxy norm's moments differ from both, so a norm change cannot preserve the base's function."""
    had = getattr(base, "norm", "batch") if base is not None else "batch"
    if had != target.norm:
        raise CompoundError(
            f"{where}: the base has {had} norm and the plan norm={target.norm!r}; growing preserves the base's "
            f"function only with the same norm: plan the larger model with norm={had!r}, or start from a base "
            f"trained with norm={target.norm!r}"
        )


def _describe(target: ScalePlan) -> str:
    if target.phi is not None:
        return f"phi={target.phi:g}"
    mult = target.multipliers
    return f"d={mult.depth:g}, w={mult.width:g}"
