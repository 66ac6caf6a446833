"""`timm-compound table` and `timm-compound fit`: measured costs on the command line."""

from __future__ import annotations

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
from timm_compound.cli.display import FormatOption, NormOption, check_format, emit, family_view, plan_table
from timm_compound.cli.measure import (
    Device,
    Dtype,
    MaxSeconds,
    NoCache,
    Runtime,
    Threads,
    shown_warnings,
    timing_options,
)
from timm_compound.errors import CompoundError


@app.command()
def table(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    phi: Annotated[str, typer.Option("--phi", help="Range 0-7 or list 0,2,4.")] = "0-7",
    coefficients: Annotated[Optional[str], typer.Option(help="alpha,beta,gamma (default: the rule's).")] = None,
    fmt: FormatOption = "table",
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG of GMACs and params vs phi.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size for MACs and training memory.")] = 1,
    train_memory: Annotated[bool, typer.Option("--train-memory", help="Estimate one SGD step's peak memory.")] = False,
    allow_oversize: Annotated[
        bool,
        typer.Option("--allow-oversize", help="Measure phis past the size limits (counted on the meta device; slow)."),
    ] = False,
    latency: Annotated[
        bool, typer.Option("--latency", help="Also time each phi here: ms, its 95% interval, img/s, ms per GMAC.")
    ] = False,
    device: Device = "cpu",
    threads: Threads = 1,
    dtype: Dtype = "float32",
    runtime: Runtime = "eager",
    no_cache: NoCache = False,
    max_seconds: MaxSeconds = None,
    norm: NormOption = None,
) -> None:
    """Measure a family over phi: params, GMACs, ratio to phi=0 beside the ideal, activations (and with
    --latency, timings on this machine)."""
    from timm_compound.cost.plot import check_plot_path, plot_table
    from timm_compound.cost.table import family_table
    from timm_compound.scaling.rulebook import active_rules

    try:
        check_format(fmt)
        if plot is not None:
            check_plot_path(plot)
        phis = parse_phis(phi)
        with shown_warnings():
            timing = _latency_settings(latency, device, batch_size, threads, dtype, runtime, no_cache, max_seconds)
            with Progress(
                *Progress.get_default_columns(),
                TimeElapsedColumn(),
                console=errors,
                transient=True,
                disable=not errors.is_terminal,
            ) as progress:
                task = progress.add_task(f"{'timing' if latency else 'measuring'} {base}", total=len(phis))
                rows = family_table(
                    base,
                    phis,
                    coefficients=parse_coefficients(coefficients),
                    batch_size=batch_size,
                    train_memory=train_memory,
                    latency=timing,
                    progress=lambda _: progress.advance(task),
                    allow_oversize=allow_oversize,
                    norm=norm,
                )
        fixed = active_rules().rule_for(base)[0].fixed()
    except CompoundError as error:
        raise fail(str(error).replace("allow_oversize=True", "--allow-oversize")) from None
    records = [row.to_dict() for row in rows]
    emit(
        family_view(base, rows, train_memory, compact=latency),
        fmt,
        console=console,
        records=records,
        notes=[f"{part} does not scale (the rule fixes it): {reason}" for part, reason in fixed.items()],
    )
    if plot is not None:
        try:
            plot_table(rows, plot, title=base)
        except (CompoundError, OSError) as error:
            raise fail(error) from None
        errors.print(f"wrote {plot}", markup=False, highlight=False, soft_wrap=True)


def _latency_settings(
    latency: bool,
    device: str,
    batch_size: int,
    threads: int,
    dtype: str,
    runtime: str,
    no_cache: bool,
    max_seconds: float | None,
):
    if not latency:
        return None
    from timm_compound.cost.latency import LatencySettings

    return LatencySettings.check(
        batch_size=batch_size, **timing_options(device, batch_size, threads, dtype, runtime, no_cache, max_seconds)
    )


