"""family_table(), plot_table() and the `table` / `fit` commands."""

import json

from typer.testing import CliRunner

from timm_compound.cli import app
from timm_compound.cost.plot import plot_table
from timm_compound.cost.table import family_table

runner = CliRunner()


def test_rows_give_exact_and_realised_scaling_with_measured_cost():
    zero, one = family_table("resnet18", [0, 1])
    assert (zero.resolution, zero.depths, zero.gmacs, zero.ratio, zero.ideal) == (
        224,
        [2, 2, 2, 2],
        1.814073344,
        1.0,
        1.0,
    )
    assert (one.resolution, one.depths, one.mparams, one.gmacs) == (256, [3, 3, 3, 3], 21.51268, 4.370549632)
    assert one.d == 1.2 and one.d_realised == 1.5  # ceil(2 * 1.2) = 3 blocks per stage
    assert round(one.ratio, 4) == 2.4092 and round(one.ideal, 5) == 1.92027


def test_plot_is_a_png(tmp_path):
    path = tmp_path / "resnet18.png"
    plot_table(family_table("mobilenetv1_100", [-1, 0]), path, title="mobilenetv1_100")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_command_writes_csv_and_json():
    result = runner.invoke(app, ["table", "resnet18", "--phi", "0,1", "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("phi,d,d_realised") and len(lines) == 3
    result = runner.invoke(app, ["table", "resnet18", "--phi", "0-1", "--format", "json"])
    assert [row["gmacs"] for row in json.loads(result.stdout)] == [1.814073344, 4.370549632]


def test_table_command_errors_without_traceback():
    result = runner.invoke(app, ["table", "resnet9000"])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


def test_fit_command_prints_achieved_and_ratio():
    result = runner.invoke(app, ["fit", "resnet18", "--max-gmacs", "4", "--json"])
    assert result.exit_code == 0, result.output
    (budget,) = json.loads(result.stdout)["budgets"]
    assert budget["target"] == 4 and 0.95 <= budget["ratio"] <= 1
    result = runner.invoke(app, ["fit", "resnet18", "--max-gmacs", "0.001"])
    assert result.exit_code == 1 and "smallest valid model" in result.output


def test_fit_command_builds_the_result_into_a_loadable_folder(tmp_path):
    import timm
    import torch

    result = runner.invoke(app, ["fit", "mobilenetv1_100", "--max-gmacs", "0.2", "--json", "--to-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    size = timm.data.resolve_model_data_config(model)["input_size"]
    assert tuple(size) == (3, fitted["resolution"], fitted["resolution"])
    assert model.compound_plan.depths == fitted["depths"] and model.compound_plan.widths == fitted["widths"]
    with torch.inference_mode():
        assert model(torch.randn(1, *size)).shape == (1, 1000)


def test_ratios_do_not_depend_on_batch_size_or_row_order():
    one = {row.phi: row for row in family_table("resnet18", [0, 1])}
    four = {row.phi: row for row in family_table("resnet18", [1, 0], batch_size=4)}
    assert four[1.0].ratio == one[1.0].ratio and four[0.0].ratio == 1.0
    assert four[1.0].gmacs == 4 * one[1.0].gmacs


def _cli_imports(*args: str) -> tuple[int, list[str]]:
    """Run the console entry in a fresh interpreter; its exit code and which heavy modules it imported."""
    import subprocess
    import sys

    code = (
        "import sys, timm_compound_cli\n"
        f"sys.argv = ['timm-compound', *{list(args)!r}]\n"
        "try:\n    timm_compound_cli.main()\nexcept SystemExit as exit:\n    code = exit.code or 0\nelse:\n    code = 0\n"
        "print(code, *[m for m in ('torch', 'timm') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, *imported = result.stdout.strip().splitlines()[-1].split()
    return int(exit_code), imported


def test_help_and_rules_schema_start_without_torch():
    """The console script defers registration (timm_compound.registry.startup), so these never import torch."""
    assert _cli_imports("--help") == (0, [])
    assert _cli_imports("rules", "schema") == (0, [])
    assert _cli_imports("fit", "--help") == (0, [])
    assert _cli_imports("show", "resnet18_cs_phi2", "--json") == (0, ["torch", "timm"])  # needs registered names
