"""Command-line options generated from `TrainConfig`, so a setting is declared once.

`config_options(...)` adds one `--option` per config field to a typer command (help text and
default from the field, grouped in help panels); every generated option defaults to None, so the
command knows which settings were given on the command line (`given(...)`) and the rest stay the
config's (or the config file's, or the resumed run's) own.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Optional

import typer
from pydantic.fields import FieldInfo
from typer.core import TyperCommand

from timm_compound.train.config import PANELS, TrainConfig

_PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}


def flag(name: str) -> str:
    """The option spelling of a config field: lr_base_size -> --lr-base-size."""
    return "--" + name.replace("_", "-")


def _cli_type(annotation: Any) -> type:
    """bool, int or float where the field is one of those (or Optional), text otherwise (pydantic parses it)."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return annotation if annotation in (bool, int, float) else str


def _default_text(field: FieldInfo) -> str:
    default = field.default
    if default is None or "(default:" in (field.description or ""):
        return ""
    if isinstance(default, bool):
        return " (default: on)" if default else ""
    return f" (default: {default})"


def _parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    kind = _cli_type(field.annotation)
    help_text = (field.description or "") + _default_text(field)
    panel = _PANEL_OF.get(name, "Training")
    if kind is bool:
        option = typer.Option(
            f"{flag(name)}/--no-{name.replace('_', '-')}", help=help_text, rich_help_panel=panel, show_default=False
        )
    else:
        option = typer.Option(flag(name), help=help_text, rich_help_panel=panel, show_default=False)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[kind], option]
    )


def config_options(exclude: Iterable[str] = ()) -> Callable[[Callable], Callable]:
    """Decorate a command taking `**settings`: its signature gains an option per TrainConfig field."""
    skipped = set(exclude)

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        generated = [
            _parameter(name, field)
            for name, field in TrainConfig.model_fields.items()
            if name not in skipped and name not in signature.parameters
        ]
        command.__signature__ = signature.replace(parameters=own + generated)
        command.config_fields = tuple(p.name for p in generated)
        return command

    return decorate


def given(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (a generated option left out is None)."""
    return {name: value for name, value in settings.items() if value is not None}


def bare_values() -> dict[str, str]:
    """{--option: the value it takes when given alone} for the config fields that declare a `flag_value`
    (`--compile` alone means `--compile default`)."""
    found = {}
    for name, field in TrainConfig.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "flag_value" in extra:
            found[flag(name)] = extra["flag_value"]
    return found


def with_bare_values(args: list[str]) -> list[str]:
    """`args` with each optional-value option given alone (last, or followed by another option) followed
    by its bare value: click has no options whose value may be left out. A word after it is its value
    (a wrong one is refused by the config), so `--compile NAME` never swallows the model name silently."""
    bare, out = bare_values(), []
    for i, token in enumerate(args):
        out.append(token)
        if token == "--":
            return out + list(args[i + 1 :])
        following = args[i + 1] if i + 1 < len(args) else None
        if token in bare and (following is None or following.startswith("-")):
            out.append(bare[token])
    return out


class ConfigCommand(TyperCommand):
    """A command with generated config options: `--compile` may be given with or without its mode."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, with_bare_values(list(args)))
