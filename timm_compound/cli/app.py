"""The `timm-compound` Typer app and what every command shares: consoles, errors, argument parsers.

Each command group lives in its own module (`variants`, `demo`, `hub`, `cost`, `rules`) and
attaches its commands to `app` or `rules_app` here with a plain decorator;
`timm_compound.cli` imports them all.

The console script starts without torch (see ``timm_compound_cli``): the app's callbacks register
the variants and user rules (`ensure_registered`) before every command except `--help`,
`rules validate` and `rules schema`.

Every error, usage errors included, is one `error: ...` line on stderr and exit status 1
(`OneLineErrors`, `fail`); docs/cli.md states the convention.
"""

from __future__ import annotations

import math
import re
import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from timm_compound.errors import CompoundError
from timm_compound.train.config import DEFAULT_DATA as DEFAULT_DATA  # pydantic only, no torch: --help stays light

console = Console()
errors = Console(stderr=True)


def one_line(message: object) -> str:
    """A message on one line: its lines joined by '; ' ("invalid fields:" lists become 'a: ...; b: ...')."""
    lines = [" ".join(line.split()) for line in str(message).splitlines() if line.strip()]
    if not lines:
        return ""
    head, rest = lines[0], lines[1:]
    return head + (" " if head.endswith(":") else "; ") + "; ".join(rest) if rest else head


def say_error(message: object) -> None:
    """`error: ...` on stderr, as one line (no box, no traceback)."""
    errors.print(f"[bold red]error:[/] {escape(one_line(message))}", markup=True, highlight=False, soft_wrap=True)


def fail(error: Exception | str) -> typer.Exit:
    """Print `error: ...` to stderr as one line (no traceback) and return the exit to raise."""
    say_error(str(error))
    return typer.Exit(1)


def _click_exception(name: str) -> type[Exception]:
    """click's exception class `name` as this typer uses it (typer >= 0.20 vendors click as typer._click;
    typer.BadParameter is public and derives from UsageError and ClickException either way)."""
    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == name)


_ClickException, _UsageError = _click_exception("ClickException"), _click_exception("UsageError")


class OneLineErrors(TyperGroup):
    """The root command: a usage error (unknown option, missing argument, bad value) is one `error:` line
    and exit status 1, like every other error, instead of click's box and status 2. No arguments at all
    prints the help (status 0)."""

    def main(
        self, args=None, prog_name=None, complete_var=None, standalone_mode=True, windows_expand_args=True, **extra
    ):
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        try:
            code = super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        except _UsageError as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # `timm-compound` or `timm-compound rules` alone
                help_text = error.ctx.get_help()  # typer's rich help prints itself and returns ''
                if help_text:
                    console.print(help_text, markup=False, highlight=False)
                sys.exit(0)
            # the command as typed; the program is timm-compound however it was started (python -m, a test runner)
            path = " ".join(["timm-compound", *error.ctx.command_path.split()[1:]]) if error.ctx is not None else ""
            where = f" (see {path} --help)" if path else ""
            say_error(error.format_message().rstrip(".") + where)
            sys.exit(1)
        except _ClickException as error:
            say_error(error.format_message())
            sys.exit(1)
        except typer.Abort:
            say_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(help="EfficientNet-style compound scaling for timm models.", no_args_is_help=True, cls=OneLineErrors)
rules_app = typer.Typer(help="Work with rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


# Commands that need neither registered variants nor user rules: they start without torch or timm.
NO_REGISTRATION = {"validate", "schema"}
# Commands that register only when they must (`list` reads its rows from a cache when nothing changed)
REGISTER_THEMSELVES = {"list"}


def ensure_registered() -> None:
    """Register the shipped variants and TIMM_COMPOUND_RULES_PATH's files (once; see
    timm_compound.registry.startup): the console script leaves it to the commands that need it."""
    from timm_compound.registry.startup import ensure_registered as register

    try:
        register()
    except CompoundError as error:
        raise fail(error) from None


def _asks_for_help() -> bool:
    # click hands a group's callback no view of the subcommand's arguments; `timm-compound fit --help`
    # is read from the command line the console script was given
    return "--help" in sys.argv[1:]


@app.callback()
def _before_command(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in ("rules", *REGISTER_THEMSELVES) and not _asks_for_help():
        ensure_registered()


@rules_app.callback()
def _before_rules_command(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in NO_REGISTRATION and not _asks_for_help():
        ensure_registered()


MAX_PHIS = 1_000


def parse_phis(text: str) -> list[float]:
    """'0-7' -> [0..7], '0,2,4' -> [0, 2, 4], '-1' -> [-1], '-2-1' -> [-2..1]; an empty, descending or
    huge range is an error."""
    span = re.fullmatch(r"\s*(-?\d+)-(-?\d+)\s*", text)
    if span:
        start, stop = int(span[1]), int(span[2])
        if stop - start >= MAX_PHIS:
            raise CompoundError(f"--phi {text!r} names {stop - start + 1:,} phis; at most {MAX_PHIS:,} at once")
        phis = [float(phi) for phi in range(start, stop + 1)]
    else:
        try:
            phis = [float(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise CompoundError(f"--phi must look like 0-7 or 0,2,4, got {text!r}") from None
    if not all(math.isfinite(phi) for phi in phis):
        raise CompoundError(f"--phi must be finite numbers, got {text!r}")
    if not phis:
        raise CompoundError(f"--phi {text!r} names no phi (a range goes low-high, e.g. 0-7)")
    if len(phis) > MAX_PHIS:
        raise CompoundError(f"--phi {text!r} names {len(phis):,} phis; at most {MAX_PHIS:,} at once")
    return phis


def parse_alpha_beta_gamma(
    text: str | None, option: str, meaning: str, example: str
) -> tuple[float, float, float] | None:
    """'1.2,1.1,1.15' -> (1.2, 1.1, 1.15); `option`, `meaning` and `example` word the error."""
    if text is None:
        return None
    try:
        alpha, beta, gamma = (float(part) for part in text.split(","))
    except ValueError:
        raise CompoundError(f"{option} must be {meaning} such as {example}, got {text!r}") from None
    return alpha, beta, gamma


def parse_coefficients(text: str | None) -> tuple[float, float, float] | None:
    """--coefficients '1.2,1.1,1.15' -> (alpha, beta, gamma)."""
    return parse_alpha_beta_gamma(text, "--coefficients", "alpha,beta,gamma", "1.2,1.1,1.15")


def plan_or_name(name: str, phi: float | None):
    """NAME alone goes to the library as is (a registered variant or a timm name); a base with --phi
    becomes its plan. A registered variant with --phi is an error: its phi is part of its name."""
    if phi is None:
        return name
    from timm_compound.scaling.catalog import lookup
    from timm_compound.scaling.plan import plan

    base, registered_phi = lookup(name)
    if registered_phi is not None:
        raise CompoundError(f"{name} is registered at phi={registered_phi}; give its base to choose --phi")
    return plan(base, phi)
