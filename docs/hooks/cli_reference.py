"""mkdocs hooks: pages generated when the site builds, so they cannot drift.

- `reference/cli.md`: the command-line reference, from the Typer app itself (the same commands, options,
  defaults and help as `--help`; tests/test_docs_site.py checks every one is there);
- `index.md`: the README, the site's quickstart, its links into docs/ made site links.
"""

from __future__ import annotations

from typing import Any


def _commands(group: Any, prefix: str = "timm-compound"):
    """(full name, click command) for every command, depth first, in the order --help lists them."""
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        full = f"{prefix} {name}"
        if hasattr(command, "commands"):
            yield full, command
            yield from _commands(command, full)
        else:
            yield full, command


def _cell(text: Any) -> str:
    """One table cell: one line, pipes escaped, rich's escaped brackets shown as brackets."""
    return " ".join(str(text).split()).replace("\\[", "[").replace("|", "\\|")


def _option(param: Any) -> tuple[str, str, str, str]:
    names = " / ".join(f"`{name}`" for name in [*param.opts, *getattr(param, "secondary_opts", [])])
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    kind = getattr(kind, "__name__", None) or str(kind or "").replace("typing.", "")
    default = param.default
    shown = "" if default in (None, False) or callable(default) else f"`{default}`"
    return names, _cell(kind), shown, _cell(param.help or "")


def render() -> str:
    import typer.main

    import timm_compound_cli

    timm_compound_cli.CLI_RUN = True  # as the console script: no variants registered, no torch
    from timm_compound.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the `timm-compound` command line itself when this site is built: the same "
        "commands, options, defaults and help as `timm-compound COMMAND --help`.",
        "",
    ]
    for full, command in _commands(root):
        lines += [f"## `{full}`", "", _cell(command.help or "").replace(" \\| ", " | "), ""]
        if hasattr(command, "commands"):
            lines += ["Subcommands: " + ", ".join(f"`{full} {name}`" for name in command.commands), ""]
            continue
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        options = [p for p in command.params if p.param_type_name == "option"]
        if arguments:
            lines += ["| argument | type | help |", "|---|---|---|"]
            lines += [f"| `{p.name.upper()}` | {_option(p)[1]} | {_option(p)[3]} |" for p in arguments]
            lines.append("")
        panels: dict[str, list[Any]] = {}
        for param in options:
            panels.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(param)
        for panel, params in panels.items():
            lines += [f"**{panel}**", "", "| option | type | default | help |", "|---|---|---|---|"]
            lines += ["| " + " | ".join(_option(p)) + " |" for p in params]
            lines.append("")
    return "\n".join(lines) + "\n"


def quickstart(readme: str) -> str:
    """The README as the site's first page: links into docs/ point at the pages beside it."""
    return readme.replace("](docs/", "](")


def on_files(files, config):
    from pathlib import Path

    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).parent
    files.append(File.generated(config, "reference/cli.md", content=render()))
    files.append(
        File.generated(config, "index.md", content=quickstart((root / "README.md").read_text(encoding="utf-8")))
    )
    return files
