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


def render(config: dict[str, Any], scaled: ScalePlan, source: str, model: nn.Module) -> str:
    """The card: front matter (library_name: timm, tags), the plan and its cost, a usage snippet that works."""
    num_classes = config["num_classes"]
    params, cost = _cost(model)
    plain = config["timm_compound"]["plain_timm_loadable"]
    mult, real, coef = scaled.multipliers, scaled.realised, scaled.coefficients
    title = config["timm_compound"]["name"] or f"{scaled.base} compound-scaled"
    phi = "—" if scaled.phi is None else f"{scaled.phi:g}"
    license_line = f"license: {config['pretrained_cfg']['license']}\n" if config["pretrained_cfg"].get("license") else ""
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
        ("stem / head", f"{scaled.stem} / {scaled.head}"),
        ("input size", f"{scaled.base_resolution} → {scaled.resolution} ({scaled.resolution_source})"),
        ("classes", str(num_classes)),
        ("parameters", f"{params:,}"),
        (f"GMACs at {scaled.resolution}×{scaled.resolution}", f"{cost:.3f}"),
    ]
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    versions = config["timm_compound"]
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

Made with timm-compound {versions['version']}, timm {versions['timm_version']}, torch {versions['torch_version']}.
"""
