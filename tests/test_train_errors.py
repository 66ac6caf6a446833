"""Bad input to train/evaluate: each a CompoundError that says what is wrong, raised before training
(and before anything is written), plus image folders that do work."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.scaling.plan import plan
from timm_compound.train.api import evaluate, train

QUICK = dict(epochs=1, batch_size=16, progress=False)


def tiny_plan():
    return plan("resnet18", d=0.5, w=0.25, resolution=32)


def image_folder(root, classes=("a", "b"), per_class=6):
    """PNG digits from scikit-learn's set, one subfolder per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        images = digits.images[digits.target == label][:per_class]
        for i, pixels in enumerate(images):
            Image.fromarray(np.uint8(pixels * 15)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "data, message",
    [
        ("no-such-dataset", "unknown dataset 'no-such-dataset': not an image folder, not builtin:digits"),
        ("builtin:cifar", "unknown built-in dataset 'builtin:cifar'; built in: builtin:digits"),
        ("torch/not-a-dataset", "cannot open dataset torch/not-a-dataset (train)"),
        ("tfds/mnist", "tfds/mnist: streaming datasets are not supported"),
    ],
)
def test_unknown_datasets_are_refused(tmp_path, data, message):
    with pytest.raises(CompoundError) as caught:
        train(tiny_plan(), data, out=tmp_path / "run", **QUICK)
    assert message in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_a_folder_without_images_is_refused(tmp_path):
    (tmp_path / "data" / "cats").mkdir(parents=True)
    (tmp_path / "data" / "cats" / "notes.txt").write_text("not an image")
    with pytest.raises(CompoundError, match=r"data: no images found \(Found 0 images"):
        train(tiny_plan(), str(tmp_path / "data"), **QUICK)


def test_images_that_cannot_be_decoded_are_named(tmp_path):
    folder = image_folder(tmp_path / "data")
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (folder / "b" / "empty.jpg").write_bytes(b"")
    with pytest.raises(CompoundError) as caught:
        train(tiny_plan(), str(folder), **QUICK)
    text = str(caught.value)
    assert text.startswith(f"{folder}: 2 file(s) cannot be decoded as images: ")
    assert "a/broken.png (UnidentifiedImageError)" in text and "b/empty.jpg (UnidentifiedImageError)" in text


def test_an_image_folder_trains_with_a_seeded_holdout_or_its_own_split_folders(tmp_path):
    flat = image_folder(tmp_path / "flat")
    result = train(tiny_plan(), str(flat), batch_size=4, epochs=1, progress=False)
    assert result.num_classes == 2
    assert (result.dataset["train_images"], result.dataset["val_images"]) == (10, 2)  # 12 images, 20% held out
    assert result.dataset["split"]["kind"] == "seeded holdout"
    image_folder(tmp_path / "split" / "train", per_class=4)
    image_folder(tmp_path / "split" / "val", per_class=2)
    result = train(tiny_plan(), str(tmp_path / "split"), batch_size=4, epochs=1, progress=False)
    assert (result.dataset["train_images"], result.dataset["val_images"]) == (8, 4)
    assert result.dataset["split"] == {"kind": "folders", "train": "train", "val": "val"}


def test_split_folders_with_different_classes_are_refused(tmp_path):
    image_folder(tmp_path / "d" / "train", classes=("a", "b"), per_class=2)
    image_folder(tmp_path / "d" / "val", classes=("a", "c"), per_class=2)
    with pytest.raises(CompoundError, match="train/ and val/ hold different class folders"):
        train(tiny_plan(), str(tmp_path / "d"), **QUICK)


