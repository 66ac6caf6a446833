"""`timm-compound train`, `eval` and `publish --run` on the command line."""

from __future__ import annotations

import csv
import json
import os
import uuid

import pytest
import safetensors.torch
import timm
import torch
from typer.testing import CliRunner

from timm_compound.cli import app

runner = CliRunner()
TRAIN = [
    "train",
    "resnet18_cs_phi0",
    "--resolution",
    "32",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--train-samples",
    "128",
    "--val-samples",
    "64",
]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(app, [*TRAIN, "--out", str(run_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return run_dir, result.output, float(rows[0]["top1"])


def test_train_prints_progress_lines_and_a_summary_beside_chance(cli_run):
    run_dir, output, top1 = cli_run
    assert "epoch 1/1 [4/4] loss" in output  # plain lines: stdout is not a terminal
    assert "epoch 1/1: train loss" in output
    assert (
        f"completed: resnet18_cs_phi0 on builtin:digits, 1 epoch(s): top-1 {top1:.2f}% "
        f"(best {top1:.2f}% at epoch 1; chance 10.0%) -> {run_dir}"
    ) in " ".join(output.split())
    record = json.loads((run_dir / "run.json").read_text())
    assert record["model"]["spec"] == "resnet18_cs_phi0" and record["model"]["plan"]["resolution_source"] == "override"


def test_quiet_prints_only_the_summary(tmp_path):
    result = runner.invoke(
        app, [*TRAIN, "--train-samples", "32", "--val-samples", "16", "--quiet", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" not in result.output and result.output.startswith("completed: resnet18_cs_phi0")


def test_eval_reproduces_the_runs_top1(cli_run):
    run_dir, _, top1 = cli_run
    result = runner.invoke(app, ["eval", "--run", str(run_dir), "--val-samples", "64"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"top-1 {top1:.2f}% (chance 10.0%)") and "on 64 images at 32 px" in result.output
    result = runner.invoke(
        app,
        [
            "eval",
            "resnet18_cs_phi0",
            "--weights",
            str(run_dir / "best.safetensors"),
            "--resolution",
            "32",
            "--val-samples",
            "64",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)
    assert (measured["top1"], measured["images"], measured["resolution"], measured["chance"]) == (top1, 64, 32, 10.0)


def test_publish_run_puts_the_measured_accuracy_in_the_card(cli_run, tmp_path):
    run_dir, _, top1 = cli_run
    folder = tmp_path / "published"
    result = runner.invoke(app, ["publish", "--run", str(run_dir), "--to-dir", str(folder)])
    assert result.exit_code == 0, result.output
    card = (folder / "README.md").read_text()
    assert "## Training" in card and "**builtin:digits** (scikit-learn" in card
    assert f"| top-1 | {top1:.2f}% (chance 10.0%) |" in card
    assert "| weights from epoch | 1 of 1 (the best top-1) |" in card and "| input size | 32 px |" in card
    assert "Settings: epochs 1, batch_size 32, lr 0.0125, opt sgd" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32] and config["num_classes"] == 10
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    best = safetensors.torch.load_file(run_dir / "best.safetensors")
    assert all(torch.equal(best[key], value) for key, value in model.state_dict().items())


def test_publish_run_to_the_hub(cli_run, hub):
    run_dir, _, top1 = cli_run
    repo = f"org/trained-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(
        app, ["publish", "--run", str(run_dir), "--repo", repo, "--endpoint", os.environ["HF_ENDPOINT"]]
    )
    assert result.exit_code == 0, result.output
    card = hub.files(repo)["README.md"].decode()
    assert f"| top-1 | {top1:.2f}% (chance 10.0%) |" in card


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["publish", "resnet18_cs_phi1", "--run", "{run}", "--to-dir", "x"],
            "trained resnet18_cs_phi0 (not a registered variant at its own plan), not resnet18_cs_phi1",
        ),
        (
            ["publish", "--run", "{run}", "--weights", "{run}/best.safetensors", "--to-dir", "x"],
            "give either --run or --weights",
        ),
        (["publish", "--to-dir", "x"], "give a registered variant NAME, or --run RUN"),
        (["eval"], "give NAME --weights FILE, or --run RUN"),
        (["eval", "--run", "{run}", "--weights", "{run}/best.safetensors"], "give either --run or --weights"),
        (
            ["train", "--resume", "{run}", "--lr", "0.5"],
            "--resume takes every setting from {run}/run.json; --lr cannot be given with it (only a larger --epochs,",
        ),
        (
            ["train", "--resume", "{run}", "--epochs", "0"],
            "resuming {run}: epochs: Input should be greater than or equal to 1",
        ),
        ([*TRAIN, "--out", "{run}"], "run folder {run} is not empty; pass resume to continue it"),
        (
            [*TRAIN, "--train-resolution", "half"],
            "--train-resolution: must be pixels (160) or a fraction (0.5), got 'half'",
        ),
        (
            [*TRAIN, "--grad-accum", "0"],
            "train options: --grad-accum: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            ["train", "resnet18_cs_phi0", "--phi", "2"],
            "resnet18_cs_phi0 is registered at phi=0; give its base (resnet18) to choose phi",
        ),
        (["train", "no_such_model"], "'no_such_model' is neither a registered variant nor a base"),
    ],
)
def test_cli_errors_exit_1_with_one_line(cli_run, args, message):
    run_dir, _, _ = cli_run
    result = runner.invoke(app, [arg.replace("{run}", str(run_dir)) for arg in args], terminal_width=400)
    assert result.exit_code == 1, result.output
    assert message.replace("{run}", str(run_dir)) in " ".join(result.output.split())
    assert "Traceback" not in result.output
