"""Training at real scale, checked on the CPU: each option of TrainConfig changes what it should
(drop-path, gradient accumulation, clipping, channels-last, the recipe from the rule, progressive
resizing, TensorBoard logs, torch.compile's plumbing), and `--config` / `--print-config` round-trip."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn as nn
import yaml
from rich.console import Console
from typer.testing import CliRunner

from timm_compound.cli import app
from timm_compound.hub.load import build
from timm_compound.scaling.plan import plan
from timm_compound.train.api import train
from timm_compound.train.config import TrainConfig, build_config, default_lr
from timm_compound.train.progressive import scaled_magnitude, stage_plan
from timm_compound.train.regularisation import regularisation

QUICK = dict(epochs=1, batch_size=16, train_samples=32, val_samples=16, progress=False)


def tiny_plan(resolution: int = 32):
    return plan("resnet18", d=0.5, w=0.25, resolution=resolution)


class SmallNet(nn.Module):
    """No batch norm, no dropout: gradients depend only on the images and the weights."""

    def __init__(self):
        super().__init__()
        self.num_classes = 10
        self.pretrained_cfg = {"input_size": (3, 32, 32)}
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def small_net(seed: int = 0) -> SmallNet:
    torch.manual_seed(seed)
    return SmallNet()


def test_grad_accum_2_at_batch_8_equals_batch_16():
    """One optimizer step from 2 accumulated batches of 8 is the step from one batch of 16 (same 16 images)."""
    whole, accumulated = small_net(), small_net()
    common = dict(epochs=1, train_samples=16, val_samples=16, resolution=32, weight_decay=0.0, progress=False)
    one = train(whole, batch_size=16, **common)
    two = train(accumulated, batch_size=8, grad_accum=2, **common)
    assert one.settings["lr"] == two.settings["lr"] == 0.1 * 16 / 256  # timm's rule on batch x accumulation
    for (name, a), b in zip(whole.state_dict().items(), accumulated.state_dict().values()):
        assert torch.allclose(a, b, rtol=0, atol=1e-5), name
    start = small_net()
    assert any(not torch.allclose(a, b, atol=1e-5) for a, b in zip(start.parameters(), whole.parameters()))
    unaccumulated = small_net()
    train(unaccumulated, batch_size=8, **common)  # two steps of 8: a different result (so the test can fail)
    assert any(not torch.allclose(a, b, atol=1e-5) for a, b in zip(unaccumulated.parameters(), whole.parameters()))


def test_clip_grad_bounds_the_gradient_norm():
    def last_norm(**clip):
        net = small_net()
        train(net, batch_size=16, resolution=32, epochs=1, train_samples=16, val_samples=16, progress=False, **clip)
        return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()])).item()

    assert last_norm() > 1e-3
    assert last_norm(clip_grad=1e-3) == pytest.approx(1e-3, rel=1e-4)
    assert last_norm(clip_grad=1e-4, clip_mode="value") <= 1e-4 * len(list(small_net().parameters())) ** 0.5 * 100


def test_drop_path_drops_blocks_in_training_and_none_at_eval():
    images = torch.randn(4, 3, 32, 32)

    def twice(model, training):
        model.train(training)
        with torch.no_grad():
            torch.manual_seed(1)
            first = model(images)
            torch.manual_seed(2)
            return first, model(images)

    # timm zero-initialises each residual branch's last norm: start from non-zero branches, or nothing is dropped
    dropping = build(tiny_plan(), num_classes=10, drop_path_rate=0.5, zero_init_last=False)
    plain = build(tiny_plan(), num_classes=10, zero_init_last=False)
    plain.load_state_dict(dropping.state_dict())
    c, d = twice(dropping, False)
    assert torch.equal(c, d)  # none at eval ...
    assert torch.equal(c, twice(plain, False)[0])  # ... where it is the plain model
    a, b = twice(dropping, True)
    assert not torch.allclose(a, b)  # different blocks dropped on each pass
    assert torch.equal(*twice(plain, True))  # without drop-path, training passes agree


def test_the_rule_recipe_sets_drop_path_and_the_run_records_it(tmp_path):
    base = dict(QUICK, resolution=32, train_samples=16, val_samples=16)
    result = train("efficientnet_b0_cs_phi1", out=tmp_path / "recipe", **base)
    record = json.loads((tmp_path / "recipe" / "run.json").read_text())
    assert record["regularisation"] == {
        "drop_rate": 0.25,
        "drop_rate_source": "rule schedule at phi=1",
        "drop_path": 0.2,
        "drop_path_source": "rule recipe at phi=1",
    }
    rates = [
        block.drop_path.drop_prob if hasattr(block.drop_path, "drop_prob") else 0.0
        for stage in result.model.blocks
        for block in stage
    ]
    assert result.model.drop_rate == 0.25 and rates == pytest.approx([0.2 * i / len(rates) for i in range(len(rates))])
    asked = regularisation(
        "efficientnet_b0_cs_phi1", TrainConfig(drop_path=0.0, drop_rate=0.1), phi=None, resolution=32
    )
    assert asked.model_kwargs == {"drop_rate": 0.1, "drop_path_rate": 0.0}
    assert asked.sources == {"drop_rate": "asked", "drop_path": "asked"}
    plain = train(tiny_plan(), out=tmp_path / "resnet", **base)  # resnet's rule has no recipe
    record = json.loads((tmp_path / "resnet" / "run.json").read_text())
    assert record["regularisation"]["drop_path"] == 0.0 and plain.model.drop_rate == 0.0


def test_channels_last_gives_the_same_outputs():
    model = build(tiny_plan(), num_classes=10).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        default = model(images)
        last = model.to(memory_format=torch.channels_last)(images.contiguous(memory_format=torch.channels_last))
    assert last.shape == default.shape and torch.allclose(last, default, rtol=0, atol=1e-5)


def test_channels_last_and_compile_train_and_save_plain_weights(tmp_path):
    import safetensors.torch

    result = train(
        tiny_plan(), channels_last=True, compile="default", compile_backend="eager", out=tmp_path / "run", **QUICK
    )
    assert result.settings["channels_last"] and result.settings["compile"] == "default"
    saved = safetensors.torch.load_file(tmp_path / "run" / "best.safetensors")
    assert set(saved) == set(build(tiny_plan(), num_classes=10).state_dict())  # no _orig_mod. prefix


def test_progressive_resizing_trains_in_stages_and_evaluates_at_full_size(tmp_path):
    seen = []
    model = build(tiny_plan(64), num_classes=10)
    model.register_forward_pre_hook(lambda module, args: seen.append((module.training, args[0].shape[-1])))
    console = Console(record=True, width=200)
    train(
        model,
        epochs=2,
        batch_size=16,
        train_samples=32,
        val_samples=16,
        progressive="0.5:1.0",
        progressive_stages=2,
        mixup=0.4,
        out=tmp_path / "run",
        progress="plain",
        console=console,
    )
    assert sorted(set(seen)) == [(False, 64), (True, 32), (True, 64)]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    stages = record["progressive"]
    assert [(s["stage"], s["first_epoch"], s["last_epoch"], s["train_resolution"], s["mixup"]) for s in stages] == [
        (1, 1, 1, 32, 0.2),
        (2, 2, 2, 64, 0.4),
    ]
    assert "progressive stage 1/2 (epochs 1-1): 32 px, mixup 0.2" in console.export_text()


def test_stage_plan_grows_size_and_regularisation_from_start_to_end():
    settings = TrainConfig(
        epochs=10,
        progressive=(0.5, 1.0),
        progressive_stages=4,
        aa="rand-m9-mstd0.5",
        mixup=0.8,
        cutmix=1.0,
        drop_rate=0.3,
        train_resolution=224,
    )
    stages = stage_plan(settings, minimum=32)
    assert [(s.first_epoch, s.last_epoch) for s in stages] == [(1, 2), (3, 5), (6, 7), (8, 10)]
    assert [s.train_resolution for s in stages] == [112, 152, 184, 224]
    assert [s.aa for s in stages] == ["rand-m5-mstd0.5", "rand-m6-mstd0.5", "rand-m7-mstd0.5", "rand-m9-mstd0.5"]
    assert [s.drop_rate for s in stages] == [0.15, 0.2, 0.25, 0.3]
    assert [s.mixup for s in stages] == [0.4, 0.533333, 0.666667, 0.8]
    assert scaled_magnitude("augmix-m5-w4-d2", 0.5) == "augmix-m3-w4-d2" and scaled_magnitude("v0", 0.5) == "v0"


def test_tensorboard_logs_every_epoch_and_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(
        tiny_plan(),
        epochs=2,
        batch_size=8,
        train_samples=32,
        val_samples=16,
        log_every=2,
        out=tmp_path / "run",
        progress=False,
    )
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [(e.step, e.value) for e in events.Scalars("epoch/top1")] == [
        (int(r["epoch"]), pytest.approx(float(r["top1"]))) for r in rows
    ]
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6, 8]  # every 2 of the 4 updates per epoch
    assert {"train/lr", "train/images_per_second", "epoch/eval_loss"} <= set(events.Tags()["scalars"])


def test_a_throughput_line_says_what_limits_training():
    console = Console(record=True, width=200)
    train(tiny_plan(), console=console, **{**QUICK, "progress": "plain"})
    text = console.export_text()
    # which verdict a real run gets depends on the machine's load; both are checked exactly below
    assert "throughput over the first" in text and "is the bottleneck" in text


@pytest.mark.parametrize(
    ("waiting", "verdict"),
    [
        (0.1, "the model is the bottleneck (it waited for data 10% of the time)"),
        (0.5, "data loading is the bottleneck: the model waited for data 50% of the time (raise --workers"),
    ],
)
def test_the_throughput_verdict_is_a_share_of_time_spent_waiting(waiting, verdict):
    from types import SimpleNamespace

    from timm_compound.train.engine import TrainSums
    from timm_compound.train.trainer import Loop

    said = []
    fake = SimpleNamespace(reporter=SimpleNamespace(message=said.append))
    Loop.say_throughput(fake, TrainSums(loss=0.0, correct=0.0, images=100, seconds=1.0, waiting=waiting), 5)
    assert said[0].startswith("throughput over the first 5 steps: model ") and verdict in said[0]


def test_lr_base_follows_timms_rule():
    config = TrainConfig(batch_size=64, grad_accum=4, lr_base=0.2, lr_base_size=512)
    assert default_lr(config, world_size=2) == pytest.approx(0.2 * 64 * 2 * 4 / 512)
    assert default_lr(TrainConfig(opt="lamb", batch_size=64), 1) == pytest.approx(0.1 * (64 / 256) ** 0.5)


def test_print_config_and_config_file_round_trip(tmp_path):
    runner = CliRunner()
    args = [
        "train",
        "resnet18_cs_phi0",
        "--resolution",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--train-samples",
        "32",
        "--val-samples",
        "16",
        "--grad-accum",
        "2",
        "--aa",
        "rand-m7",
        "--augment",
    ]
    printed = runner.invoke(app, [*args, "--print-config"])
    assert printed.exit_code == 0, printed.output
    settings = yaml.safe_load(printed.output)
    assert settings == {
        **TrainConfig().to_json(),
        "model": "resnet18_cs_phi0",
        "resolution": 32,
        "epochs": 1,
        "batch_size": 16,
        "train_samples": 32,
        "val_samples": 16,
        "grad_accum": 2,
        "aa": "rand-m7",
        "augment": True,
    }
    (tmp_path / "config.yaml").write_text(printed.output)
    ran = runner.invoke(app, ["train", "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert ran.exit_code == 0, ran.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"] == settings
    (tmp_path / "bad.yaml").write_text("epochs: ten\nbogus: 1\n")
    bad = runner.invoke(app, ["train", "--config", str(tmp_path / "bad.yaml")], terminal_width=400)
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    message = " ".join(bad.output.split())
    assert f"{tmp_path / 'bad.yaml'}: epochs: Input should be a valid integer" in message
    assert "bogus: not a training setting" in message


@pytest.mark.parametrize(
    "args, mode",
    [
        (["--compile"], "default"),  # alone and last
        (["--compile", "--epochs", "2"], "default"),  # alone, before another option
        (["--compile", "max-autotune"], "max-autotune"),
        (["--compile=reduce-overhead"], "reduce-overhead"),
        ([], None),
    ],
)
def test_compile_takes_its_mode_or_none(args, mode):
    printed = CliRunner().invoke(app, ["train", "resnet18_cs_phi0", *args, "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.output)["compile"] == mode


def test_a_word_after_compile_is_its_mode_and_a_wrong_one_is_refused():
    wrong = CliRunner().invoke(app, ["train", "--compile", "resnet18_cs_phi0", "--print-config"], terminal_width=400)
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    assert "--compile: Input should be 'default', 'reduce-overhead'" in wrong.output
    assert "(got 'resnet18_cs_phi0')" in wrong.output


def test_resume_from_the_folder_alone_and_extend(tmp_path):
    first = train(tiny_plan(), out=tmp_path / "run", **QUICK)
    console = Console(record=True, width=200)
    again = train(resume=tmp_path / "run", progress="plain", console=console)
    assert [row.epoch for row in again.history] == [
        1
    ] and "is already finished (1 of 1 epochs)" in console.export_text()
    longer = train(resume=tmp_path / "run", epochs=3, progress="plain", console=console)
    assert [row.epoch for row in longer.history] == [1, 2, 3] and longer.history[0] == first.history[0]
    assert "the cosine schedule is recomputed for 3 epochs from epoch 2 on" in console.export_text()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["epochs"] == record["settings"]["epochs"] == 3 and record["epochs_completed"] == 3
    with pytest.raises(Exception, match="cannot resume .* with lr: a resumed run takes every setting"):
        train(resume=tmp_path / "run", lr=0.5)
    with pytest.raises(Exception, match="with epochs 2: the run was asked for 3, and a resume can only extend a run"):
        train(resume=tmp_path / "run", epochs=2)


def test_config_errors_name_the_setting():
    with pytest.raises(Exception, match=r"train config: progressive: needs 0 < START <= END <= 1"):
        build_config(progressive="0:1")


def test_log_wandb_needs_wandb_and_logs_through_it(tmp_path, monkeypatch):
    """Never a network call: wandb absent is a clear error; a stand-in module sees the run's scalars."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(Exception, match=r"log_wandb needs Weights & Biases: pip install wandb"):
        train(tiny_plan(), log_wandb=True, out=tmp_path / "refused", **QUICK)
    assert not (tmp_path / "refused").exists()
    calls = []
    stand_in = types.SimpleNamespace(
        init=lambda **kwargs: (
            calls.append(("init", kwargs))
            or types.SimpleNamespace(
                log=lambda data: calls.append(("log", data)), finish=lambda: calls.append(("finish", None))
            )
        )
    )
    monkeypatch.setitem(sys.modules, "wandb", stand_in)
    train(tiny_plan(), log_wandb=True, out=tmp_path / "run", **QUICK)
    init = calls[0][1]
    assert init["project"] == "timm-compound" and init["config"]["log_wandb"] is True and init["name"] == "run"
    logged = [data for kind, data in calls if kind == "log"]
    assert any("epoch/top1" in data and data["epoch"] == 1 for data in logged)
    assert any("train/loss" in data for data in logged) and calls[-1][0] == "finish"


