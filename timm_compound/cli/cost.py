"""`timm-compound table` and `timm-compound fit`: measured costs on the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from timm_compound.cli.app import (
    app,
    console,
    errors,
    fail,
    parse_coefficients,
    parse_phis,
)
from timm_compound.cli.measure import Device, Dtype, MaxSeconds, NoCache, Runtime, Threads, shown_warnings, timing_options
from timm_compound.errors import CompoundError


@app.command()
def table(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    phi: Annotated[str, typer.Option("--phi", help="Range 0-7 or list 0,2,4.")] = "0-7",
    coefficients: Annotated[Optional[str], typer.Option(help="alpha,beta,gamma")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG of GMACs and params vs phi.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size for MACs and training memory.")] = 1,
    train_memory: Annotated[bool, typer.Option("--train-memory", help="Estimate one SGD step's peak memory.")] = False,
    latency: Annotated[bool, typer.Option("--latency", help="Also time each phi here: ms, its 95% interval, img/s, ms per GMAC.")] = False,
    device: Device = "cpu",
    threads: Threads = 1,
    dtype: Dtype = "float32",
    runtime: Runtime = "eager",
    no_cache: NoCache = False,
    max_seconds: MaxSeconds = None,
) -> None:
    """Measure a family over phi: params, GMACs, ratio to phi=0 beside the ideal, activations (and with
    --latency, timings on this machine)."""
    from timm_compound.cli.display import family_view
    from timm_compound.cost.plot import check_plot_path, plot_table
    from timm_compound.cost.table import family_table

    try:
        if fmt not in ("table", "csv", "json"):
            raise CompoundError(f"--format must be table, csv or json, got {fmt!r}")
        if plot is not None:
            check_plot_path(plot)
        phis = parse_phis(phi)
        with shown_warnings():
            timing = _latency_settings(latency, device, batch_size, threads, dtype, runtime, no_cache, max_seconds)
            with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=errors, transient=True) as progress:
                task = progress.add_task(f"{'timing' if latency else 'measuring'} {base}", total=len(phis))
                rows = family_table(
                    base, phis, coefficients=parse_coefficients(coefficients), batch_size=batch_size,
                    train_memory=train_memory, latency=timing, progress=lambda _: progress.advance(task),
                )
    except CompoundError as error:
        raise fail(error) from None
    if fmt == "json":
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0].to_dict()))
        writer.writeheader()
        writer.writerows(row.to_dict() for row in rows)
        print(out.getvalue(), end="")
    else:
        from timm_compound.scaling.rulebook import active_rules

        console.print(family_view(base, rows, train_memory, compact=latency))
        for part, reason in active_rules().rule_for(base)[0].fixed().items():
            console.print(f"{part} does not scale (the rule fixes it): {reason}", highlight=False)
    if plot is not None:
        try:
            plot_table(rows, plot, title=base)
        except (CompoundError, OSError) as error:
            raise fail(error) from None
        errors.print(f"wrote {plot}")


def _latency_settings(latency: bool, device: str, batch_size: int, threads: int, dtype: str, runtime: str,
                      no_cache: bool, max_seconds: float | None):
    if not latency:
        return None
    from timm_compound.cost.latency import LatencySettings

    return LatencySettings.check(batch_size=batch_size,
                                 **timing_options(device, batch_size, threads, dtype, runtime, no_cache, max_seconds))


@app.command()
def fit(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    max_gmacs: Annotated[Optional[float], typer.Option(help="GMACs budget (conv + linear).")] = None,
    max_params: Annotated[Optional[float], typer.Option(help="Parameter budget in millions.")] = None,
    max_train_memory: Annotated[Optional[float], typer.Option(help="Training-step memory budget in MiB.")] = None,
    max_latency_ms: Annotated[Optional[float], typer.Option(
        help="Median latency budget in ms, timed here (with --device, --threads, --batch-size).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size for the budgets.")] = 1,
    coefficients: Annotated[Optional[str], typer.Option(help="alpha,beta,gamma")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    show: Annotated[bool, typer.Option("--show", help="Also print the full plan table.")] = False,
    to_dir: Annotated[Optional[Path], typer.Option(
        "--to-dir", help="Build the fitted model and save it there (Hub layout, loadable with local-dir:).")] = None,
    device: Device = "cpu",
    threads: Threads = 1,
    dtype: Dtype = "float32",
    runtime: Runtime = "eager",
    no_cache: NoCache = False,
    max_seconds: MaxSeconds = None,
) -> None:
    """Find the largest phi whose realised model meets every budget."""
    from timm_compound.cli.display import plan_table
    from timm_compound.cost.fit import fit as run_fit
    from timm_compound.hub.publish import check_output_dir

    try:
        if to_dir is not None:
            check_output_dir(to_dir)
        measured = "timings taken" if max_latency_ms is not None else "plans measured"
        with shown_warnings(), Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                        console=errors, transient=True) as progress:
            task = progress.add_task(f"fitting {base}")
            result = run_fit(
                base, max_gmacs=max_gmacs, max_params=max_params, max_train_memory=max_train_memory,
                max_latency_ms=max_latency_ms, batch_size=batch_size, coefficients=parse_coefficients(coefficients),
                progress=lambda n: progress.update(task, description=f"fitting {base}: {n} {measured}"),
                **timing_options(device, batch_size, threads, dtype, runtime, no_cache, max_seconds),
            )
    except CompoundError as error:
        raise fail(error) from None
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        scaled = result.plan
        console.print(
            f"{base}: phi {result.phi:.4f} (largest at its own resolution: {result.phi_max:.4f}), "
            f"{scaled.resolution} px ({scaled.resolution_source}), depths {scaled.depths}, widths {scaled.widths}"
            + ("" if result.fill == "none" else f"; the budget left over bought {result.fill}")
        )
        summary = Table(title="achieved vs target")
        for column in ("budget", "target", "achieved", "ratio"):
            summary.add_column(column, justify="right" if column != "budget" else "left", overflow="fold")
        for budget in result.budgets:
            achieved = f"{budget.achieved:.4f} {budget.unit}"
            if budget.interval is not None:
                achieved = f"{budget.achieved:.4g} {budget.unit} (95% interval {budget.interval[0]:.4g}-{budget.interval[1]:.4g})"
            summary.add_row(budget.name, f"{budget.target:g} {budget.unit}", achieved, f"{budget.ratio:.4f}")
        console.print(summary)
        if result.latency is not None:
            console.print(f"timed: {result.latency.describe()}; {result.timings} timings", markup=False,
                          highlight=False, soft_wrap=True)
            console.print(result.certainty, markup=False, highlight=False, soft_wrap=True)
        if show:
            console.print(plan_table(scaled))
    if to_dir is not None:
        from timm_compound.hub.publish import save_to_dir

        try:
            folder = save_to_dir(result.plan, to_dir)
        except CompoundError as error:
            raise fail(error) from None
        (errors if as_json else console).print(
            f"built and saved to {folder}: timm.create_model('local-dir:{folder}', pretrained=True)")