@app.command()
def fit(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    max_gmacs: Annotated[Optional[float], typer.Option(help="GMACs budget (conv + linear).")] = None,
    max_params: Annotated[Optional[float], typer.Option(help="Parameter budget in millions.")] = None,
    max_train_memory: Annotated[Optional[float], typer.Option(help="Training-step memory budget in MiB.")] = None,
    max_latency_ms: Annotated[
        Optional[float],
        typer.Option(help="Median latency budget in ms, timed here (with --device, --threads, --batch-size)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size for the budgets.")] = 1,
    coefficients: Annotated[Optional[str], typer.Option(help="alpha,beta,gamma (default: the rule's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    fmt: FormatOption = "table",
    show: Annotated[bool, typer.Option("--show", help="Also print the full plan table.")] = False,
    to_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--to-dir", help="Build the fitted model and save it there (Hub layout, loadable with local-dir:)."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Let --to-dir write into a folder that is not empty.")
    ] = False,
    device: Device = "cpu",
    threads: Threads = 1,
    dtype: Dtype = "float32",
    runtime: Runtime = "eager",
    no_cache: NoCache = False,
    max_seconds: MaxSeconds = None,
) -> None:
    """Find the largest phi whose realised model meets every budget."""
    from timm_compound.cost.fit import fit as run_fit
    from timm_compound.hub.publish import check_output_dir

    try:
        fmt = check_format("json" if as_json else fmt)
        if to_dir is not None:
            check_output_dir(to_dir, overwrite=overwrite)
        measured = "timings taken" if max_latency_ms is not None else "plans measured"
        with (
            shown_warnings(),
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=errors,
                transient=True,
                disable=not errors.is_terminal,
            ) as progress,
        ):
            task = progress.add_task(f"fitting {base}")
            result = run_fit(
                base,
                max_gmacs=max_gmacs,
                max_params=max_params,
                max_train_memory=max_train_memory,
                max_latency_ms=max_latency_ms,
                batch_size=batch_size,
                coefficients=parse_coefficients(coefficients),
                progress=lambda n: progress.update(task, description=f"fitting {base}: {n} {measured}"),
                **timing_options(device, batch_size, threads, dtype, runtime, no_cache, max_seconds),
            )
    except CompoundError as error:
        raise fail(error) from None
    scaled = result.plan
    line = (
        f"{base}: phi {result.phi:.4f} (largest at its own resolution: {result.phi_max:.4f}), "
        f"{scaled.resolution} px ({scaled.resolution_source}), depths {scaled.depths}, widths {scaled.widths}"
        + ("" if result.fill == "none" else f"; the budget left over bought {result.fill}")
    )
    if fmt in ("table", "markdown"):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    summary = Table(title="achieved vs target")
    for column in ("budget", "target", "achieved", "ratio"):
        summary.add_column(column, justify="right" if column != "budget" else "left", overflow="fold")
    for budget in result.budgets:
        achieved = f"{budget.achieved:.4f} {budget.unit}"
        if budget.interval is not None:
            achieved = (
                f"{budget.achieved:.4g} {budget.unit} (95% interval {budget.interval[0]:.4g}-{budget.interval[1]:.4g})"
            )
        summary.add_row(budget.name, f"{budget.target:g} {budget.unit}", achieved, f"{budget.ratio:.4f}")
    records = [
        {
            "budget": b.name,
            "unit": b.unit,
            "target": b.target,
            "achieved": b.achieved,
            "ratio": b.ratio,
            **({} if b.interval is None else {"interval_low": b.interval[0], "interval_high": b.interval[1]}),
        }
        for b in result.budgets
    ]
    timed = (
        []
        if result.latency is None
        else [f"timed: {result.latency.describe()}; {result.timings} timings", result.certainty]
    )
    emit(
        [summary, *([plan_table(scaled)] if show else [])],
        fmt,
        console=console,
        records=records,
        data=result.to_dict(),
        notes=timed,
    )
    if to_dir is not None:
        from timm_compound.hub.publish import save_to_dir

        try:
            folder = save_to_dir(result.plan, to_dir, overwrite=overwrite)
        except CompoundError as error:
            raise fail(error) from None
        (console if fmt == "table" else errors).print(
            f"built and saved to {folder}: timm.create_model('local-dir:{folder}', pretrained=True)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
