"""`timm-compound search`: the grid search for alpha, beta, gamma as an Optuna study of proxy trainings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.progress import Progress
from rich.table import Table

from timm_compound.cli.app import DEFAULT_DATA, app, console, errors, fail, parse_alpha_beta_gamma
from timm_compound.cli.config_options import ConfigCommand, config_options, given
from timm_compound.cli.display import FormatOption, check_format, emit
from timm_compound.errors import CompoundError


def parse_bounds(text: str | None) -> tuple[float, float, float] | None:
    """'1.4,1.3,1.3' -> upper bounds for alpha, beta, gamma."""
    return parse_alpha_beta_gamma(text, "--bounds", "alpha,beta,gamma upper bounds", "1.4,1.3,1.3")


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "" if value is None else format(value, spec)


_KIND = {"grid": "grid", "depth": "depth", "width": "width", "resolution": "res", "current": "rule"}
_PLANNED = {"phi": "φ", "multipliers": "d/w/r", "fit": "fit"}  # how a candidate was planned (Candidate.planned_by)


def _stages(values: list[int]) -> str:
    return "·".join(str(v) for v in values)


def candidates_view(table) -> Table:
    """The candidates: coefficients, how each was planned, its stages, pixels and realised cost (80 columns)."""
    view = Table(
        title=f"{table.base} at phi={table.phi:g}: {len(table.keys)} candidates "
        f"(base {table.base_macs / 1e9:.3f} GMACs at {table.train_resolution} px)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    how = {c.planned_by for c in table.candidates.values()} != {"phi"}
    proxy = table.train_resolution != table.base_resolution
    columns = (
        ["α", "β", "γ", "kind", "nominal×"]
        + (["by"] if how else [])
        + ["depths", "widths", "px", "GMACs", "×base"]
        + (["×@rule"] if proxy else [])
    )
    for column in columns:
        view.add_column(column, justify="left" if column in ("kind", "by", "depths", "widths") else "right")
    for c in table.candidates.values():
        point = c.point
        view.add_row(
            f"{point.alpha:g}",
            f"{point.beta:.4g}",
            f"{point.gamma:.4g}",
            _KIND[point.kind],
            f"{c.nominal:.3f}",
            *([_PLANNED[c.planned_by]] if how else []),
            _stages(c.plan.depths),
            _stages(c.plan.widths),
            str(c.train_resolution),
            f"{c.macs / 1e9:.3f}",
            f"{c.ratio:.2f}",
            *([f"{c.ratio_native:.2f}"] if proxy else []),
        )
    return view


def results_view(result) -> Table:
    """Every candidate, best first: coefficients, realised cost, epochs run, state and top-1 (80 columns)."""
    view = Table(
        title=f"{result.base} on {result.data}: study {result.study_name!r}, {result.epochs_spent} epochs spent",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for column in (
        "#",
        "α",
        "β",
        "γ",
        "kind",
        "nominal×",
        "GMACs",
        "×base",
        "params M",
        "px",
        "epochs",
        "state",
        "top-1%",
    ):
        view.add_column(column, justify="left" if column in ("kind", "state") else "right")
    for rank, row in enumerate(result.rows, 1):
        state = row.state if row.shared_with is None else f"{row.state} (={row.shared_with})"
        view.add_row(
            str(rank),
            f"{row.alpha:g}",
            f"{row.beta:.4g}",
            f"{row.gamma:.4g}",
            _KIND[row.kind],
            f"{row.nominal:.3f}",
            f"{row.gmacs:.3f}",
            f"{row.ratio:.2f}",
            f"{row.params / 1e6:.2f}",
            str(row.train_resolution),
            str(row.epochs_run),
            state,
            _fmt(row.top1),
        )
    return view


@app.command("search", cls=ConfigCommand)
@config_options(exclude=("model", "phi", "data", "epochs", "resolution", "workers"))
def search_command(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    data: Annotated[
        str, typer.Option(help="builtin:digits, an image folder, torch/<name> or hfds/<name>.")
    ] = DEFAULT_DATA,
    out: Annotated[
        Optional[Path], typer.Option(help="Output folder: trials.csv, search.json, plane.png, gmacs.png, study.db.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs of each proxy training.")] = 5,
    phi: Annotated[float, typer.Option(help="The phi the candidates are planned at.")] = 1.0,
    flops_factor: Annotated[float, typer.Option(help="alpha*beta^2*gamma^2 target.")] = 2.0,
    tolerance: Annotated[float, typer.Option(help="Relative tolerance on the factor (0.05 = 5%).")] = 0.05,
    step: Annotated[float, typer.Option(help="Grid step for alpha, beta, gamma (from 1).")] = 0.05,
    bounds: Annotated[Optional[str], typer.Option(help="Upper bounds alpha,beta,gamma (default: 1.4,1.3,1.3).")] = None,
    sampler: Annotated[str, typer.Option(help="grid (every candidate) or tpe (--trials of them).")] = "grid",
    trials: Annotated[Optional[int], typer.Option(help="TPE: candidates to train (default: half).")] = None,
    pruner: Annotated[
        str,
        typer.Option(
            help="successive_halving (every candidate to epoch 1, the best third on to 3, 9, ...), asha (Optuna's asynchronous one), hyperband or none."
        ),
    ] = "successive_halving",
    match_cost: Annotated[
        bool, typer.Option("--match-cost", help="Fit every candidate to the same realised GMACs.")
    ] = False,
    resolution: Annotated[
        Optional[int],
        typer.Option(
            help="Train the base at this many pixels, each candidate at it times its r (default: the rule's)."
        ),
    ] = None,
    storage: Annotated[
        Optional[str],
        typer.Option(
            envvar="TIMM_COMPOUND_STORAGE",
            show_envvar=True,
            help="SQLAlchemy URL of the study (default: sqlite in --out).",
        ),
    ] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default: BASE-coefficients).")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    heartbeat: Annotated[
        int, typer.Option(help="Seconds between trial heartbeats; a trial silent for twice that is retried.")
    ] = 60,
    loader_workers: Annotated[Optional[int], typer.Option(help="Data loader processes per trial.")] = None,
    write_rule: Annotated[
        Optional[Path],
        typer.Option(
            help="Write the found coefficients as a user rule (replaces: the shipped family) into this folder; load it with TIMM_COMPOUND_RULES_PATH=DIR. Refused unless the winner is significantly better than the rule's current coefficients."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="--write-rule even when the winner is not significantly better than the current coefficients (or at chance level).",
        ),
    ] = False,
    keep_checkpoints: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoints",
            help="Keep the checkpoints of candidates stopped at a rung (default: only their metrics).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the candidates, planned and measured, and stop.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-trial lines.")] = False,
    fmt: FormatOption = "table",
    **settings: Any,
) -> None:
    """Search alpha, beta, gamma for BASE: proxy trainings of every candidate in an Optuna study (resumable)."""
    from timm_compound.search.api import candidates, check_workers, search
    from timm_compound.search.write_rule import replaced_architectures
    from timm_compound.search.write_rule import write_rule as write_rule_file

    try:
        check_format(fmt)
        check_workers(workers)  # refused alike with or without --dry-run
        grid = dict(
            phi=phi,
            flops_factor=flops_factor,
            tolerance=tolerance,
            step=step,
            bounds=parse_bounds(bounds),
            match_cost=match_cost,
            resolution=resolution,
        )
        if dry_run:
            with Progress(console=errors, transient=True, disable=not errors.is_terminal) as progress:
                task = progress.add_task(f"planning and measuring {base}'s candidates", total=None)
                table = candidates(base, progress=lambda n: progress.update(task, completed=n), **grid)
            records = [{"key": key, **c.attrs()} for key, c in table.candidates.items()]
            emit(candidates_view(table), fmt, console=console, records=records)
            return
        if out is None:
            raise CompoundError("give --out DIR, the search's output folder")
        human = fmt in ("table", "markdown")
        lines = console if human else errors  # csv and json keep stdout for the data
        say = (
            (lambda line: None)
            if quiet
            else (lambda line: lines.print(line, markup=False, highlight=False, soft_wrap=True))
        )
        result = search(
            base,
            data,
            epochs=epochs,
            sampler=sampler,
            trials=trials,
            pruner=pruner,
            storage=storage,
            study=study,
            workers=workers,
            out=out,
            heartbeat=heartbeat,
            say=say,
            loader_workers=loader_workers,
            keep_checkpoints=keep_checkpoints,
            **grid,
            **given(settings),
        )
        best = result.best
        confidence = result.confidence
        notes = []
        if best is None:
            notes.append("no candidate completed yet: re-run the same command to resume the study")
        elif confidence is not None and confidence.winner is not None and confidence.at_chance:
            notes.append(
                f"no winner: every candidate is at chance level (the highest top-1, {best.top1:.2f}% by "
                f"{best.key}, only leads by tie-breaks and noise)"
            )
        else:
            notes.append(
                f"best: alpha={best.alpha:g} beta={best.beta:.4g} gamma={best.gamma:.4g} ({best.kind}), top-1 "
                f"{best.top1:.2f}% at {best.gmacs:.3f} GMACs ({best.ratio:.2f}x base)"
            )
        if confidence is not None:
            notes += list(confidence.lines())
        if not result.complete:
            notes.append("the study is not complete (candidates failed or still running elsewhere): re-run to resume")
        notes.append(f"wrote {', '.join(str(path) for path in result.files.values())}")
        emit(
            results_view(result),
            fmt,
            console=console,
            records=[row.to_dict() for row in result.rows],
            data=result.to_dict(),
            notes=notes,
        )
        if write_rule is not None:
            path = write_rule_file(result, write_rule, force=force)
            lines.print(
                f"wrote {path}: use it with TIMM_COMPOUND_RULES_PATH={write_rule}; it replaces the "
                f"coefficients of {', '.join(replaced_architectures(result))}"
                + (
                    " (--force: the winner did not earn it by significance)"
                    if force and not (confidence is not None and confidence.better_than_current)
                    else ""
                ),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    except CompoundError as error:
        raise fail(error) from None
