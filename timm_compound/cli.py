"""The `timm-compound` command line: list, show, rules validate, demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from timm_compound.cli_common import console, errors, fail as _fail, parse_phis
from timm_compound.errors import CompoundError

app = typer.Typer(help="EfficientNet-style compound scaling for timm models.", no_args_is_help=True)
rules_app = typer.Typer(help="Work with rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@app.command("list")
def list_variants() -> None:
    """List the registered variants (timm model names) with their input size."""
    import timm

    from timm_compound import registered

    table = Table(title="timm-compound registered variants")
    for column in ("name", "base", "phi", "input size", "weights"):
        table.add_column(column)
    for variant in registered().values():
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
    from timm_compound.display import plan_table
    from timm_compound.plan import lookup, plan

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
        raise _fail(error) from None
    if as_json:
        print(json.dumps(scaled.to_dict(), indent=2))
    else:
        console.print(plan_table(scaled))


@rules_app.command("validate")
def rules_validate(
    files: Annotated[list[Path], typer.Argument(help="Rule or registry YAML files.", exists=False)],
) -> None:
    """Validate rule files (schema, and that each constructor argument exists with the right shape)
    and registry files (recognised by their `variants` key)."""
    from timm_compound.plan import check_resolves
    from timm_compound.rulebook import RuleBook, load_registry, load_rule, read_yaml

    failed = False
    for path in files:
        try:
            is_registry = "variants" in read_yaml(path)
            if is_registry:
                load_registry(path)
            else:
                rule, book = load_rule(path), RuleBook()
                book.add(rule, path)
                check_resolves(rule, book)
        except CompoundError as error:
            errors.print(f"[bold red]invalid:[/] {error}", markup=True, highlight=False)
            failed = True
        else:
            console.print(f"[green]valid[/] {'registry' if is_registry else 'rule'}: {path}")
    if failed:
        raise typer.Exit(1)


@rules_app.command("schema")
def rules_schema(
    registry: Annotated[bool, typer.Option("--registry", help="The registry-file schema instead.")] = False,
) -> None:
    """Print the JSON Schema for rule files (or registry files), for editors and validators."""
    from timm_compound.schema import json_schema

    print(json.dumps(json_schema("registry" if registry else "rule"), indent=2))


@rules_app.command("new")
def rules_new(
    arch: Annotated[str, typer.Argument(help="A timm architecture, e.g. convnext_tiny.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Write a starting rule for a timm architecture, found by inspecting its constructor."""
    from timm_compound.scaffold import scaffold

    try:
        text = scaffold(arch)
    except CompoundError as error:
        raise _fail(error) from None
    if output is None:
        print(text, end="")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        console.print(f"wrote {output}; next: timm-compound rules check {output}")


@rules_app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(help="A rule file.")],
    phi: Annotated[str, typer.Option("--phi", help="Phis to build: a range 0-2 or a list 0,1,3.")] = "0-2",
) -> None:
    """Validate a rule, rebuild phi=0 against the base exactly, and print each phi's cost ratios."""
    from timm_compound.rule_check import check_rule

    try:
        result = check_rule(file, parse_phis(phi))
    except CompoundError as error:
        raise _fail(error) from None
    table = Table(title=f"rules check {file}")
    for column in ("architecture", "phi", "depths", "widths", "px", "params", "params ×", "MACs ×", "ideal ×", "note"):
        table.add_column(column)
    for row in result.rows:
        table.add_row(row.arch, f"{row.phi:g}", str(row.plan.depths), str(row.plan.widths), str(row.plan.resolution),
                      f"{row.params:,}", f"{row.params_ratio:.2f}", f"{row.macs_ratio:.2f}", f"{row.ideal:.2f}", row.flag or "")
    console.print(table)
    for failure in result.failures:
        errors.print(f"[bold red]fail:[/] {failure}", markup=True, highlight=False)
    if not result.ok:
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: phi=0 equals the base for {', '.join(sorted({r.arch for r in result.rows}))}")


@app.command()
def demo(
    names: Annotated[Optional[list[str]], typer.Argument(help="Registered variants to build.")] = None,
) -> None:
    """Build a few registered variants, print their plans and sizes, run a forward pass at each one's resolution."""
    from timm_compound.demo import run

    try:
        run(names or None, console)
    except CompoundError as error:
        raise _fail(error) from None


def main() -> None:  # pragma: no cover - console entry for `python -m timm_compound`
    app()

from timm_compound import cli_hub, cli_measure  # noqa: E402  (their commands join this app)

cli_hub.register(app)
cli_measure.register(app)
