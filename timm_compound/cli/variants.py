"""`timm-compound list` and `timm-compound show`: the registered variants and their plans."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from timm_compound.cli.app import app, console, fail
from timm_compound.cli.display import FormatOption, check_format, emit, plan_table
from timm_compound.errors import CompoundError


@app.command("list")
def list_variants(fmt: FormatOption = "table") -> None:
    """List the registered variants (timm model names) with their input size."""
    from timm_compound.registry.listing import variant_rows

    try:
        check_format(fmt)
        rows = variant_rows()  # from a cache when nothing changed: no torch import
    except CompoundError as error:
        raise fail(error) from None
    table = Table(title="timm-compound registered variants")
    longest = max((len(row["name"]) for row in rows), default=4)
    table.add_column("name", no_wrap=True, min_width=longest)  # a name is what users copy: never cut
    for column in ("base", "phi", "input size", "weights"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["base"], str(row["phi"]), str(row["input_size"]), row["weights"] or "—")
    emit(table, fmt, console=console, records=rows)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="A registered variant (resnet18_cs_phi2) or a base (resnet18).")],
    phi: Annotated[Optional[float], typer.Option("--phi", help="Compound coefficient; negative scales down.")] = None,
    d: Annotated[Optional[float], typer.Option("--d", help="Explicit depth multiplier.")] = None,
    w: Annotated[Optional[float], typer.Option("--w", help="Explicit width multiplier.")] = None,
    r: Annotated[Optional[float], typer.Option("--r", help="Explicit resolution multiplier.")] = None,
    resolution: Annotated[
        Optional[int], typer.Option(help="Override the input size in pixels (default: the plan's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    fmt: FormatOption = "table",
    allow_oversize: Annotated[
        bool, typer.Option("--allow-oversize", help="Plan past the size limits (10,000 blocks in a stage, 8,192 px).")
    ] = False,
) -> None:
    """Show the scaling plan for a variant or a base."""
    from timm_compound.scaling.catalog import lookup
    from timm_compound.scaling.plan import plan

    try:
        fmt = check_format("json" if as_json else fmt)
        base, registered_phi = lookup(name)
        if registered_phi is not None and any(v is not None for v in (phi, d, w, r)):
            raise CompoundError(f"{name} is registered at phi={registered_phi}; give its base to choose phi or d/w/r")
        if registered_phi is not None:
            phi = registered_phi
        elif phi is None and all(v is None for v in (d, w, r)):
            phi = 0
        scaled = plan(base, phi, d=d, w=w, r=r, resolution=resolution, allow_oversize=allow_oversize)
    except CompoundError as error:
        raise fail(str(error).replace("allow_oversize=True", "--allow-oversize")) from None
    emit(plan_table(scaled), fmt, console=console, data=scaled.to_dict())
