"""docs/cli.md's `console` blocks: each `$ timm-compound ...` line prints exactly the lines under it (trailing
spaces aside), and exits with the status a `[exit N]` line gives (0 when there is none)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from timm_compound.cli import app

DOC = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()


def _examples() -> list[tuple[list[str], list[str], int]]:
    found = []
    for block in re.findall(r"```console\n(.*?)```", DOC, re.S):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.M):
            if not chunk.strip():
                continue
            command, *lines = chunk.rstrip("\n").split("\n")
            code = 0
            if lines and re.fullmatch(r"\[exit \d+\]", lines[-1]):
                code = int(lines.pop()[6:-1])
            args = shlex.split(command[2:])
            assert args[0] == "timm-compound", command
            found.append((args[1:], lines, code))
    return found


EXAMPLES = _examples()


def test_the_page_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("args, lines, code", EXAMPLES, ids=[" ".join(a) for a, _, _ in EXAMPLES])
def test_every_console_example_prints_what_the_page_shows(args, lines, code):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    assert [line.rstrip() for line in result.output.rstrip("\n").split("\n")] == [line.rstrip() for line in lines]
