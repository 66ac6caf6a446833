"""Rich tables for plans and variant lists: what the CLI prints."""

from __future__ import annotations

from rich.table import Table

from timm_compound.plan import ScalePlan


def _pair(base, scaled) -> str:
    if base is None and scaled is None:
        return "derived by timm"
    return str(scaled) if base == scaled else f"{base} → {scaled}"


def plan_table(plan: ScalePlan, title: str | None = None) -> Table:
    """One plan: multipliers exact and realised, per-stage depths and widths, stem, head, resolution."""
    phi = "explicit d/w/r" if plan.phi is None else f"{plan.phi:g}"
    table = Table(title=title or f"{plan.base} (rule {plan.rule_file}, phi {phi})", show_header=True)
    table.add_column("quantity")
    table.add_column("exact", justify="right")
    table.add_column("realised", justify="right")
    table.add_column("base → scaled")
    mult, real = plan.multipliers, plan.realised
    table.add_row("d (depth)", f"{mult.depth:.4f}", f"{real.depth:.4f}", f"{plan.base_depths} → {plan.depths}")
    table.add_row("w (width)", f"{mult.width:.4f}", f"{real.width:.4f}", f"{plan.base_widths} → {plan.widths}")
    table.add_row(
        "r (resolution)", f"{mult.resolution:.4f}", f"{real.resolution:.4f}",
        f"{plan.base_resolution} → {plan.resolution} px ({plan.resolution_source}, exact {plan.resolution_exact:.1f})",
    )
    table.add_row("stem", "", "", f"{_pair(plan.base_stem, plan.stem)} ({plan.rule.stem.policy})")
    table.add_row("head", "", "", f"{_pair(plan.base_head, plan.head)} ({plan.rule.head.policy})")
    c = plan.coefficients
    table.add_row("coefficients", "", "", f"α={c.alpha} β={c.beta} γ={c.gamma} (α·β²·γ²={c.flops_factor:.4f})")
    for arg, value in plan.constructor_args.items():
        table.add_row(arg, "", "", f"{value:g} (schedule)")
    return table
