"""`timm-compound list` and `timm-compound show`: the registered variants and their plans."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from timm_compound.cli.app import app, console, fail
from timm_compound.errors import CompoundError


@app.command("list")
def list_variants() -> None:
    """List the registered variants (timm model names) with their input size."""
    import timm

    from timm_compound.scaling.catalog import registered

    variants = registered().values()
    table = Table(title="timm-compound registered variants")
    longest = max((len(variant.name) for variant in variants), default=4)
    table.add_column("name", no_wrap=True, min_width=longest)   # a name is what users copy: never cut
    for column in ("base", "phi", "input size", "weights"):
        table.add_column(column, overflow="fold")
    for variant in variants:
        size = timm.models.get_pretrained_cfg(variant.name).input_size
        table.add_row(variant.name, variant.base, str(variant.phi), f"{size[-1]}", variant.hf_hub_id or "—")
    console.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="A registered variant (resnet18_cs_phi2) or a base (resnet18).")],
    phi: Annotated[Optional[float], typer.Option("--phi", help="Compound coefficient; negative scales down.")] = None,
    d: Annotated[Optional[float], typer.Option("--d", help="Explicit depth multiplier.")] = None,
    w: Annotated[Optional[float], typer.Option("--w", help="Explicit width multiplier.")] = None,
    r: Annotated[Optional[float], typer.Option("--r", help="Explicit resolution multiplier.")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Override the input size in pixels.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show the scaling plan for a variant or a base."""
    from timm_compound.cli.display import plan_table
    from timm_compound.scaling.catalog import lookup
    from timm_compound.scaling.plan import plan

    try:
        base, registered_phi = lookup(name)
        if registered_phi is not None and any(v is not None for v in (phi, d, w, r)):
            raise CompoundError(f"{name} is registered at phi={registered_phi}; give its base to choose phi or d/w/r")
        if registered_phi is not None:
            phi = registered_phi
        elif phi is None and all(v is None for v in (d, w, r)):
            phi = 0
        scaled = plan(base, phi, d=d, w=w, r=r, resolution=resolution)
    except CompoundError as error:
        raise fail(error) from None
    if as_json:
        print(json.dumps(scaled.to_dict(), indent=2))
    else:
        console.print(plan_table(scaled))
