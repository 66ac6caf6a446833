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
    files: Annotated[list[Path], typer.Argument(help="Rule or registry YAML files, in any order.", exists=False)],
) -> None:
    """Validate rule files (schema, that each constructor argument exists with the right shape, and
    that no shipped rule already covers an architecture unless the rule `replaces` it) and registry
    files (recognised by their `variants` key). Rules are checked first, so a registry file may use a
    rule named anywhere in the same call (`rules validate my-rules/*.yaml`)."""
    from timm_compound.authoring.validate import validate_files

    failed = False
    for path, kind, error in validate_files(files):
        if error is not None:
            errors.print(
                f"[bold red]invalid:[/] {escape(one_line(error))}", markup=True, highlight=False, soft_wrap=True
            )
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


@rules_app.command("show")
def rules_show(
    what: Annotated[str, typer.Argument(help="A rule file, or a base a loaded rule covers (resnet18).")],
) -> None:
    """Show a rule in words: how d, w and r reach the constructor, and what the rule fixes and why."""
    from timm_compound.authoring.describe import describe
    from timm_compound.scaling.rulebook import active_rules, load_rule

    try:
        path = Path(what)
        if path.suffix in (".yaml", ".yml") or path.exists():
            rule, source = load_rule(path), path
        else:
            rule, source = active_rules().rule_for(what)
    except CompoundError as error:
        raise fail(error) from None
    table = Table(title=f"rule {rule.family}", show_header=False)
    table.add_column("part", overflow="fold")
    table.add_column("how", overflow="fold")
    for part, how in describe(rule, source):
        table.add_row(part, how)
    console.print(table)


@rules_app.command("coverage")
def rules_coverage() -> None:
    """For every timm module of convolutional models (at least 8 Conv2d layers), whether a loaded rule
    (shipped or user) covers any of its architectures, with a total."""
    from timm_compound.authoring.coverage import CONVOLUTIONS, coverage

    with errors.status("building one model of each timm module on the meta device"):
        found = coverage()
    table = Table(title=f"timm modules of convolutional models (>= {CONVOLUTIONS} Conv2d layers)")
    for column in ("module", "covered", "architectures a rule covers", "rule families"):
        table.add_column(column, overflow="fold")
    for entry in found:
        table.add_row(
            entry.module, "yes" if entry.is_covered else "no", ", ".join(entry.covered), ", ".join(entry.families)
        )
    console.print(table)
    covered = sum(entry.is_covered for entry in found)
    console.print(f"covered: {covered} of {len(found)} convolutional timm modules", highlight=False)


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
        console.print(
            f"wrote {output}; next: timm-compound rules check {output}", markup=False, highlight=False, soft_wrap=True
        )


@rules_app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(help="A rule file.")],
    phi: Annotated[str, typer.Option("--phi", help="Phis to build: a range 0-3 or a list 0,1,3.")] = "0-3",
    fmt: FormatOption = "table",
) -> None:
    """Validate a rule, rebuild phi=0 against the base exactly, build each phi and each single-dimension
    strategy (at the largest phi) on the meta device, read every build back against its plan, and print
    each one's cost ratios; a build that fails says which width or resolution divisor would work."""
    from timm_compound.authoring.check import check_rule

    try:
        check_format(fmt)
        result = check_rule(file, parse_phis(phi))
    except CompoundError as error:
        raise fail(error) from None
    table = Table(title=f"rules check {file}")  # "ideal ×" is d·w²·r², r held at a resolution cap
    for column in (
        "architecture",
        "phi",
        "strategy",
        "depths",
        "widths",
        "px",
        "params",
        "params ×",
        "MACs ×",
        "ideal ×",
        "note",
    ):
        table.add_column(column, overflow="fold")
    records = []
    for row in result.rows:
        table.add_row(
            row.arch,
            f"{row.phi:g}",
            row.strategy,
            str(row.plan.depths),
            str(row.plan.widths),
            str(row.plan.resolution),
            f"{row.params:,}",
            f"{row.params_ratio:.2f}",
            f"{row.macs_ratio:.2f}",
            f"{row.ideal:.2f}",
            row.flag or "",
        )
        records.append(
            {
                "architecture": row.arch,
                "phi": row.phi,
                "strategy": row.strategy,
                "depths": row.plan.depths,
                "widths": row.plan.widths,
                "resolution": row.plan.resolution,
                "params": row.params,
                "params_ratio": row.params_ratio,
                "macs_ratio": row.macs_ratio,
                "ideal": row.ideal,
                "note": row.flag or "",
            }
        )
    emit(table, fmt, console=console, records=records)
    human = fmt in ("table", "markdown")
    for note in result.notes:
        (console if human else errors).print(
            f"[yellow]note:[/] {escape(note)}", markup=True, highlight=False, soft_wrap=True
        )
    for failure in result.failures:
        errors.print(f"[bold red]fail:[/] {escape(failure)}", markup=True, highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)
    counted = (
        ""
        if any(row.plan.rule.stage_modules is not None for row in result.rows)
        else " (blocks per stage not checked: no stage_modules)"
    )
    (console if human else errors).print(
        f"[green]ok[/]: phi=0 equals the base for {', '.join(sorted({r.arch for r in result.rows}))}{counted}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
