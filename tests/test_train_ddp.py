"""Distributed training for real: `torchrun --nproc_per_node 2 -m timm_compound train ...`, two CPU
processes with gloo. Every training image is seen once per epoch across the ranks, the metrics are
reduced, and only rank 0 prints and writes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys


def test_torchrun_two_cpu_processes_train_each_sample_once_and_write_once(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "timm_compound",
        "train",
        "resnet18",
        "--phi",
        "-6",
        "--resolution",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--train-samples",
        "256",
        "--val-samples",
        "101",
        "--out",
        str(run_dir),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    record = json.loads((run_dir / "run.json").read_text())
    assert record["world_size"] == 2 and record["status"] == "completed"
    assert record["settings"]["lr"] == 0.1 * 32 * 2 / 256  # timm's rule on the global batch
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    # 256 images, 2 ranks x 4 batches of 32: every image once per epoch, counted across both ranks
    assert [(r["epoch"], r["train_images"], r["distinct_images"]) for r in rows] == [
        ("1", "256", "256"),
        ("2", "256", "256"),
    ]
    # the validation split is sharded without padding (51 + 50 images) and the counts summed: no image twice
    top1 = [float(r["top1"]) for r in rows]
    assert all(round(value * 101 / 100, 6).is_integer() for value in top1), top1
    # written once: one summary per epoch, one completion line, one set of files
    assert result.stdout.count("epoch 1/2: train loss") == 1 and result.stdout.count("epoch 2/2: train loss") == 1
    assert result.stdout.count("completed: resnet18 phi=-6 on builtin:digits") == 1
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "best.safetensors",
        "curves.png",
        "last",
        "metrics.csv",
        "predictions.csv",
        "run.json",
        "tensorboard",
    ]
    # the per-image results gathered from both ranks' shards: every validation image once, in split order
    with open(run_dir / "predictions.csv", newline="") as handle:
        images = [int(row["image"]) for row in csv.DictReader(handle)]
    assert images == list(range(101))
