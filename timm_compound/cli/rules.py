"""`timm-compound rules ...`: validate, print the schema of, scaffold and check rule files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from timm_compound.cli.app import console, errors, fail, one_line, parse_phis, rules_app
from timm_compound.cli.display import FormatOption, check_format, emit
from timm_compound.errors import CompoundError


@rules_app.command("validate")
def rules_validate(
    files: Annotated[list[Path], typer.Argument(help="Rule or registry YAML files.", exists=False)],
) -> None:
    """Validate rule files (schema, that each constructor argument exists with the right shape, and
    that no shipped rule already covers an architecture unless the rule `replaces` it) and registry
    files (recognised by their `variants` key)."""
    from timm_compound.authoring.validate import validate_file

    from timm_compound.scaling.rulebook import load_rule

    failed, rules = False, []
    for path in files:   # a registry file may use a rule validated before it in the same call
        try:
            kind = validate_file(path, rules)
            if kind == "rule":
                rules.append((load_rule(path), path))
        except CompoundError as error:
            errors.print(f"[bold red]invalid:[/] {escape(one_line(error))}", markup=True,
                         highlight=False, soft_wrap=True)
            failed = True
        else:
            console.print(f"[green]valid[/] {kind}: {escape(str(path))}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@rules_app.command("schema")
def rules_schema(
    registry: Annotated[bool, typer.Option("--registry", help="The registry-file schema instead.")] = False,
) -> None:
    """Print the JSON Schema for rule files (or registry files), for editors and validators."""
    from timm_compound.scaling.rulebook import json_schema

    print(json.dumps(json_schema("registry" if registry else "rule"), indent=2))


@rules_app.command("new")
def rules_new(
    arch: Annotated[str, typer.Argument(help="A timm architecture, e.g. convnext_tiny.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Write a starting rule for a timm architecture, found by inspecting its constructor."""
    from timm_compound.authoring.scaffold import scaffold

    try:
        text = scaffold(arch)
    except CompoundError as error:
        raise fail(error) from None
    if output is None:
        print(text, end="")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        console.print(f"wrote {output}; next: timm-compound rules check {output}", markup=False, highlight=False,
                      soft_wrap=True)


@rules_app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(help="A rule file.")],
    phi: Annotated[str, typer.Option("--phi", help="Phis to build: a range 0-2 or a list 0,1,3.")] = "0-2",
    fmt: FormatOption = "table",
) -> None:
    """Validate a rule, rebuild phi=0 against the base exactly, and print each phi's cost ratios."""
    from timm_compound.authoring.check import check_rule

    try:
        check_format(fmt)
        result = check_rule(file, parse_phis(phi))
    except CompoundError as error:
        raise fail(error) from None
    table = Table(title=f"rules check {file}")  # "ideal ×" is d·w²·r², r held at a resolution cap
    for column in ("architecture", "phi", "depths", "widths", "px", "params", "params ×", "MACs ×", "ideal ×", "note"):
        table.add_column(column, overflow="fold")
    records = []
    for row in result.rows:
        table.add_row(row.arch, f"{row.phi:g}", str(row.plan.depths), str(row.plan.widths), str(row.plan.resolution),
                      f"{row.params:,}", f"{row.params_ratio:.2f}", f"{row.macs_ratio:.2f}", f"{row.ideal:.2f}", row.flag or "")
        records.append({"architecture": row.arch, "phi": row.phi, "depths": row.plan.depths, "widths": row.plan.widths,
                        "resolution": row.plan.resolution, "params": row.params, "params_ratio": row.params_ratio,
                        "macs_ratio": row.macs_ratio, "ideal": row.ideal, "note": row.flag or ""})
    emit(table, fmt, console=console, records=records)
    human = fmt in ("table", "markdown")
    for note in result.notes:
        (console if human else errors).print(f"[yellow]note:[/] {escape(note)}", markup=True, highlight=False,
                                             soft_wrap=True)
    for failure in result.failures:
        errors.print(f"[bold red]fail:[/] {escape(failure)}", markup=True, highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)
    counted = "" if any(row.plan.rule.stage_modules is not None for row in result.rows) else \
        " (blocks per stage not checked: no stage_modules)"
    (console if human else errors).print(
        f"[green]ok[/]: phi=0 equals the base for {', '.join(sorted({r.arch for r in result.rows}))}{counted}",
        markup=True, highlight=False, soft_wrap=True)
