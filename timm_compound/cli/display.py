"""Rich tables for plans and variant lists: what the CLI prints."""

from __future__ import annotations

from rich.table import Table

from timm_compound.scaling.plan import ScalePlan


def _pair(base, scaled) -> str:
    if base is None and scaled is None:
        return "derived by timm"
    return str(scaled) if base == scaled else f"{base} → {scaled}"


def plan_table(plan: ScalePlan, title: str | None = None) -> Table:
    """One plan: multipliers exact and realised, per-stage depths and widths, stem, head, resolution."""
    phi = "explicit d/w/r" if plan.phi is None else f"{plan.phi:g}"
    table = Table(title=title or f"{plan.base} (rule {plan.rule_file}, phi {phi})", show_header=True)
    table.add_column("quantity", overflow="fold")
    table.add_column("exact", justify="right", overflow="fold")
    table.add_column("realised", justify="right", overflow="fold")
    table.add_column("base → scaled", overflow="fold")
    mult, real = plan.multipliers, plan.realised
    table.add_row("d (depth)", f"{mult.depth:.4f}", f"{real.depth:.4f}", f"{plan.base_depths} → {plan.depths}")
    table.add_row("w (width)", f"{mult.width:.4f}", f"{real.width:.4f}", f"{plan.base_widths} → {plan.widths}")
    table.add_row(
        "r (resolution)", f"{mult.resolution:.4f}", f"{real.resolution:.4f}",
        _resolution(plan),
    )
    table.add_row("stem", "", "", f"{_pair(plan.base_stem, plan.stem)} ({plan.rule.stem.policy})")
    table.add_row("head", "", "", f"{_pair(plan.base_head, plan.head)} ({plan.rule.head.policy})")
    c = plan.coefficients
    table.add_row("coefficients", "", "", f"α={c.alpha} β={c.beta} γ={c.gamma} (α·β²·γ²={c.flops_factor:.4f})")
    if plan.strategy.name != "compound":
        table.add_row("strategy", "", "", plan.strategy.label())
    for arg, value in plan.constructor_args.items():
        table.add_row(arg, "", "", f"{value:g} (schedule)")
    for part, reason in plan.rule.fixed().items():
        table.add_row(f"{part} fixed", "", "", reason)
    return table


def _resolution(plan: ScalePlan) -> str:
    """Where the input size came from: requested by the caller, or r applied and rounded (or capped)."""
    if plan.resolution_source == "override":
        return (f"{plan.base_resolution} → {plan.resolution} px (requested; r alone would give "
                f"{plan.resolution_exact:.1f})")
    return f"{plan.base_resolution} → {plan.resolution} px ({plan.resolution_source}, exact {plan.resolution_exact:.1f})"


def family_view(base: str, rows, train_memory: bool = False, compact: bool = False) -> Table:
    """A family table (timm_compound.table.family_table rows): exact vs realised, cost vs the ideal.

    `compact` keeps what fits 80 columns: phi, input size, depths, params, GMACs and the ratios.
    """
    table = Table(title=f"{base}: realised cost per phi (MACs = conv + linear)")
    wide = not compact
    columns = ["φ"] + (["d (exact/real)", "w (exact/real)", "r (exact/real)"] if wide else []) + [
        "px", "depths", "params M", "GMACs", "× φ=0", "ideal ×"] + (["activations"] if wide else []) + (
        ["train MiB"] if train_memory else [])
    timed = bool(rows) and rows[0].latency_ms is not None
    if timed:
        columns += ["ms", "95% interval", "img/s", "ms/GMAC"]
        first = rows[0]
        threads = f"{first.threads} thread" + ("s" if first.threads != 1 else "")
        table.caption = (f"timed on {first.device}, {threads}, batch {first.latency_batch_size}, {first.dtype}, "
                         f"{first.runtime}: ms is the median of blocks of runs, with its 95% interval"
                         + ("; * stopped by the time cap before the interval was within 3%"
                            if any(not row.latency_converged for row in rows) else ""))
    for column in columns:
        table.add_column(column, justify="left" if column == "depths" else "right", overflow="fold")
    for row in rows:
        cells = [f"{row.phi:g}"]
        if wide:
            cells += [f"{row.d:.3f}/{row.d_realised:.3f}", f"{row.w:.3f}/{row.w_realised:.3f}",
                      f"{row.r:.3f}/{row.r_realised:.3f}"]
        cells += [str(row.resolution), str(row.depths), f"{row.mparams:.2f}", f"{row.gmacs:.3f}",
                  f"{row.ratio:.2f}", f"{row.ideal:.2f}"]
        if wide:
            cells.append(f"{row.activations:,}")
        if train_memory:
            cells.append(f"{row.train_memory_mib:.0f}")
        if timed:
            cells += [f"{row.latency_ms:.4g}" + ("" if row.latency_converged else "*"),
                      f"{row.latency_low_ms:.4g}-{row.latency_high_ms:.4g}", f"{row.throughput:.4g}",
                      f"{row.ms_per_gmac:.4g}" if row.ms_per_gmac is not None else "–"]
        table.add_row(*cells)
    return table
