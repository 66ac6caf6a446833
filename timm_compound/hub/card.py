"""The README.md model card of a published scaled model: what it is, what it costs, how to load it."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from timm_compound.cost.measure import measure
from timm_compound.scaling.plan import ScalePlan


def _cost(model: nn.Module) -> tuple[int, float]:
    """(parameters, GMACs of one image at the plan's resolution) of the model as published."""
    measured = measure(model)
    return measured.params, measured.gmacs


def _fmt(values: list[Any] | None) -> str:
    return "—" if values is None else ", ".join(str(v) for v in values)


def _number(value: Any, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:,.{digits}f}{suffix}"


def _trained_at(model: nn.Module) -> str:
    """'; weights trained at 32 px' for a grown model whose source's training is known, else ''."""
    report = getattr(model, "inherit_report", None)
    trained = getattr(report, "source_training", None) or {}
    pixels = trained.get("train_resolution") or trained.get("resolution")
    return f"; weights trained at {pixels} px" if pixels else ""


def _part(width: int | None) -> str:
    return "derived by timm" if width is None else str(width)


def training_section(training: dict[str, Any] | None) -> str:
    """'## Training': the data, the measured accuracy of the published weights, the settings.

    `training` is plain data (timm_compound.train's run summary; the hub layer never reads runs):
    dataset, dataset_source, classes, train_images, val_images, split, epochs, best_epoch, top1,
    top5, eval_loss, resolution, train_resolution, settings (a dict), world_size, versions, and
    train_samples / val_samples when the run used fixed subsets.
    """
    if not training:
        return ""
    get = training.get
    split = get("split") or {}
    split_text = (
        f"a fixed seeded holdout of {split.get('val_fraction', 0):.0%} (seed {split.get('seed')})"
        if split.get("kind") == "seeded holdout"
        else "the dataset's own train and validation splits"
    )
    source = f" ({get('dataset_source')})" if get("dataset_source") else ""
    trained, evaluated = get("train_resolution"), get("resolution")
    pixels = (
        f"{evaluated} px"
        if trained == evaluated
        else f"trained at {trained} px, evaluated at {evaluated} px (reduced-resolution training)"
    )
    chance = 100.0 / get("classes") if get("classes") else None
    subset = " (fixed subsets)" if get("train_samples") or get("val_samples") else ""
    rows = [
        ("top-1", f"{_number(get('top1'), suffix='%')} (chance {_number(chance, 1, '%')})"),
        ("top-5", _number(get("top5"), suffix="%")),
        ("cross-entropy", _number(get("eval_loss"), 4)),
        ("weights from epoch", f"{get('best_epoch')} of {get('epochs')} (the best top-1)"),
        ("input size", pixels),
    ]
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    settings = ", ".join(f"{key} {value}" for key, value in (get("settings") or {}).items())
    versions = get("versions") or {}
    made = ", ".join(f"{name} {version}" for name, version in versions.items() if name != "python")
    processes = get("world_size") or 1
    return f"""
## Training

Trained from random initialisation with `timm_compound.train` (timm's optimizer, scheduler and data
transforms) on **{get("dataset")}**{source}: {_number(get("train_images"), 0)} training and
{_number(get("val_images"), 0)} validation images{subset}, {get("classes")} classes, validated on {split_text}.
These numbers describe that data only.

| measured on the validation split | value |
|---|---|
{table}

Settings: {settings}; {processes} process{"es" if processes > 1 else ""}{f"; trained with {made}" if made else ""}.
"""


# What the card says of the weights when no training record comes with them
_WEIGHTS = {
    "random": "**Untrained**: the weights are a fresh random initialisation (timm's default init), "
    "published to share the architecture; they classify no better than chance.",
    "file": "The weights come from a file the publisher supplied; no training record was published "
    "with them, so their accuracy is not stated here.",
    "model": "The weights are those of the model the publisher passed; no training record was published "
    "with them, so whether and how they were trained is not stated here.",
}


def inherited_section(report: Any, scaled: ScalePlan) -> str:
    """'## Weights' of a grown model (its `inherit_report`, read as plain attributes): the source, what grew,
    how close it stays to the source, and the input sizes the source was trained and evaluated at."""
    blocks = list(report.new_blocks)
    listed = ", ".join(f"`{b}`" for b in blocks[:8]) + (f" and {len(blocks) - 8} more" if len(blocks) > 8 else "")
    grew = (
        f"{len(blocks)} new block{'s' if len(blocks) != 1 else ''} start{'s' if len(blocks) == 1 else ''} as "
        f"the identity ({listed})"
        if blocks
        else "no block was added"
    )
    noise = f", then noise {report.noise:g} broke the copies' symmetry" if report.noise else ""
    trained = report.source_training or {}
    if trained.get("resolution"):
        at, evaluated = trained.get("train_resolution") or trained["resolution"], trained["resolution"]
        pixels = f"{at} px" if at == evaluated else f"{at} px (evaluated at {evaluated} px)"
        top1 = f"; top-1 {trained['top1']:.2f}% on its validation split" if trained.get("top1") is not None else ""
        origin = (
            f"The source's weights were trained at {pixels} on **{trained.get('dataset')}**"
            f"{top1}. This model's input size, {scaled.resolution} px, is its plan's: it has not been "
            f"trained or evaluated at {scaled.resolution} px (use it at {evaluated} px, or fine-tune it)."
        )
    else:
        origin = (
            "How and at what input size the source's weights were trained is not recorded, so no accuracy "
            "is stated here; this model has not been trained since it was grown."
        )
    return f"""
## Weights

**Grown from {report.source}** by `timm_compound.inherit` (Net2Net: the grown model computes the source's
function): {grew}; {report.widened} channel set{"s" if report.widened != 1 else ""} widened by copying units
(seed {report.seed}{noise}). Outputs differ from the source's by {report.deviation:.1e} (relative, on a
random input). {origin}
"""


def render(
    config: dict[str, Any],
    scaled: ScalePlan,
    source: str,
    model: nn.Module,
    training: dict[str, Any] | None = None,
    weights_origin: str = "model",
) -> str:
    """The card: front matter (library_name: timm, tags), the plan and its cost, a usage snippet that works,
    and with `training` the measured accuracy (see `training_section`); without it, a plain sentence on
    where the weights come from (`weights_origin`: 'random', 'file' or 'model')."""
    num_classes = config["num_classes"]
    params, cost = _cost(model)
    plain = config["timm_compound"]["plain_timm_loadable"]
    mult, real, coef = scaled.multipliers, scaled.realised, scaled.coefficients
    title = config["timm_compound"]["name"] or f"{scaled.base} compound-scaled"
    phi = "—" if scaled.phi is None else f"{scaled.phi:g}"
    license_line = (
        f"license: {config['pretrained_cfg']['license']}\n" if config["pretrained_cfg"].get("license") else ""
    )
    if plain:
        loading = (
            "Plain timm loads this model too (`architecture` is the base with JSON `model_args`): "
            "`import timm_compound` is optional; it adds `model.compound_plan` via `timm_compound.from_hub`."
        )
        import_line = "import timm_compound  # optional for this model: plain timm builds it from model_args"
    else:
        loading = (
            f"Plain timm cannot build this model: `architecture` is `{config['architecture']}`, which "
            "`import timm_compound` registers; it builds the model from the plan in config.json."
        )
        import_line = "import timm_compound  # registers the entrypoint that builds this model from its plan"
    rows = [
        ("base", f"`{scaled.base}` (family `{scaled.family}`, rule `{scaled.rule_file}`)"),
        ("phi", phi),
        ("coefficients (alpha, beta, gamma)", f"{coef.alpha:g}, {coef.beta:g}, {coef.gamma:g}"),
        ("depth d: exact / realised", f"{mult.depth:.4f} / {real.depth:.4f}"),
        ("width w: exact / realised", f"{mult.width:.4f} / {real.width:.4f}"),
        ("resolution r: exact / realised", f"{mult.resolution:.4f} / {real.resolution:.4f}"),
        ("blocks per stage", f"{_fmt(scaled.base_depths)} → {_fmt(scaled.depths)}"),
        ("stage widths", f"{_fmt(scaled.base_widths)} → {_fmt(scaled.widths)}"),
        ("stem / head", f"{_part(scaled.stem)} / {_part(scaled.head)}"),
        (
            "input size",
            f"{scaled.base_resolution} → {scaled.resolution} ({scaled.resolution_source})" + _trained_at(model),
        ),
        ("classes", str(num_classes)),
        ("parameters", f"{params:,}"),
        (f"GMACs at {scaled.resolution}×{scaled.resolution}", f"{cost:.3f}"),
    ]
    if scaled.strategy.name != "compound":
        rows.insert(2, ("strategy", scaled.strategy.label()))
    rows += [
        (f"{part} does not scale", reason.replace("|", "/").replace("\n", " "))
        for part, reason in scaled.rule.fixed().items()
    ]
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    versions = config["timm_compound"]
    report = getattr(model, "inherit_report", None)
    if training:
        weights_section = training_section(training)
    elif report is not None and weights_origin == "model":
        weights_section = inherited_section(report, scaled)
    else:
        weights_section = f"\n## Weights\n\n{_WEIGHTS[weights_origin]}\n"
    return f"""---
library_name: timm
{license_line}tags:
- image-classification
- timm
- timm-compound
- compound-scaling
- {scaled.family}
---

# {title}

`{scaled.base}` compound-scaled by timm-compound (EfficientNet-style:
d = α^φ, w = β^φ, r = γ^φ). The complete plan, including the rule as applied, is in `config.json`
under `compound_plan`. Weights: `model.safetensors` only.

| quantity | value |
|---|---|
{table}

## Usage

{loading}

```python
import timm
import torch
{import_line}

model = timm.create_model("{source}", pretrained=True).eval()
config = timm.data.resolve_model_data_config(model)
with torch.no_grad():
    logits = model(torch.randn(1, *config["input_size"]))
print(config["input_size"], tuple(logits.shape))
```
{weights_section}
Made with timm-compound {versions["version"]}, timm {versions["timm_version"]}, torch {versions["torch_version"]}.
"""
