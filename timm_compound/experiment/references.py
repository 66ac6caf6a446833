"""Reference models trained beside the variants: any timm model name, registered variants included
(`resnet34` beside `resnet18`'s 2x variants, or `resnet18_cs_phi1`).

A reference runs at `NAME@PIXELS` when given so; otherwise at its native input size scaled as the
experiment scales the base's (an experiment at 32 px on a 224 px base trains a 224 px reference at
32 px, a 256 px one at 37 px), or at its native size when the experiment keeps the base's.
It is measured as trained (the dataset's class count, its pixels), like every variant.
"""

from __future__ import annotations

from dataclasses import replace

import torch.nn as nn

from timm_compound.cost.latency import LatencySettings, time_model
from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.experiment.results import REFERENCE, Variant
from timm_compound.scaling.catalog import lookup
from timm_compound.scaling.meta_device import fast_meta
from timm_compound.scaling.plan import plan as make_plan


def parse(reference: str) -> tuple[str, int | None]:
    """'resnet34' -> ('resnet34', None); 'resnet34@48' -> ('resnet34', 48)."""
    if not isinstance(reference, str) or not reference.strip():
        raise CompoundError(f"a reference must be a timm model name (optionally NAME@PIXELS), got {reference!r}")
    name, sep, pixels = reference.strip().partition("@")
    if not sep:
        return name, None
    try:
        value = int(pixels)
    except ValueError:
        value = 0
    if value < 1:
        raise CompoundError(f"reference {reference!r}: after @ comes an input size in pixels, e.g. {name}@48")
    return name, value


def check_names(references) -> tuple[str, ...]:
    if isinstance(references, str):
        references = (references,)
    checked = tuple(references or ())
    names = [parse(reference)[0] for reference in checked]
    if len(set(names)) != len(names):
        raise CompoundError(f"references repeat: {list(checked)!r}")
    for name in names:
        _kind(name)
    return checked


def _kind(name: str) -> bool:
    """True when `name` is a timm model no rule covers (built with timm.create_model); False when
    train() takes the name itself (a registered variant or a base); a clear error for anything else."""
    import timm

    try:
        lookup(name)
        return False
    except UnknownModelError:
        pass
    if timm.is_model(name):
        return True
    raise CompoundError(
        f"reference {name!r} is not a timm model or a registered variant "
        "(`timm.list_models()` and `timm-compound list` show the names)"
    )


def _minimum_pixels(model: nn.Module) -> int:
    """The smallest input a model takes: its rule's resolution floor, else its network's total stride."""
    scaled = getattr(model, "compound_plan", None)
    if scaled is not None:
        return scaled.rule.resolution.min
    info = getattr(model, "feature_info", None)
    try:
        return int(info[-1]["reduction"]) if info else 1
    except (KeyError, TypeError, IndexError):
        return 1


def reference_variant(
    reference: str,
    *,
    base: str,
    experiment_resolution: int,
    native_base: int,
    num_classes: int,
    base_macs: int,
    norm: str | None = None,
) -> Variant:
    """A reference planned and measured as it will be trained (with the experiment's `norm`, which
    its family's rule must allow)."""
    import timm

    name, pixels = parse(reference)
    timm_only = _kind(name)
    if timm_only and norm not in (None, "batch"):
        raise CompoundError(
            f"reference {name}: norm={norm!r} trains every model with it, but {name} is a plain timm model "
            "that no rule covers, so it has only its own norm"
        )
    with fast_meta():  # shapes only: weight initialisation skipped
        model = timm.create_model(name, num_classes=num_classes)
    native = int(model.pretrained_cfg["input_size"][-1])
    if pixels is None:
        pixels = (
            native
            if experiment_resolution == native_base
            else max(1, round(experiment_resolution * native / native_base))
        )
    if (model.pretrained_cfg or {}).get("fixed_input_size") and pixels != native:
        raise CompoundError(
            f"reference {name} takes only {native} px inputs (fixed_input_size); the experiment "
            f"would train it at {pixels} px: give {name}@{native} with an experiment at that scale"
        )
    floor = _minimum_pixels(model)
    if pixels < floor:
        raise CompoundError(
            f"reference {name} would train at {pixels} px, below the {floor} px its network takes "
            f"(its total stride): give {name}@{floor} or more"
        )
    plan = None
    if not timm_only:
        scaled_base, phi = lookup(name)
        plan = make_plan(scaled_base, 0.0 if phi is None else phi, norm=norm)
    cost = measure(model, resolution=pixels)
    folder = "ref-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    # d, w, r against the experiment's base only for a variant of that base (resnet18_cs_phi1 beside resnet18)
    ours = plan is not None and plan.base == base
    return Variant(
        name=folder,
        strategy=REFERENCE,
        budget=None,
        model=name,
        plan=plan,
        resolution=pixels,
        cost=cost,
        ratio=cost.macs / base_macs,
        phi=None if plan is None else plan.phi,
        timm_only=timm_only,
        d=plan.realised.depth if ours else None,
        w=plan.realised.width if ours else None,
        r=pixels / experiment_resolution if ours else None,
    )


def timed(variant: Variant, settings: LatencySettings, num_classes: int) -> Variant:
    """The reference timed as it will be trained (built by timm with the dataset's classes, at its pixels),
    cached under its timm name."""
    import timm

    identity = {"timm_model": variant.model, "num_classes": num_classes, "resolution": variant.resolution}
    latency = time_model(
        lambda: timm.create_model(variant.model, num_classes=num_classes),
        settings,
        resolution=variant.resolution,
        identity=identity,
    )
    return replace(variant, latency=latency)


def versus_budget(base: str, other: Variant) -> float:
    """The budget that puts the compound-scaled base at `other`'s real cost (3 significant digits, so the
    run folder name stays short, e.g. 2.04x-compound); it must be > 1, since compound scaling grows a base."""
    budget = float(f"{other.ratio:.3g}")
    if budget <= 1:
        raise CompoundError(
            f"--versus {other.model} costs {other.ratio:.3g}x {base}'s GMACs at {other.resolution} px: "
            f"compound scaling grows a base, so the other model must cost more than {base} "
            "(swap the two names)"
        )
    return budget
