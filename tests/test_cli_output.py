"""What the command line prints: every table command's --format, whole numbers through a narrow pipe,
one exit-code convention, help texts without stray markup, and start-up without torch where it can."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from timm_compound.cli import app
from timm_compound.cli.display import FORMATS

RULE = "rules/mobilenetv1.yaml"
SEARCH = ["search", "resnet18", "--dry-run", "--step", "0.1", "--bounds", "1.1,1.1,1.2", "--resolution", "32"]
# every command that prints a table; `demo NAME` too (it takes no --format: it is a walk-through)
TABLE_COMMANDS = {
    "list": ["list"],
    "show": ["show", "resnet18", "--phi", "2"],
    "table": ["table", "resnet18", "--phi", "0-2"],
    "fit": ["fit", "resnet18", "--max-gmacs", "4", "--show"],
    "rules check": ["rules", "check", RULE, "--phi", "0-1"],
    "search --dry-run": SEARCH,
}
PIPED = {**TABLE_COMMANDS, "demo": ["demo", "mobilenetv1_100_cs_phi0"]}
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def run(*args: str, **env: str) -> tuple[int, str]:
    """(exit code, stdout and stderr together)."""
    result = CliRunner().invoke(app, list(args), env=env or None)
    return result.exit_code, result.output


def data(*args: str) -> tuple[int, str]:
    """(exit code, stdout alone): what a script reading --format csv/json gets."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


# ---------------------------------------------------------------- a narrow pipe cuts no number

PIPE_SCRIPT = """
import sys, timm_compound_cli
timm_compound_cli.CLI_RUN = True
from timm_compound.cli import app
for args in {commands!r}:
    print("=== " + " ".join(args), flush=True)
    try:
        app(args, prog_name="timm-compound")
    except SystemExit as done:
        print("=== exit", done.code, flush=True)
"""


def _piped(columns: int, cache: Path) -> subprocess.Popen:
    """Every table command's stdout through a real pipe, in a child started with COLUMNS=columns."""
    env = {**os.environ, "COLUMNS": str(columns), "XDG_CACHE_HOME": str(cache), "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    return subprocess.Popen(
        [sys.executable, "-c", PIPE_SCRIPT.format(commands=list(PIPED.values()))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )


def _sections(text: str) -> dict[str, str]:
    found = {}
    for name, args in PIPED.items():
        start = text.index("=== " + " ".join(args) + "\n")
        end = text.index("=== exit", start)
        body, code = text[start:end], text[end:].split("\n", 1)[0]
        assert code == "=== exit 0", (name, code, body)
        found[name] = body.split("\n", 1)[1]
    return found


def test_every_table_command_piped_at_40_columns_keeps_every_number_whole(tmp_path):
    """A child started with COLUMNS=40 pipes every table command's output; the numbers read from it are
    exactly those of the same commands rendered here at COLUMNS=1000, in order, and nothing is cut with
    '…'. (Before, a pipe at 40 columns folded cells and split numbers across lines.) The demo's timings
    differ between runs and are left out."""
    child = _piped(40, tmp_path / "cache")
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-3000:]
    narrow = _sections(out)
    for name, args in PIPED.items():
        assert "…" not in narrow[name], narrow[name]
        result = CliRunner().invoke(app, args, env={"COLUMNS": "1000", "XDG_CACHE_HOME": str(tmp_path / "cache")})
        assert result.exit_code == 0, result.output
        untimed = [re.sub(r"\d+ ms\b", "", text) for text in (narrow[name], result.stdout)]
        assert NUMBER.findall(untimed[0]) == NUMBER.findall(untimed[1]), name
        assert len(NUMBER.findall(untimed[0])) > 5, name
    assert re.search(r"│ d \(depth\) +│ 1\.4400 │ +1\.5000 │ \[2, 2, 2, 2\] → \[3, 3, 3, 3\] +│", narrow["show"])
    assert max(len(line) for line in narrow["table"].splitlines()) > 100  # full width, not 40


# ---------------------------------------------------------------- --format on every table command


@pytest.mark.parametrize("name", TABLE_COMMANDS)
def test_every_table_command_takes_every_format(name):
    """csv parses into rows, json into data, markdown is a pipe table; an unknown format is one error line."""
    args = TABLE_COMMANDS[name]
    outputs = {}
    for fmt in FORMATS:
        code, output = data(*args, "--format", fmt)
        assert code == 0, (fmt, output)
        outputs[fmt] = output
    parsed = json.loads(outputs["json"])
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert rows and parsed
    assert re.search(r"^\| .+ \|$", outputs["markdown"], re.M) and re.search(
        r"^\|(---|--:)(\|(---|--:))*\|$", outputs["markdown"], re.M
    )
    code, output = run(*args, "--format", "xml")
    assert code == 1 and output.strip() == "error: --format must be table, csv, json or markdown, got 'xml'"


