"""Resume: a training process killed with SIGKILL in the middle of an epoch, then resumed from its
folder alone, ends with exactly the metrics and weights of an uninterrupted run (same seed, same CPU).
Every RNG and every training option is in use: timm's augmentation with RandAugment and random erasing
(python random + torch), Mixup and CutMix (numpy), drop-path and dropout (torch), EMA, gradient
accumulation and clipping, channels-last, and progressive resizing (the kill lands in stage 2)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import torch

from timm_compound.scaling.plan import plan
from timm_compound.train.api import train

SETTINGS = dict(
    epochs=2,
    batch_size=8,
    train_samples=256,
    val_samples=64,
    augment=True,
    aa="rand-m9-mstd0.5",
    reprob=0.25,
    mixup=0.2,
    cutmix=1.0,
    ema=True,
    drop_path=0.1,
    drop_rate=0.1,
    grad_accum=2,
    clip_grad=1.0,
    channels_last=True,
    progressive="0.5:1.0",
    progressive_stages=2,
    resolution=64,
)
CHILD = f"""
import sys
from timm_compound.scaling.plan import plan
from timm_compound.train.api import train
train(plan("resnet18", d=0.5, w=0.25, resolution=32), out=sys.argv[1], progress="plain", **{SETTINGS!r})
"""


def tiny_plan():
    return plan("resnet18", d=0.5, w=0.25, resolution=32)


def metrics_without_timing(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [
            {k: v for k, v in row.items() if k not in ("seconds", "images_per_second")}
            for row in csv.DictReader(handle)
        ]


def kill_during_epoch_2(run_dir) -> list[str]:
    """Start the run in a child process; SIGKILL it at its first progress line of epoch 2."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.rstrip())
            if line.startswith("epoch 2/2 ["):
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL, "\n".join(lines)
    return lines


def test_a_run_killed_mid_epoch_resumes_to_the_same_metrics_and_weights(tmp_path):
    killed = tmp_path / "killed"
    lines = kill_during_epoch_2(killed)
    assert any(line.startswith("epoch 1/2: train loss") for line in lines)
    # the kill landed inside epoch 2: one epoch recorded, its checkpoint complete, the run still "running"
    assert [row["epoch"] for row in metrics_without_timing(killed)] == ["1"]
    assert torch.load(killed / "last" / "state.pt", weights_only=True)["epoch"] == 1
    assert json.loads((killed / "run.json").read_text())["status"] == "running"

    resumed = train(resume=killed, progress=False)  # the folder alone: every setting from its run.json
    reference = tmp_path / "reference"
    uninterrupted = train(tiny_plan(), out=reference, progress=False, **SETTINGS)

    assert metrics_without_timing(killed) == metrics_without_timing(reference)
    assert [row.epoch for row in resumed.history] == [1, 2]
    assert [row.top1 for row in resumed.history] == [row.top1 for row in uninterrupted.history]
    assert json.loads((killed / "run.json").read_text())["progressive"][1]["train_resolution"] == 64
    for name in ("best.safetensors", "last/model.safetensors", "last/ema.safetensors"):
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
    assert json.loads((killed / "run.json").read_text())["status"] == "completed"
    assert not (killed / "last.tmp").exists() and not (killed / "last.old").exists()
