"""The documentation site: the command-line reference (generated when the site builds) names every command
and option that `--help` shows, every page in the navigation exists and says something, and the README
(the site's first page) keeps its two set-up commands first."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

import cli_reference  # noqa: E402  (the mkdocs hook, imported as the site build imports it)


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_cli_reference_lists_every_command_and_option():
    import typer.main

    from timm_compound.cli import app

    reference = cli_reference.render()
    commands = list(cli_reference._commands(typer.main.get_command(app)))
    assert len(commands) >= 20
    for full, command in commands:
        assert f"## `{full}`" in reference, full
        section = reference.split(f"## `{full}`", 1)[1].split("\n## ", 1)[0]
        for param in getattr(command, "params", []):
            if param.param_type_name == "option":
                for name in param.opts:
                    assert f"`{name}`" in section, f"{full} {name}"
            else:
                assert f"`{param.name.upper()}`" in section, f"{full} {param.name}"


def test_every_page_in_the_navigation_exists_and_is_not_a_stub():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    generated = {"index.md", "reference/cli.md"}
    pages = _nav_pages(config["nav"])
    assert set(generated) <= set(pages) and len(pages) >= 18
    for page in sorted(set(pages) - generated):
        text = (ROOT / "docs" / page).read_text()
        assert len(text.split()) > 150 and "TODO" not in text, page
    listed = set(pages)
    unlisted = [
        p.relative_to(ROOT / "docs").as_posix()
        for p in (ROOT / "docs").rglob("*.md")
        if p.relative_to(ROOT / "docs").as_posix() not in listed
    ]
    assert not unlisted, f"pages not in mkdocs.yml's nav: {unlisted}"


def test_the_quickstart_is_the_readme_with_site_links():
    readme = (ROOT / "README.md").read_text()
    page = cli_reference.quickstart(readme)
    assert page.startswith("# timm-compound\n\n```bash\nmake demo") and "](docs/" not in page
    assert "](training.md)" in page and len(readme.splitlines()) <= 200
