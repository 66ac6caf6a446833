"""Every code example in README.md and docs/*.md is checked (docs/rules.md and docs/cli.md have tests of
their own, which also check what the commands print).

- ```python blocks run, in order, one namespace per page, in a fresh working directory; a block
  preceded by `<!-- not run: REASON -->` (a GPU, the network, hours) is compiled only.
- ```console blocks run: each `$ ` line in bash, in that page's working directory.
- ```bash blocks show commands at realistic sizes: each `timm-compound` command in them (also under
  `torchrun ... -m timm_compound` or `python -m timm_compound`), on every page, is parsed by the real
  command line, so a renamed command or option, or a value of the wrong type, fails here; the rest is
  `bash -n`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# rules.md and cli.md have tests of their own (test_docs_rules.py, test_docs_cli.py) that also check outputs
OWN_TESTS = ("rules.md", "cli.md")
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in OWN_TESTS)]
BLOCK = re.compile(
    r"(<!--\s*not run:\s*(?P<reason>[^>]*?)\s*-->\s*\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)```", re.S
)


def blocks(page: Path, lang: str) -> list[tuple[str, str | None]]:
    return [(m["body"], m["reason"]) for m in BLOCK.finditer(page.read_text()) if m["lang"] == lang]


def _id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=_id)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs:{_id(page)}"}
    for index, (body, reason) in enumerate(blocks(page, "python")):
        code = compile(body, f"{_id(page)} python block {index + 1}", "exec")
        if reason is None:
            exec(code, namespace)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "console")], ids=_id)
def test_console_examples_run(page, tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", COLUMNS="120")
    for body, reason in blocks(page, "console"):
        for line in body.splitlines():
            if not line.startswith("$ ") or reason is not None:
                continue
            command = line[2:]
            result = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, f"{_id(page)}: {command}\n{result.stdout}\n{result.stderr}"


def _commands(body: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments dropped, split at && and |."""
    joined = re.sub(r"\\\n\s*", " ", body)
    found = []
    for line in joined.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        found += [part.strip() for part in re.split(r"&&|\|", line) if part.strip()]
    return found


def _cli_arguments(command: str) -> list[str] | None:
    """The arguments given to timm-compound in `command`, or None when it does not run timm-compound."""
    words = shlex.split(command.split(">")[0])
    while words and re.fullmatch(r"\w+=\S*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if words[:1] == ["timm-compound"]:
        return words[1:]
    if "-m" in words and words[words.index("-m") + 1 : words.index("-m") + 2] == ["timm_compound"]:
        return words[words.index("-m") + 2 :]
    return None


def _parse(arguments: list[str]) -> None:
    """Parse `arguments` with the real CLI (every command, option and value type checked), running nothing."""
    import typer.main

    from timm_compound.cli import app

    command = typer.main.get_command(app)
    words = list(arguments)
    while hasattr(command, "commands") and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    assert not hasattr(command, "commands"), f"no such command: {' '.join(arguments)}"
    words = [word for word in words if word not in ("--help", "--debug")]
    command.make_context(command.name, words)


ALL_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if blocks(p, "bash")], ids=_id)
def test_bash_examples_parse(page):
    checked = 0
    for body, _ in blocks(page, "bash"):
        syntax = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
        assert syntax.returncode == 0, f"{_id(page)}: {syntax.stderr}\n{body}"
        for command in _commands(body):
            arguments = _cli_arguments(command)
            if arguments is not None and arguments:
                try:
                    _parse(arguments)
                except SystemExit as exit:  # click's own exit (e.g. --help) is fine; errors are not
                    assert exit.code in (0, None), f"{_id(page)}: {command}"
                except Exception as error:
                    pytest.fail(f"{_id(page)}: {command}\n{type(error).__name__}: {error}")
                checked += 1
    assert checked or page.name == "development.md"
