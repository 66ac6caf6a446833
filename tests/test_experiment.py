"""Scaling experiments end to end: one tiny experiment (convnext_atto at 32 px, one budget, the four
strategies, the base and one timm reference, 128 training images, one epoch) shared by the tests
below; its numbers, files, report in real headless Chromium, re-run, and bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import browser  # tests/browser.py (tests/ is on sys.path, as for conftest's hub_server)
import pytest
import torch
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.cli import app
from timm_compound.cost.measure import measure
from timm_compound.hub.load import build
from timm_compound.scaling.rulebook import active_rules, set_active_rules
from timm_compound.train.recorded import open_run

BASE = "convnext_atto"  # small and cheap at 32 px, and 2x is a budget all four strategies reach within 5%
BUDGET = 2.0
REFERENCE = "resnet10t"  # a timm model no rule covers: trained from timm.create_model (at 32 px: its stride)
SETTINGS = dict(
    budgets=(BUDGET,),
    references=(f"{REFERENCE}@32",),
    epochs=1,
    resolution=32,
    train_samples=128,
    val_samples=64,
    batch_size=64,
    cam_images=3,
)
RUNS = ["base", "2x-depth", "2x-width", "2x-resolution", "2x-compound", "ref-resnet10t"]
FIGURES = ["accuracy_vs_gmacs.png", "accuracy_vs_params.png", "accuracy_vs_latency.png", "curves.png", "cam.png"]


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: a second thread helps little, and on a shared machine it can cost 5x
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def done(tmp_path_factory, threads):
    out = tmp_path_factory.mktemp("experiment") / "exp"
    buffer = io.StringIO()
    result = tc.experiment(BASE, "builtin:digits", out=out, console=Console(file=buffer, width=200), **SETTINGS)
    return result, out, buffer.getvalue()


def test_every_variant_costs_its_budget_within_5_percent(done):
    result, _, _ = done
    assert [row.variant.name for row in result.rows] == RUNS
    base = result.row("base").variant
    assert result.base_macs == base.cost.macs and base.resolution == 32
    for row in result.rows:
        variant = row.variant
        # what the run folder trained, rebuilt from its run.json and counted again
        recorded = open_run(row.run_dir) if variant.strategy != "reference" else None
        if recorded is not None:
            with torch.device("meta"):
                model = build(recorded.plan, num_classes=10)
            assert measure(model, resolution=recorded.resolution).macs == variant.cost.macs
            assert recorded.resolution == variant.resolution
        if variant.strategy in ("depth", "width", "resolution", "compound"):
            assert variant.budget == BUDGET
            assert abs(variant.cost.macs / (BUDGET * base.cost.macs) - 1) <= 0.05, (variant.name, variant.ratio)
            assert math.isclose(variant.ratio, variant.cost.macs / base.cost.macs)
    plans = {row.variant.strategy: row.variant for row in result.rows}
    # each single-dimension strategy changes only its dimension; compound changes all three
    assert plans["depth"].plan.widths == base.plan.widths and plans["depth"].resolution == 32
    assert plans["depth"].plan.depths != base.plan.depths
    assert plans["width"].plan.depths == base.plan.depths and plans["width"].resolution == 32
    assert plans["width"].plan.widths != base.plan.widths
    assert (plans["resolution"].plan.depths, plans["resolution"].plan.widths) == (base.plan.depths, base.plan.widths)
    assert plans["resolution"].resolution > 32
    compound = plans["compound"]
    assert compound.plan.depths != base.plan.depths and compound.plan.widths != base.plan.widths
    assert compound.resolution > 32
    reference = plans["reference"]
    assert reference.timm_only and reference.model == REFERENCE and reference.budget is None


def test_every_file_is_written_and_agrees(done):
    result, out, _ = done
    for name in ["experiment.json", "results.json", "table.csv", "table.md", "report.html", *FIGURES]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in FIGURES:
        with Image.open(out / name) as image:
            assert image.width > 400 and image.height > 300, name
    for name in RUNS:
        for file in ("run.json", "metrics.csv", "best.safetensors", "predictions.csv"):
            assert (out / "runs" / name / file).is_file(), (name, file)
        assert not (out / "runs" / name / "last" / "state.pt").exists()  # disk thrift: no optimizer state
    with open(out / "table.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [line["run"] for line in table] == RUNS
    for line, row in zip(table, result.rows):
        run = json.loads((row.run_dir / "run.json").read_text())
        assert run["status"] == "completed" and run["epochs_completed"] == 1
        assert float(line["top1"]) == pytest.approx(row.top1) == pytest.approx(run["best"]["top1"])  # one epoch
        assert row.runs[0].images.top1 == pytest.approx(
            row.top1
        )  # predictions.csv: the same evaluation, image by image
        assert 0 <= row.top1 <= 100 and row.top1 <= row.top5
        assert float(line["gmacs"]) == pytest.approx(row.variant.cost.macs / 1e9)
        assert int(line["resolution"]) == row.variant.resolution
    markdown = (out / "table.md").read_text()
    assert markdown.split("\n\n")[0].count("\n") == 2 + len(RUNS) - 1 and "| 2x-compound | compound | 2x |" in markdown
    assert markdown.split("\n\n")[1].startswith("ms: median latency of a forward pass")  # where they were timed
    # the comparisons: compound against depth, width and resolution, and resnet10t against 2x-compound (one seed)
    assert markdown.count("| 2x | 2x-compound |") == 4 and "McNemar" in markdown and "Verdict at 2x" in markdown
    saved = json.loads((out / "results.json").read_text())
    assert saved["best"] == {"2": result.best[BUDGET]} and saved["seeds"] == [0]
    assert [(c["a"], c["b"]) for c in saved["comparisons"]] == [
        ("2x-compound", "2x-depth"),
        ("2x-compound", "2x-width"),
        ("2x-compound", "2x-resolution"),
        ("2x-compound", "ref-resnet10t"),
    ]
    assert saved["verdict"]["2"] == result.verdicts[BUDGET] and "one seed" in saved["verdict"]["2"]
    assert all(
        row["top1"] == [row["top1_mean"]] and row["top1_sd"] is None and row["top1_ci"][0] <= row["top1_mean"]
        for row in saved["rows"]
    )
    assert [row["name"] for row in saved["rows"]] == RUNS
    recorded = json.loads((out / "experiment.json").read_text())
    assert [model["name"] for model in recorded["models"]] == RUNS


def test_every_model_is_timed_as_trained_and_shown_with_where(done):
    result, out, output = done
    base = result.row("base").variant.latency
    with open(out / "table.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    for line, row in zip(table, result.rows):
        timing = row.variant.latency
        assert timing is not None and timing.resolution == row.variant.resolution and timing.threads == 1
        assert timing.ci_ms[0] <= timing.median_ms <= timing.ci_ms[1]
        assert float(line["latency_ms"]) == pytest.approx(timing.median_ms)
        assert float(line["x_base_ms"]) == pytest.approx(timing.median_ms / base.median_ms)
        assert float(line["throughput"]) == pytest.approx(1000 / timing.median_ms)
        assert (line["latency_device"].startswith("cpu ("), line["latency_threads"], line["latency_batch_size"]) == (
            True,
            "1",
            "1",
        )
    markdown = (out / "table.md").read_text()
    assert "| ms | 95% interval | img/s | x base ms |" in markdown
    assert "timed on cpu (" in markdown and "1 thread, batch 1, float32, eager" in markdown
    assert "timed on cpu (" in output and "ms (" in output  # the plan lines show each model's timing
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"][0]["latency"]["median_ms"] == base.median_ms


def _job_order(result) -> list[str]:
    """The order runs are trained in: within a seed, the costliest model first (workers finish together)."""
    return [row.variant.name for row in sorted(result.rows, key=lambda row: -row.variant.cost.macs)]


def test_summary_names_the_best_strategy_and_the_total_compute(done):
    result, _, output = done
    column = [row for row in result.rows if row.variant.budget == BUDGET]
    top = max(row.top1 for row in column)
    assert result.best[BUDGET] == " = ".join(row.variant.strategy for row in column if row.top1 == top)
    assert f"2x the base's GMACs: best {result.best[BUDGET]} (" in output
    compute = sum(128 * 1 * row.variant.cost.macs for row in result.rows)
    assert result.compute_macs == compute
    assert f"total compute: {compute / 1e12:.4g} TMACs = sum over 6 models of 128 training images x 1 epochs" in output
    trained = _job_order(result)
    assert trained[-1] == "base"  # the cheapest model is trained last
    assert f"experiment: run 6/6 {trained[-1]}, epoch 1/1 done; 100% of the compute" in output
    assert "warning: one seed per model, so no error bars" in output and "disk: " in output
    assert f"verdict at {result.verdicts[BUDGET]}" in output


def test_report_renders_in_headless_chromium(done, tmp_path):
    if browser.CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; `make system-deps` does it)")
    result, _, _ = done
    page = result.report
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text  # self-contained
    assert "<h2>Verdict</h2>" in text and "McNemar" in text
    assert "&quot;weight_decay&quot;: 2e-05" in text and "&quot;seeds&quot;: 1" in text  # every setting, defaults too
    found = browser.images(page, tmp_path)
    control = found.pop()
    assert control["alt"].startswith("control") and control["width"] == 0  # the check can see a broken image
    assert len(found) == len(FIGURES)
    for image in found:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    shot = browser.screenshot(page, tmp_path / "report.png")  # the artifact: tmp_path of this test
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        assert len(image.convert("L").getcolors(256 * 256) or []) > 20  # not a blank page


def test_rerun_from_the_cli_skips_finished_runs(done):
    result, out, _ = done
    stamps = {name: (out / "runs" / name / "run.json").stat().st_mtime_ns for name in RUNS}
    code, output = cli(
        "experiment",
        BASE,
        "--budgets",
        "2",
        "--reference",
        f"{REFERENCE}@32",
        "--epochs",
        1,
        "--resolution",
        32,
        "--train-samples",
        128,
        "--val-samples",
        64,
        "--batch-size",
        64,
        "--cam-images",
        3,
        "--out",
        out,
    )
    assert code == 0, output
    text = flat(output)
    for index, name in enumerate(_job_order(result), 1):
        assert f"run {index}/6 {name} finished earlier: skipped" in text
    assert f"best {result.best[BUDGET]}" in text and "total compute:" in text
    assert {name: (out / "runs" / name / "run.json").stat().st_mtime_ns for name in RUNS} == stamps


def test_a_folder_with_other_settings_is_refused_unchanged(done, tmp_path):
    _, out, _ = done
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    with pytest.raises(
        tc.CompoundError, match=r"different settings \(epochs: folder 1, asked 2\).*nothing was changed"
    ):
        tc.experiment(BASE, out=out, progress=False, **{**SETTINGS, "epochs": 2})
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == before
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(tc.CompoundError, match="not empty and holds no experiment"):
        tc.experiment(BASE, out=tmp_path, progress=False, **SETTINGS)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


BAD_CALLS = {
    "budget one": (dict(budgets=(1,)), "must be > 1"),
    "budget below one": (dict(budgets=(0.5, 2)), "must be > 1"),
    "budget not a number": (dict(budgets=("two",)), "is not a number"),
    "budget nan": (dict(budgets=(float("nan"),)), "budget"),
    "no budget": (dict(budgets=()), "at least one budget"),
    "unknown strategy": (dict(strategies=("depth", "height")), "unknown strategy 'height'"),
    "reference not a timm model": (dict(references=("resnet_nonexistent",)), "is not a timm model"),
    "reference bad pixels": (dict(references=("resnet34@big",)), "after @ comes an input size"),
    "reference below its stride": (dict(references=("resnet10t",), resolution=32), "resnet10t would train at 25 px"),
    "base not covered": (dict(base="vit_tiny_patch16_224"), "not a base covered by a rule"),
    "train argument unknown": (dict(resume=True), "does not take resume"),
    "cost unknown": (dict(cost="flops"), "cost must be one of gmacs, latency"),
    "latency off with cost latency": (dict(cost="latency", latency=False), "latency=False is not allowed"),
    "latency setting unknown": (dict(latency={"warmup": 3}), "latency does not take warmup"),
    "latency batch zero": (dict(latency={"batch_size": 0}), "batch_size must be a positive int"),
}


@pytest.mark.parametrize("given, message", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, given, message):
    given = {"base": "resnet18", "epochs": 1, "out": tmp_path / "exp", **given}
    with pytest.raises(tc.CompoundError, match=message.replace("(", r"\(")):
        tc.experiment(given.pop("base"), progress=False, **given)
    assert not (tmp_path / "exp").exists()


BAD_COMMANDS = {
    "budget one": (["--budgets", "1"], "must be > 1"),
    "budget not a number": (["--budgets", "2,x"], "'x' is not a number"),
    "unknown strategy": (["--strategies", "depth,height"], "unknown strategy 'height'"),
    "reference not a timm model": (["--reference", "resnet_nonexistent"], "is not a timm model"),
}


@pytest.mark.parametrize("arguments, message", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_bad_command_line_is_one_error_line(tmp_path, arguments, message):
    code, output = cli("experiment", "resnet18", "--epochs", 1, "--out", tmp_path / "exp", *arguments)
    assert code == 1 and "Traceback" not in output and message in flat(output), output
    assert not (tmp_path / "exp").exists()


FIXED_DEPTH_RULE = """\
family: resnet_fixed_depth
description: ResNet-26 with every stage's depth fixed, a family depth scaling cannot change.
architectures: [resnet26]
coefficients: {alpha: 1.2, beta: 1.1, gamma: 1.15}
constraint: {flops_factor: 2.0, tolerance: 0.05}
depth: {arg: layers, layout: counts, rounding: ceil, min: 1, fixed_stages: [0, 1, 2, 3]}
width: {arg: channels, layout: list, divisor: 8, round_limit: 0.9, min: 8}
stem: {policy: fixed, value: 64, note: timm hard-codes the 64 channel stem}
head: {policy: derived, note: timm derives num_features from channels}
resolution: {divisor: 8, rounding: round}
stage_modules: [layer1, layer2, layer3, layer4]
"""


def test_a_strategy_the_rule_cannot_express_is_refused(tmp_path):
    path = tmp_path / "fixed.yaml"
    path.write_text(FIXED_DEPTH_RULE)
    before = active_rules()
    try:
        tc.load_rules(path)
        with pytest.raises(tc.CompoundError, match=r"cannot scale resnet26 by depth alone.*drop 'depth'"):
            tc.experiment("resnet26", budgets=(2,), epochs=1, out=tmp_path / "exp", resolution=32, progress=False)
    finally:
        set_active_rules(before)
    assert not (tmp_path / "exp").exists()


# ---------------------------------------------------------------- class activation maps (`cam`)


def _pictures(folder, count=2):
    paths = []
    for index in range(count):
        image = Image.new("RGB", (40, 48), "black")
        for x in range(8 + 6 * index, 20 + 6 * index):
            for y in range(10, 38):
                image.putpixel((x, y), (255, 255, 255))
        paths.append(folder / f"picture{index}.png")
        image.save(paths[-1])
    return paths


def test_cam_of_a_trained_model_on_your_images(done, tmp_path):
    from timm_compound.experiment import cam
    from timm_compound.train.models import load_trained

    _, out, _ = done
    pictures = _pictures(tmp_path)
    code, output = cli(
        "cam",
        "--run",
        out / "runs" / "base",
        "--image",
        pictures[0],
        "--image",
        pictures[1],
        "--out",
        tmp_path / "maps",
    )
    assert code == 0, output
    for picture in pictures:
        with Image.open(tmp_path / "maps" / f"{picture.stem}.cam.png") as image:
            assert image.width > 300
    # the maps' predictions are the model's own: one forward pass of the same inputs, independently
    chosen = load_trained(BASE, out / "runs" / "base" / "best.safetensors", resolution=32)
    opened = cam.read_images(pictures)
    maps = cam.compute(chosen.model, opened, resolution=32)
    assert maps.overlays.shape == (2, 32, 32, 3) and maps.overlays.min() >= 0 and maps.overlays.max() <= 1
    with torch.no_grad():
        inputs = torch.from_numpy(maps.inputs).permute(0, 3, 1, 2)
        config = chosen.model.pretrained_cfg
        normalised = (inputs - torch.tensor(config["mean"]).view(1, 3, 1, 1)) / torch.tensor(config["std"]).view(
            1, 3, 1, 1
        )
        assert chosen.model(normalised).argmax(-1).tolist() == maps.predicted
    # a timm model no rule covers, by name and weights
    code, output = cli(
        "cam",
        REFERENCE,
        "--weights",
        out / "runs" / f"ref-{REFERENCE}" / "best.safetensors",
        "--image",
        pictures[0],
        "--resolution",
        32,
        "--target",
        3,
        "--out",
        tmp_path / "ref",
    )
    assert code == 0, output
    assert (tmp_path / "ref" / "picture0.cam.png").is_file()


def test_cam_refuses_an_unreadable_image(done, tmp_path):
    _, out, _ = done
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    weights = out / "runs" / "base" / "best.safetensors"
    for image, message in ((broken, "cannot be read as an image"), (tmp_path / "missing.png", "no such image file")):
        code, output = cli(
            "cam", BASE, "--weights", weights, "--resolution", 32, "--image", image, "--out", tmp_path / "maps"
        )
        assert code == 1 and "Traceback" not in output and message in flat(output) and str(image.name) in output, output
    assert not (tmp_path / "maps").exists()
    code, output = cli("cam", BASE, "--weights", weights, "--out", tmp_path / "maps")
    assert code == 1 and "give at least one image" in output


def test_help_lists_experiment_and_cam_after_search():
    code, output = cli("--help")
    assert code == 0
    assert output.index(" search ") < output.index(" experiment ") < output.index(" cam ")


@pytest.mark.parametrize("command", ["experiment", "cam"])
def test_command_help_starts_without_torch(command):
    """The console script's --help must stay fast: the commands import torch and timm only when they run."""
    code = (
        f"import sys, timm_compound_cli\nsys.argv = ['timm-compound', {command!r}, '--help']\n"
        "try:\n    timm_compound_cli.main()\nexcept SystemExit:\n    pass\n"
        "print('IMPORTED', *[m for m in ('torch', 'timm') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: timm-compound " + command in " ".join(result.stdout.split())
    assert result.stdout.strip().splitlines()[-1] == "IMPORTED"