def test_formats_carry_the_measured_numbers():
    code, output = data("table", "resnet18", "--phi", "0,1", "--format", "json")
    rows = json.loads(output)
    assert code == 0 and [row["resolution"] for row in rows] == [224, 256]
    assert round(rows[0]["gmacs"], 3) == 1.814 and round(rows[1]["ratio"], 2) == 2.41  # README: 2.41x at phi=1
    code, output = data("table", "resnet18", "--phi", "0,1", "--format", "csv")
    assert next(csv.DictReader(io.StringIO(output)))["depths"] == "[2, 2, 2, 2]"
    code, output = data("list", "--format", "json")
    listed = {row["name"]: row for row in json.loads(output)}
    assert listed["resnet18_cs_phi2"]["input_size"] == 296 and listed["resnet18_cs_phi2"]["weights"] is None
    code, output = data(
        "show", "efficientnet_b0", "--d", "2.2", "--w", "1.6", "--resolution", "456", "--format", "markdown"
    )
    assert (
        "| w (width) | 1.6000 | 1.5918 | [16, 24, 40, 80, 112, 192, 320] → [24, 40, 64, 128, 176, 304, 512] |" in output
    )


# ---------------------------------------------------------------- one exit-code convention


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["table", "resnet18", "--phii", "1"],
            "error: No such option: --phii (Possible options: --phi) (see timm-compound table --help)",
        ),
        (["fit"], "error: Missing argument 'base' (see timm-compound fit --help)"),
        (["fit", "resnet18", "--max-gmacs", "four"], "error: Invalid value for '--max-gmacs'"),
        (["train", "resnet18_cs_phi0", "--augment", "--epochs"], "error: Option '--epochs' requires an argument"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(args, message):
    code, output = run(*args)
    assert code == 1
    assert output.startswith(message) and output.count("\n") == 1 and "╭" not in output, output


def test_no_arguments_prints_the_help():
    code, output = run()
    assert code == 0 and "Usage:" in output and "Commands" in output


# ---------------------------------------------------------------- help texts


def _commands(command, path=()):
    children = getattr(command, "commands", None)
    if children:
        for name, child in children.items():
            yield from _commands(child, (*path, name))
    else:
        yield path, command


def test_help_texts_show_each_default_once_and_no_stray_markup():
    """A help text never holds '[' (rich would read it as markup and leave ' .'), and an option whose
    default typer shows does not state a default of its own."""
    for path, command in _commands(get_command(app)):
        for param in command.params:
            text = getattr(param, "help", None) or ""
            where = f"{' '.join(path)} {param.name}"
            assert "[" not in text, where
            shown = param.default not in (None, False, ()) and getattr(param, "show_default", None) is not False
            assert not (shown and "default" in text.lower()), where
        code, output = run(*path, "--help", COLUMNS="250")
        assert code == 0, output
        assert not re.search(r"\w \.(\s|$)", output), (path, output)
        for line in output.splitlines():
            assert line.count("[default:") <= 1, line


# ---------------------------------------------------------------- start-up without torch


def _timm_compound(*args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """(stdout, the modules it imported) of the console script run with `args`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(Path(sys.executable).parent / "timm-compound"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return result.stdout, imported


def test_every_commands_help_starts_without_torch():
    script = textwrap.dedent("""
        import sys, timm_compound_cli
        for path in {paths!r}:
            sys.argv = ["timm-compound", *path, "--help"]
            try:
                timm_compound_cli.main()
            except SystemExit:
                pass
        print("IMPORTED", *[m for m in ("torch", "timm") if m in sys.modules])
    """).format(paths=[list(path) for path, _ in _commands(get_command(app))])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "IMPORTED"


def test_list_starts_without_torch_once_its_rows_are_cached(tmp_path, monkeypatch):
    """The first `list` registers (imports torch) and caches its rows; the next one with the same inputs
    prints the same from the cache without importing torch or timm. A user rule path is one of the inputs."""
    from timm_compound.registry import listing, user_rules

    assert listing.ENV_VAR == user_rules.ENV_VAR
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TIMM_COMPOUND_RULES_PATH", None)
    first, cold = _timm_compound("list", "--format", "csv", env=env)
    second, warm = _timm_compound("list", "--format", "csv", env=env)
    assert "torch" in cold and not {m for m in warm if re.match(r"(torch|timm)(\.|$)", m)}
    assert second == first and "resnet18_cs_phi2,resnet18,2,296," in first
    monkeypatch.delenv("TIMM_COMPOUND_RULES_PATH", raising=False)
    plain = listing.fingerprint()
    registry = tmp_path / "mine.yaml"
    registry.write_text("variants:\n  - {base: resnet18, phis: [3], name: '{base}_mine{phi}'}\n")
    monkeypatch.setenv("TIMM_COMPOUND_RULES_PATH", str(registry))
    mine = listing.fingerprint()
    registry.write_text("variants:\n  - {base: resnet18, phis: [4], name: '{base}_mine{phi}'}\n")
    assert len({plain, mine, listing.fingerprint()}) == 3
    monkeypatch.setenv("TIMM_COMPOUND_RULES_PATH", str(tmp_path / "missing"))
    assert listing.fingerprint() is None  # no cache: registration reports the missing path


def test_rules_validate_refuses_a_file_that_is_not_yaml_without_torch(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: [unclosed\n")
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(Path(sys.executable).parent / "timm-compound"),
            "rules",
            "validate",
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and f"invalid: {bad}: not valid YAML" in result.stderr
    assert not re.search(r"\|\s+torch$", result.stderr, re.M)
