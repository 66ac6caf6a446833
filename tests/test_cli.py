"""The CLI, driven through typer's runner and once as a real subprocess."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from timm_compound.cli import app

runner = CliRunner()


def test_list_shows_registered_variants_with_their_input_size():
    result = runner.invoke(app, ["list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "resnet18_cs_phi2" in result.output and "efficientnet_b0_cs_phi7" in result.output
    line = next(line for line in result.output.splitlines() if "resnet18_cs_phi2 " in line)
    assert "296" in line


def test_show_json_is_the_plan():
    result = runner.invoke(
        app, ["show", "efficientnet_b0", "--d", "2.2", "--w", "1.6", "--resolution", "456", "--json"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["depths"] == [3, 5, 5, 7, 7, 9, 3]
    assert plan["widths"] == [24, 40, 64, 128, 176, 304, 512]
    assert plan["resolution"] == 456 and plan["phi"] is None


def test_show_registered_variant_table():
    result = runner.invoke(app, ["show", "resnet50_cs_phi2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "[3, 4, 6, 3] → [5, 6, 9, 5]" in result.output
    assert "224 → 296 px" in result.output


def test_show_conflicting_arguments_exit_1_without_traceback():
    result = runner.invoke(app, ["show", "resnet18", "--phi", "1", "--d", "1.2"])
    assert result.exit_code == 1
    assert "either phi or explicit" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["show", "resnet18_cs_phi2", "--phi", "1"])
    assert result.exit_code == 1 and "registered at phi=2" in result.output


def test_show_unknown_name():
    result = runner.invoke(app, ["show", "vgg16"])
    assert result.exit_code == 1 and "neither a registered variant nor a base" in result.output


def test_rules_validate(tmp_path):
    from timm_compound.scaling.rulebook import shipped_dir

    shipped = sorted(shipped_dir("rules").glob("*.yaml")) + sorted(shipped_dir("registry").glob("*.yaml"))
    result = runner.invoke(app, ["rules", "validate", *map(str, shipped)])
    assert result.exit_code == 0, result.output
    assert result.output.count("valid") == len(shipped) >= 13

    bad = tmp_path / "bad.yaml"
    bad.write_text((shipped_dir("rules") / "resnet.yaml").read_text().replace("alpha: 1.2", "alpha: 0.8"))
    result = runner.invoke(app, ["rules", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: coefficients.alpha: Input should be greater than or equal to 1" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_demo_builds_and_runs_a_variant():
    result = runner.invoke(app, ["demo", "mobilenetv1_100_cs_phi1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "mobilenetv1_100_cs_phi1" in result.output and "(1, 1000)" in result.output
    assert "256px" in result.output


def test_console_script_help_runs_in_a_fresh_process():
    result = subprocess.run(
        [sys.executable, "-m", "timm_compound", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("list", "show", "rules", "demo"):
        assert command in result.stdout


def test_default_demo_runs_every_step(capsys):
    from rich.console import Console

    from timm_compound.cli.demo import DEFAULT_VARIANTS, run

    console = Console(width=120, force_terminal=False)
    rows = run(None, console)
    assert [row["name"] for row in rows] == list(DEFAULT_VARIANTS)
    assert [row["input_size"] for row in rows] == [224, 256, 296, 256, 256]
    out = capsys.readouterr().out
    assert "resnet18: realised cost per phi" in out and "│ 1 │ 256 │ [3, 3, 3, 3] │" in out
    assert "reloaded with local-dir: at input [3, 256, 256]: identical outputs" in " ".join(out.split())


@pytest.mark.parametrize(
    "entry",
    [[str(Path(sys.executable).parent / "timm-compound")], ["-m", "timm_compound"]],
    ids=["script", "python -m"],
)
@pytest.mark.parametrize("args", [["--help"], ["rules", "schema"]])
def test_help_and_schema_do_not_import_torch(entry, args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *entry, *args], capture_output=True, text=True, check=True
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "timm_compound" in imported and not {m for m in imported if re.match(r"(torch|timm)(\.|$)", m)}


@pytest.mark.parametrize(
    "entry",
    [[str(Path(sys.executable).parent / "timm-compound")], [sys.executable, "-m", "timm_compound"]],
    ids=["script", "python -m"],
)
def test_bad_rules_path_is_one_error_line_from_the_console_script(tmp_path, entry):
    env = dict(os.environ, TIMM_COMPOUND_RULES_PATH=str(tmp_path / "missing"))
    result = subprocess.run([*entry, "list"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'missing'}: no such file or folder (loaded from TIMM_COMPOUND_RULES_PATH)"
    )


def test_bad_phi_arguments_exit_1():
    for args, message in (
        (["show", "resnet18", "--phi", "5000"], "phi=5000 overflows"),
        (["table", "resnet18", "--phi", "3-1"], "names no phi"),
        (["rules", "check", "rules/resnet.yaml", "--phi", "x"], "--phi must look like"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_rules_validate_checks_constructor_arguments(tmp_path):
    from timm_compound.scaling.rulebook import shipped_dir

    bad = tmp_path / "bad.yaml"
    bad.write_text((shipped_dir("rules") / "convnext.yaml").read_text().replace("arg: dims", "arg: widths"))
    result = runner.invoke(app, ["rules", "validate", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert f"{bad}: width.arg: ConvNeXt has no constructor argument 'widths'" in result.output


def test_the_cli_default_data_is_the_training_default():
    """The CLI spells the default out so --help needs no torch; it must stay the library's."""
    from timm_compound.cli.app import DEFAULT_DATA
    from timm_compound.train.data import DEFAULT_DATA as LIBRARY_DEFAULT

    assert DEFAULT_DATA == LIBRARY_DEFAULT == "builtin:digits"
