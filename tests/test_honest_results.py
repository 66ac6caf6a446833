"""Results that do not mislead: class activation maps on a stage that can localise (or a flat map flagged
with its reason), the model card of a grown model, run.json read back with its types checked, and data
with fewer than two classes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from PIL import Image
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.cli import app
from timm_compound.errors import CompoundError


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """resnet18_cs_phi0 with 3 classes and seeded random weights: enough for maps and cards."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "w.safetensors"
    safetensors.torch.save_file(tc.build(tc.plan("resnet18", 0), num_classes=3).state_dict(), str(path))
    return path


@pytest.fixture
def picture(tmp_path) -> Path:
    image = Image.new("RGB", (40, 40), "black")
    for x in range(8, 20):
        for y in range(10, 30):
            image.putpixel((x, y), (255, 255, 255))
    image.save(tmp_path / "picture.png")
    return tmp_path / "picture.png"


def run_folder(root: Path, weights: Path, resolution=32) -> Path:
    """A finished training run's folder as `train` leaves it: run.json and best.safetensors."""
    root.mkdir(parents=True)
    (root / "best.safetensors").write_bytes(weights.read_bytes())
    record = {
        "format": 1,
        "status": "completed",
        "message": None,
        "model": {
            "spec": "resnet18_cs_phi0",
            "name": "resnet18_cs_phi0",
            "plan": tc.plan("resnet18", 0).to_dict(),
            "num_classes": 3,
        },
        "dataset": {
            "name": "builtin:digits",
            "source": "scikit-learn",
            "classes": 3,
            "train_images": 30,
            "val_images": 9,
            "split": {"kind": "seeded holdout", "val_fraction": 0.2, "seed": 0},
        },
        "settings": {
            "epochs": 1,
            "batch_size": 16,
            "lr": 0.00625,
            "opt": "sgd",
            "sched": "cosine",
            "warmup_epochs": 0,
            "weight_decay": 2e-5,
            "momentum": 0.9,
            "smoothing": 0.0,
            "mixup": 0.0,
            "ema": False,
            "ema_decay": 0.9998,
            "amp": None,
            "seed": 0,
            "resolution": resolution,
            "train_resolution": resolution,
            "augment": False,
            "train_samples": None,
            "val_samples": None,
        },
        "world_size": 1,
        "epochs_completed": 1,
        "best": {"epoch": 1, "top1": 44.44, "top5": 100.0, "eval_loss": 1.05},
        "versions": {"timm_compound": "test"},
    }
    (root / "run.json").write_text(json.dumps(record))
    return root


# ---------------------------------------------------------------- class activation maps


def test_the_default_stage_is_the_last_one_that_can_localise(weights, picture, tmp_path):
    """At 32 px resnet18's stages are 8x8, 4x4, 2x2 and 1x1: the maps use stage 2 of 4 and say why."""
    from timm_compound.experiment.cam import choose_stage

    model = tc.build(tc.plan("resnet18", 0), num_classes=3)
    chosen = choose_stage(model, None, 32)
    assert (chosen.number, chosen.count, chosen.name, chosen.size) == (2, 4, "layer2", (4, 4))
    assert "stage 4 of 4 (layer4) is 1x1 at 32 px" in chosen.note and "using stage 2 of 4" in chosen.note
    assert choose_stage(model, None, 224).number == 4 and choose_stage(model, None, 224).note is None
    assert choose_stage(model, -1, 32).number == 4 and "warning: stage 4 of 4" in choose_stage(model, -1, 32).note
    code, output = cli(
        "cam",
        "resnet18_cs_phi0",
        "--weights",
        weights,
        "--image",
        picture,
        "--resolution",
        32,
        "--out",
        tmp_path / "maps",
    )
    assert code == 0 and "using stage 2 of 4 instead (pass --stage 4 to force it)" in output, output
    assert "flat" not in output and (tmp_path / "maps" / "picture.cam.png").is_file()