def test_the_gpu_check_runs_its_paths_on_the_cpu_and_skips_without_a_gpu():
    """benchmarks/gpu_check.py with compile (eager backend) and channels-last on one tiny model; the
    shell wrapper exits 0 saying there is no GPU (on a machine without one)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ran = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_check.py",
            "--device",
            "cpu",
            "--models",
            "resnet18_cs_phi1",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--resolution",
            "32",
            "--compile-backend",
            "eager",
            "--amp",
            "none",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode in (0, 1), ran.stderr  # 2 steps need not lower the loss; the paths must run
    assert "resnet18_cs_phi1             32  none" in ran.stdout and "True" in ran.stdout, ran.stdout
    if not torch.cuda.is_available():
        shell = subprocess.run(
            ["bash", "benchmarks/gpu_check.sh"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PY": sys.executable, "PATH": "/usr/bin:/bin"},
        )
        assert shell.returncode == 0 and "no CUDA GPU visible to torch" in shell.stdout, shell.stdout + shell.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_plan(), out=run_dir, **QUICK)
    return run_dir


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: {**r, "model": "resnet18"}, "run.json: model: Input should be a valid dictionary"),
        (lambda r: {**r, "settings": []}, "run.json: settings: Input should be a valid dictionary"),
        (
            lambda r: {**r, "config": {**r["config"], "epochs": "ten"}},
            "run.json: config: epochs: Input should be a valid integer",
        ),
        (lambda r: {k: v for k, v in r.items() if k != "dataset"}, "run.json: dataset: Field required"),
        (lambda r: {**r, "world_size": 0}, "run.json: world_size: Input should be greater than or equal to 1"),
        (
            lambda r: {**r, "model": {**r["model"], "num_classes": "10"}},
            "run.json: model.num_classes: Input should be a valid integer",
        ),
        (lambda r: "[" * 100_000, "run.json: not readable JSON: RecursionError"),
        (lambda r: {**r, "config": {**r["config"], "bogus": 1}}, "run.json: config: bogus: not a training setting"),
    ],
)
def test_a_run_json_edited_into_nonsense_is_refused_and_left_alone(finished_run, tmp_path, edit, message):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    edited = edit(record)
    (run_dir / "run.json").write_text(edited if isinstance(edited, str) else json.dumps(edited))
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "--epochs", "2"], terminal_width=400)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert message in " ".join(result.output.split())
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_compile_on_a_torch_without_it_is_refused(monkeypatch, tmp_path):
    monkeypatch.delattr(torch, "compile")
    with pytest.raises(Exception, match=r"compile needs torch.compile \(torch 2.0 or later\)"):
        train(tiny_plan(), compile="default", out=tmp_path / "run", **QUICK)
    assert not (tmp_path / "run").exists()
