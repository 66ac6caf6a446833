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
from timm_compound.cli.display import FormatOption, check_format, emit, family_view, plan_table
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
    allow_oversize: Annotated[bool, typer.Option(
        "--allow-oversize", help="Measure phis past the size limits (counted on the meta device; slow).")] = False,
) -> None:
    """Measure a family over phi: params, GMACs, ratio to phi=0 beside the ideal, activations."""
    from timm_compound.cost.plot import check_plot_path, plot_table
    from timm_compound.cost.table import family_table

    try:
        check_format(fmt)
        if plot is not None:
            check_plot_path(plot)
        phis = parse_phis(phi)
        with Progress(console=errors, transient=True, disable=not errors.is_terminal) as progress:
            task = progress.add_task(f"measuring {base}", total=len(phis))
            rows = family_table(
                base, phis, coefficients=parse_coefficients(coefficients), batch_size=batch_size,
                train_memory=train_memory, progress=lambda _: progress.advance(task), allow_oversize=allow_oversize,
            )
    except CompoundError as error:
        raise fail(str(error).replace("allow_oversize=True", "--allow-oversize")) from None
    records = [row.to_dict() for row in rows]
    emit(family_view(base, rows, train_memory), fmt, console=console, records=records)
    if plot is not None:
        try:
            plot_table(rows, plot, title=base)
        except (CompoundError, OSError) as error:
            raise fail(error) from None
        errors.print(f"wrote {plot}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def fit(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    max_gmacs: Annotated[Optional[float], typer.Option(help="GMACs budget (conv + linear).")] = None,
    max_params: Annotated[Optional[float], typer.Option(help="Parameter budget in millions.")] = None,
    max_train_memory: Annotated[Optional[float], typer.Option(help="Training-step memory budget in MiB.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size for the budgets.")] = 1,
    coefficients: Annotated[Optional[str], typer.Option(help="alpha,beta,gamma (default: the rule's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    fmt: FormatOption = "table",
    show: Annotated[bool, typer.Option("--show", help="Also print the full plan table.")] = False,
    to_dir: Annotated[Optional[Path], typer.Option(
        "--to-dir", help="Build the fitted model and save it there (Hub layout, loadable with local-dir:).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Let --to-dir write into a folder that is not empty.")] = False,
) -> None:
    """Find the largest phi whose realised model meets every budget."""
    from timm_compound.cost.fit import fit as run_fit
    from timm_compound.hub.publish import check_output_dir

    try:
        fmt = check_format("json" if as_json else fmt)
        if to_dir is not None:
            check_output_dir(to_dir, overwrite=overwrite)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=errors, transient=True, disable=not errors.is_terminal) as progress:
            task = progress.add_task(f"fitting {base}")
            result = run_fit(
                base, max_gmacs=max_gmacs, max_params=max_params, max_train_memory=max_train_memory,
                batch_size=batch_size, coefficients=parse_coefficients(coefficients),
                progress=lambda n: progress.update(task, description=f"fitting {base}: {n} plans measured"),
            )
    except CompoundError as error:
        raise fail(error) from None
    scaled = result.plan
    line = (f"{base}: phi {result.phi:.4f} (largest at its own resolution: {result.phi_max:.4f}), "
            f"{scaled.resolution} px ({scaled.resolution_source}), depths {scaled.depths}, widths {scaled.widths}"
            + ("" if result.fill == "none" else f"; the budget left over bought {result.fill}"))
    if fmt in ("table", "markdown"):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    summary = Table(title="achieved vs target")
    for column in ("budget", "target", "achieved", "ratio"):
        summary.add_column(column, justify="right" if column != "budget" else "left", overflow="fold")
    for budget in result.budgets:
        summary.add_row(budget.name, f"{budget.target:g} {budget.unit}", f"{budget.achieved:.4f} {budget.unit}",
                        f"{budget.ratio:.4f}")
    records = [{"budget": b.name, "unit": b.unit, "target": b.target, "achieved": b.achieved, "ratio": b.ratio}
               for b in result.budgets]
    emit([summary, *([plan_table(scaled)] if show else [])], fmt, console=console, records=records,
         data=result.to_dict())
    if to_dir is not None:
        from timm_compound.hub.publish import save_to_dir

        try:
            folder = save_to_dir(result.plan, to_dir, overwrite=overwrite)
        except CompoundError as error:
            raise fail(error) from None
        (console if fmt == "table" else errors).print(
            f"built and saved to {folder}: timm.create_model('local-dir:{folder}', pretrained=True)",
            markup=False, highlight=False, soft_wrap=True)