def test_a_class_count_that_contradicts_the_data_is_refused():
    with pytest.raises(CompoundError, match="builtin:digits has 10 classes but num_classes=5 was asked for"):
        train(tiny_plan(), num_classes=5, **QUICK)
    import timm_compound.hub.load as load

    model = load.build(tiny_plan(), num_classes=7)
    with pytest.raises(
        CompoundError, match=r"the model has 7 classes but the dataset has 10: call model.reset_classifier\(10\)"
    ):
        train(model, **QUICK)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(train_resolution=16),
            "train_resolution 16 px is below the 32 px resnet18 d=0.5 w=0.25 r=1 accepts (rule resnet.yaml's resolution.min)",
        ),
        (dict(train_resolution=0.25), "train_resolution 8 px is below the 32 px"),
        (dict(resolution=24), "resolution 24 px is below the 32 px"),
        (dict(train_resolution="half"), "train_resolution: must be pixels (160) or a fraction (0.5), got 'half'"),
        (dict(train_resolution=1.5), "train_resolution: as a fraction of the resolution must be in (0, 1], got 1.5"),
    ],
)
def test_a_resolution_below_what_the_model_accepts_is_refused(kwargs, message):
    with pytest.raises(CompoundError) as caught:
        train(tiny_plan(), **QUICK, **kwargs)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs=0), "epochs: Input should be greater than or equal to 1 (got 0)"),
        (dict(batch_size=2000), "batch_size 2000 x 1 process(es) is more than the 1438 training images"),
        (dict(lr=float("nan")), "lr: Input should be a finite number (got nan)"),
        (dict(lr=-1.0), "lr: Input should be greater than 0 (got -1.0)"),
        (dict(amp="fp16"), "amp='fp16' needs a CUDA device; use amp='bf16' on the CPU"),
        (dict(amp="fp8"), "amp: Input should be 'bf16' or 'fp16' (got 'fp8')"),
        (dict(device="cuda"), "device 'cuda' asked for, but torch sees no CUDA GPU"),
        (dict(opt="nosuchopt"), "optimizer 'nosuchopt'"),
        (dict(sched="nosuchsched"), "scheduler 'nosuchsched'"),
        (dict(mixup=0.2, batch_size=15), "mixup and cutmix need an even batch_size, got 15"),
        (dict(cutmix=1.0, batch_size=15), "mixup and cutmix need an even batch_size, got 15"),
        (dict(grad_accum=0), "grad_accum: Input should be greater than or equal to 1 (got 0)"),
        (
            dict(progressive="0.5:1.0", progressive_stages=5, epochs=3),
            "progressive_stages 5 is more than the 3 epoch(s): every stage needs at least one epoch",
        ),
        (dict(progressive="1.0:0.5"), "progressive: needs 0 < START <= END <= 1"),
        (
            dict(progressive="0.1:1.0", progressive_stages=2, epochs=2),
            "progressive 0.1:1 trains stage 1 at 8 px, below the 32 px",
        ),
        (dict(compile="fast"), "compile: Input should be 'default', 'reduce-overhead'"),
        (dict(compile="default", compile_backend="nosuch"), "compile_backend 'nosuch' is not one torch.compile knows"),
        (dict(clip_grad=0.0), "clip_grad: Input should be greater than 0 (got 0.0)"),
        (
            dict(aa="rand-m9"),
            "aa and reprob are training augmentations, and builtin:digits trains without augmentation by default",
        ),
        (
            dict(augment=False, reprob=0.25),
            "aa and reprob are training augmentations: they cannot apply with augment off",
        ),
        (dict(augment=True, aa="bogus-m9"), "aa 'bogus-m9' is not an augmentation timm knows"),
        (dict(drop_rate=1.0), "drop_rate: Input should be less than 1 (got 1.0)"),
        (dict(bogus=1), "bogus: not a training setting (the settings are: model, phi,"),
        (dict(train_samples=5000), "train_samples=5000 but builtin:digits has only 1438 images in that split"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    if kwargs.get("device") == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    with pytest.raises(CompoundError) as caught:
        train(tiny_plan(), **{**QUICK, **kwargs})
    assert message in str(caught.value)


def test_an_unknown_model_is_refused():
    with pytest.raises(UnknownModelError, match="'no_such_model' is neither a registered variant nor a base"):
        train("no_such_model", **QUICK)


def test_an_output_folder_that_cannot_be_written_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    trained = []
    with pytest.raises(CompoundError, match=f"cannot write the run folder {blocker / 'run'}: {blocker} is a file"):
        train(tiny_plan(), out=blocker / "run", on_epoch=lambda *a: trained.append(a), **QUICK)
    assert trained == []
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(CompoundError, match=f"run folder {used} is not empty; choose an empty or new folder"):
        train(tiny_plan(), out=used, **QUICK)
    assert [p.name for p in used.iterdir()] == ["keep.txt"]


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(CompoundError, match=f"{tmp_path} is not a run folder: it has no run.json"):
        train(tiny_plan(), resume=tmp_path, **QUICK)
    with pytest.raises(CompoundError, match="resume=True continues the run in `out`: give out as well"):
        train(tiny_plan(), resume=True, **QUICK)


def test_evaluate_refuses_pickles_and_mismatched_weights(tmp_path):
    import safetensors.torch
    import torch

    pickle = tmp_path / "model.pth"
    torch.save({}, pickle)
    with pytest.raises(CompoundError, match="model.pth is not a .safetensors file; timm-compound never unpickles"):
        evaluate(tiny_plan(), weights=pickle)
    import timm_compound.hub.load as load

    other = tmp_path / "other.safetensors"
    safetensors.torch.save_file(
        load.build(plan("resnet18", d=0.5, w=0.5, resolution=32), num_classes=10).state_dict(), other
    )
    with pytest.raises(
        CompoundError, match="the tensors do not match the model resnet18 d=0.5 w=0.25 r=1: shape mismatch"
    ):
        evaluate(tiny_plan(), weights=other)
    five = tmp_path / "five.safetensors"
    safetensors.torch.save_file(load.build(tiny_plan(), num_classes=5).state_dict(), five)
    with pytest.raises(CompoundError, match="five.safetensors has 5 classes but builtin:digits has 10"):
        evaluate(tiny_plan(), weights=five)
