"""The `timm-compound` Typer app and what every command shares: consoles, errors, argument parsers.

Each command group lives in its own module (`variants`, `demo`, `hub`, `cost`, `rules`) and
attaches its commands to `app` or `rules_app` here with a plain decorator;
`timm_compound.cli` imports them all.
"""

from __future__ import annotations

import typer
from rich.console import Console

from timm_compound.errors import CompoundError

app = typer.Typer(help="EfficientNet-style compound scaling for timm models.", no_args_is_help=True)
rules_app = typer.Typer(help="Work with rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

console = Console()
errors = Console(stderr=True)


def fail(error: Exception) -> typer.Exit:
    """Print `error: ...` to stderr (no traceback) and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
    return typer.Exit(1)


def parse_phis(text: str) -> list[float]:
    """'0-7' -> [0..7], '0,2,4' -> [0, 2, 4], '-1' -> [-1]; an empty or descending range is an error."""
    try:
        if "," in text:
            phis = [float(part) for part in text.split(",") if part.strip()]
        else:
            start, sep, stop = text.strip().partition("-") if not text.strip().startswith("-") else ("", "", "")
            phis = [float(phi) for phi in range(int(start), int(stop) + 1)] if sep and start and stop else [float(text)]
    except ValueError:
        raise CompoundError(f"--phi must look like 0-7 or 0,2,4, got {text!r}") from None
    if not phis:
        raise CompoundError(f"--phi {text!r} names no phi (a range goes low-high, e.g. 0-7)")
    return phis


def parse_coefficients(text: str | None) -> tuple[float, float, float] | None:
    """'1.2,1.1,1.15' -> (1.2, 1.1, 1.15)."""
    if text is None:
        return None
    try:
        alpha, beta, gamma = (float(part) for part in text.split(","))
    except ValueError:
        raise CompoundError(f"--coefficients must be alpha,beta,gamma, got {text!r}") from None
    return alpha, beta, gamma
