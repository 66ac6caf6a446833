"""What the CLI prints: rich tables for plans and variant lists, and `emit`, the one way every table
command writes its output.

`emit(tables, fmt, console=...)` takes the command's rich `Table`s and its `--format`:

- `table`: on a terminal, the rich tables (long cells fold onto more lines, nothing is cut); when
  stdout is not a terminal (a pipe, a file), the same tables at their full natural width, without
  colour, so every number stays whole on one line whatever COLUMNS says;
- `csv` / `json`: the command's machine-readable records (`records`, `data`), or else the first
  table's cells keyed by its column headers;
- `markdown`: each table as a GitHub-flavoured markdown table under its title.

`FormatOption` is the `--format` option every table command declares (`fmt: FormatOption = "table"`).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from timm_compound.errors import CompoundError

FORMATS = ("table", "csv", "json", "markdown")
NormOption = Annotated[
    Optional[str],
    typer.Option(
        "--norm",
        help="Norm layers: batch (the model's own), group, layer, proxy or proxy-layer (families whose rule "
        "has a norm section; see docs/norm.md).",
    ),
]
FormatOption = Annotated[
    str, typer.Option("--format", help="table (full width and plain when not a terminal), csv, json or markdown.")
]


def check_format(fmt: str) -> str:
    """`fmt` if it is one of FORMATS; a CompoundError naming the option otherwise."""
    if fmt not in FORMATS:
        raise CompoundError(f"--format must be {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, got {fmt!r}")
    return fmt


def _plain(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def cells(table: Table) -> tuple[list[str], list[list[str]]]:
    """(column headers, rows of cells) of a rich table, as plain text."""
    headers = [_plain(column.header) for column in table.columns]
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    return headers, [list(row) for row in zip(*columns)]


def _markdown(table: Table) -> str:
    headers, rows = cells(table)
    escape = lambda text: text.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    right = [column.justify == "right" for column in table.columns]
    lines = [f"### {_plain(table.title)}", ""] if table.title else []
    lines.append("| " + " | ".join(escape(h) for h in headers) + " |")
    lines.append("|" + "|".join("--:" if r else "---" for r in right) + "|")
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _records(table: Table) -> list[dict[str, str]]:
    headers, rows = cells(table)
    return [dict(zip(headers, row)) for row in rows]


def print_table(table: Table, console: Console) -> None:
    """A rich table on `console`: as it is on a terminal; at its full natural width, plain, otherwise."""
    if console.is_terminal:
        console.print(table)
        return
    measuring = Console(width=100_000, no_color=True, force_terminal=False, highlight=False)
    width = max(measuring.measure(table).maximum, len(_plain(table.title or "")), 20)
    wide = Console(
        file=console.file,
        width=width,
        no_color=True,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
    )
    wide.print(table)


def emit(
    tables: Table | Sequence[Table],
    fmt: str = "table",
    *,
    console: Console,
    records: list[dict[str, Any]] | None = None,
    data: Any = None,
    notes: Sequence[str] = (),
) -> None:
    """Print a command's tables in `fmt` (see the module docstring). `records`: the rows for csv (and json);
    `data`: what json prints when it is not the records; `notes`: plain lines after the tables (table and
    markdown), or on stderr for csv and json, so stdout stays data a script can parse."""
    check_format(fmt)
    tables = [tables] if isinstance(tables, Table) else list(tables)
    out = console.file
    if fmt == "table":
        for table in tables:
            print_table(table, console)
        for note in notes:
            console.print(note, markup=False, highlight=False, soft_wrap=True)
    elif fmt == "markdown":
        out.write("\n".join(_markdown(table) for table in tables))
        for note in notes:
            out.write(f"\n{note}\n")
    elif fmt == "json":
        value = data if data is not None else records if records is not None else _records(tables[0])
        out.write(json.dumps(value, indent=2) + "\n")
    else:
        rows = records if records is not None else _records(tables[0])
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: _csv_value(value) for key, value in row.items()} for row in rows)
        out.write(buffer.getvalue())
    out.flush()
    if fmt in ("csv", "json"):
        for note in notes:
            sys.stderr.write(f"{note}\n")


def _csv_value(value: Any) -> Any:
    """Lists and dicts in a CSV cell as JSON (depths [2, 2, 2, 2]), everything else as csv writes it."""
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else value


# ---------------------------------------------------------------- the tables of plans and families


def _pair(base, scaled) -> str:
    if base is None and scaled is None:
        return "derived by timm"
    return str(scaled) if base == scaled else f"{base} → {scaled}"


def plan_table(plan, title: str | None = None) -> Table:
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
        "r (resolution)",
        f"{mult.resolution:.4f}",
        f"{real.resolution:.4f}",
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


def _resolution(plan) -> str:
    """Where the input size came from: requested by the caller, or r applied and rounded (or capped)."""
    if plan.resolution_source == "override":
        return (
            f"{plan.base_resolution} → {plan.resolution} px (requested; r alone would give {plan.resolution_exact:.1f})"
        )
    return (
        f"{plan.base_resolution} → {plan.resolution} px ({plan.resolution_source}, exact {plan.resolution_exact:.1f})"
    )


def family_view(base: str, rows, train_memory: bool = False, compact: bool = False) -> Table:
    """A family table (timm_compound.table.family_table rows): exact vs realised, cost vs the ideal.

    `compact` keeps what fits 80 columns: phi, input size, depths, params, GMACs and the ratios.
    """
    table = Table(title=f"{base}: realised cost per phi (MACs = conv + linear)")
    wide = not compact
    columns = (
        ["φ"]
        + (["d (exact/real)", "w (exact/real)", "r (exact/real)"] if wide else [])
        + ["px", "depths", "params M", "GMACs", "× φ=0", "ideal ×"]
        + (["activations"] if wide else [])
        + (["train MiB"] if train_memory else [])
    )
    timed = bool(rows) and rows[0].latency_ms is not None
    if timed:
        columns += ["ms", "95% interval", "img/s", "ms/GMAC"]
        first = rows[0]
        threads = f"{first.threads} thread" + ("s" if first.threads != 1 else "")
        table.caption = (
            f"timed on {first.device}, {threads}, batch {first.latency_batch_size}, {first.dtype}, "
            f"{first.runtime}: ms is the median of blocks of runs, with its 95% interval"
            + (
                "; * stopped by the time cap before the interval was within 3%"
                if any(not row.latency_converged for row in rows)
                else ""
            )
        )
    for column in columns:
        table.add_column(column, justify="left" if column == "depths" else "right", overflow="fold")
    for row in rows:
        cells_ = [f"{row.phi:g}"]
        if wide:
            cells_ += [
                f"{row.d:.3f}/{row.d_realised:.3f}",
                f"{row.w:.3f}/{row.w_realised:.3f}",
                f"{row.r:.3f}/{row.r_realised:.3f}",
            ]
        cells_ += [
            str(row.resolution),
            str(row.depths),
            f"{row.mparams:.2f}",
            f"{row.gmacs:.3f}",
            f"{row.ratio:.2f}",
            f"{row.ideal:.2f}",
        ]
        if wide:
            cells_.append(f"{row.activations:,}")
        if train_memory:
            cells_.append(f"{row.train_memory_mib:.0f}")
        if timed:
            cells_ += [
                f"{row.latency_ms:.4g}" + ("" if row.latency_converged else "*"),
                f"{row.latency_low_ms:.4g}-{row.latency_high_ms:.4g}",
                f"{row.throughput:.4g}",
                f"{row.ms_per_gmac:.4g}" if row.ms_per_gmac is not None else "–",
            ]
        table.add_row(*cells_)
    return table