def test_a_forced_small_stage_warns_and_its_flat_maps_are_flagged(weights, picture, tmp_path):
    from timm_compound.experiment.cam import compute, read_images

    code, output = cli(
        "cam",
        "resnet18_cs_phi0",
        "--weights",
        weights,
        "--image",
        picture,
        "--resolution",
        32,
        "--stage",
        4,
        "--out",
        tmp_path / "maps",
    )
    assert code == 0, output
    assert "warning: stage 4 of 4 (layer4) is 1x1 at 32 px: its maps cannot localise anything" in output
    assert (
        "warning: picture.cam.png: the map is flat (constant): stage 4 of 4 (layer4, 1x1 at 32 px) has a 1x1 "
        "feature map"
    ) in output
    model = tc.build(tc.plan("resnet18", 0), num_classes=3)
    maps = compute(model, read_images([picture]), resolution=32, stage=4)
    assert maps.stage.number == 4 and maps.flat_reason(0).endswith("one value cannot show where the evidence is")
    assert float(maps.overlays[0].std()) >= 0  # drawn all the same, and flagged
    assert compute(model, read_images([picture]), resolution=32, stage=2).flat == [None]


# ---------------------------------------------------------------- the card of a grown model


def test_a_grown_models_card_names_its_source_what_grew_and_the_input_size_it_was_trained_at(weights, tmp_path):
    run = run_folder(tmp_path / "run", weights)
    code, output = cli("inherit", "resnet18_cs_phi1", "--from", run, "--out", tmp_path / "grown")
    assert code == 0, output
    card = " ".join((tmp_path / "grown" / "README.md").read_text().split())
    assert f"**Grown from the run {run} (best.safetensors)**" in card
    assert "4 new blocks start as the identity (`layer1.2`, `layer2.2`, `layer3.2`, `layer4.2`)" in card
    assert "channel sets widened by copying units (seed 0)" in card
    assert (
        "The source's weights were trained at 32 px on **builtin:digits**; top-1 44.44% on its validation split" in card
    )
    assert "it has not been trained or evaluated at 256 px (use it at 32 px, or fine-tune it)" in card
    assert "| input size | 224 → 256 (rounded); weights trained at 32 px |" in card
    assert "Untrained" not in card and "## Training" not in card


# ---------------------------------------------------------------- run.json read back


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("settings.resolution", "32 px", "settings.resolution: Input should be a valid integer"),
        ("settings.resolution", 0, "settings.resolution: Input should be greater than or equal to 1"),
        ("best.epoch", "1", "best.epoch: Input should be a valid integer"),
        ("dataset.classes", 1, "dataset.classes: Input should be greater than or equal to 2"),
        ("model.spec", None, "model.spec: Input should be a valid string"),
        ("settings", [], "settings: Input should be a valid dictionary"),
    ],
)
def test_run_json_fields_are_checked_naming_the_file_and_field(weights, tmp_path, field, value, message):
    from timm_compound.train.recorded import open_run

    run = run_folder(tmp_path / "run", weights)
    assert open_run(run).resolution == 32  # the record as written is valid
    record = json.loads((run / "run.json").read_text())
    *parents, leaf = field.split(".")
    target = record
    for key in parents:
        target = target[key]
    target[leaf] = value
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(CompoundError) as caught:
        open_run(run)
    assert str(caught.value).startswith(f"{run / 'run.json'}: {message}")


# ---------------------------------------------------------------- data with one class


def test_data_with_one_class_is_refused_before_anything_is_written(tmp_path):
    from timm_compound.train.api import evaluate, train

    for index in range(4):
        (tmp_path / "data" / "only").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (index * 50, 0, 0)).save(tmp_path / "data" / "only" / f"{index}.png")
    message = f"{tmp_path / 'data'} has only one class: classification needs at least two"
    with pytest.raises(CompoundError, match=message):
        train(
            tc.plan("resnet18", d=0.5, w=0.25, resolution=32),
            str(tmp_path / "data"),
            epochs=1,
            out=tmp_path / "run",
            progress=False,
        )
    assert not (tmp_path / "run").exists()
    with pytest.raises(CompoundError, match=message):
        evaluate("resnet18_cs_phi0", str(tmp_path / "data"), resolution=32)
