"""`timm-compound demo`: the main job end to end on built-in defaults, small enough for a laptop CPU."""

from __future__ import annotations

import time

import torch
from rich.console import Console
from rich.table import Table

DEFAULT_VARIANTS = (
    "resnet18_cs_phi0",
    "resnet18_cs_phi1",
    "resnet18_cs_phi2",
    "mobilenetv2_100_cs_phi1",
    "efficientnet_b0_cs_phi1",
)


def run(names: list[str] | None, console: Console) -> list[dict]:
    """Build each variant with timm.create_model, show its plan, count parameters, run one forward pass."""
    import timm

    from timm_compound.display import plan_table
    from timm_compound.errors import UnknownModelError
    from timm_compound.registry import registered

    names = list(names or DEFAULT_VARIANTS)
    unknown = [name for name in names if name not in registered()]
    if unknown:
        raise UnknownModelError(f"not registered: {', '.join(unknown)} (see `timm-compound list`)")

    rows = []
    for name in names:
        model = timm.create_model(name, pretrained=False).eval()
        config = timm.data.resolve_model_data_config(model)
        console.print(plan_table(model.compound_plan, title=name))
        start = time.perf_counter()
        with torch.inference_mode():
            logits = model(torch.randn(1, *config["input_size"]))
        rows.append(dict(
            name=name,
            params=sum(p.numel() for p in model.parameters()),
            input_size=config["input_size"][-1],
            output=tuple(logits.shape),
            seconds=time.perf_counter() - start,
        ))

    table = Table(title="forward pass at each variant's own input size (CPU, batch 1)")
    for column in ("variant", "params", "input", "output", "time"):
        table.add_column(column, justify="right" if column != "variant" else "left")
    for row in rows:
        table.add_row(row["name"], f"{row['params']:,}", f"{row['input_size']}px", str(row["output"]),
                      f"{row['seconds'] * 1000:.0f} ms")
    console.print(table)
    return rows
