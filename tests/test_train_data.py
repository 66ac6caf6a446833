"""Data at scale, offline: CIFAR-10/100 in torchvision's folder layout (written here in that exact format),
a dataset saved to disk with `datasets`, and the refusals for missing batches and tampered pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from timm_compound.errors import CompoundError
from timm_compound.scaling.plan import plan
from timm_compound.train.api import train
from timm_compound.train.data import load_data

QUICK = dict(epochs=1, batch_size=8, progress=False)


def tiny_plan():
    return plan("resnet18", d=0.5, w=0.25, resolution=32)


def _batch(path, count, classes, labels_key, seed):
    rng = np.random.default_rng(seed)
    entry = {
        "batch_label": f"batch {seed}",
        "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        labels_key: [int(x) for x in rng.integers(0, classes, count)],
        "filenames": [f"{i}.png" for i in range(count)],
    }
    path.write_bytes(pickle.dumps(entry, protocol=2))


def write_cifar10(root, per_batch=8, test=16):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2))
    for index in range(1, 6):
        _batch(folder / f"data_batch_{index}", per_batch, 10, "labels", index)
    _batch(folder / "test_batch", test, 10, "labels", 99)
    return folder


def test_cifar10_from_a_folder_in_torchvisions_layout_trains(tmp_path):
    write_cifar10(tmp_path)
    splits = load_data("torch/cifar10", data_dir=tmp_path)
    assert (splits.num_classes, len(splits.train), len(splits.val)) == (10, 40, 16)
    image, label = splits.train.dataset[0]
    assert image.size == (32, 32) and image.mode == "RGB" and 0 <= label < 10
    assert splits.train.dataset.classes[0] == "airplane"
    result = train(tiny_plan(), "torch/cifar10", data_dir=tmp_path, **QUICK)
    assert result.dataset["train_images"] == 40 and result.dataset["val_images"] == 16
    assert result.dataset["split"] == {"kind": "dataset splits", "train": "train", "val": "test"}


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}, protocol=2))
    _batch(folder / "train", 24, 100, "fine_labels", 1)
    _batch(folder / "test", 8, 100, "fine_labels", 2)
    splits = load_data("torch/cifar100", data_dir=tmp_path)
    assert (splits.num_classes, len(splits.train), len(splits.val)) == (100, 24, 8)
    expected = pickle.loads((folder / "train").read_bytes())["fine_labels"]
    assert [splits.train.dataset[i][1] for i in range(24)] == expected


def test_a_missing_batch_is_named_and_nothing_is_written(tmp_path):
    folder = write_cifar10(tmp_path / "data")
    (folder / "data_batch_3").unlink()
    with pytest.raises(CompoundError, match="cifar-10-batches-py: data_batch_3 is missing"):
        train(tiny_plan(), "torch/cifar10", data_dir=tmp_path / "data", out=tmp_path / "run", **QUICK)
    assert not (tmp_path / "run").exists()
    with pytest.raises(CompoundError, match=r"CIFAR-10 not found under .*nothing.*pass download=True"):
        load_data("torch/cifar10", data_dir=tmp_path / "nothing")


def test_a_tampered_batch_cannot_run_code(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(
        CompoundError, match=r"data_batch_2: not a CIFAR batch file \(UnpicklingError: refused posix.system"
    ):
        load_data("torch/cifar10", data_dir=tmp_path)
    assert not marker.exists()


def test_wrong_shapes_are_refused(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}))
    with pytest.raises(CompoundError, match="test_batch: data must be a uint8 array of rows of 3072 values"):
        load_data("torch/cifar10", data_dir=tmp_path)


def test_a_dataset_saved_to_disk_with_datasets_trains(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the optional hfds extra (datasets) is not installed")
    from PIL import Image

    rng = np.random.default_rng(0)
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})

    def split(count):
        images = [Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)) for _ in range(count)]
        return datasets.Dataset.from_dict({"img": images, "label": [i % 3 for i in range(count)]}, features=features)

    datasets.DatasetDict({"train": split(24), "validation": split(9)}).save_to_disk(str(tmp_path / "shapes"))
    splits = load_data("hfds/shapes", data_dir=tmp_path)
    assert (splits.num_classes, len(splits.train), len(splits.val)) == (3, 24, 9)
    assert splits.train.dataset[4][1] == 1 and splits.train.dataset[4][0].mode == "RGB"
    result = train(tiny_plan(), "hfds/shapes", data_dir=tmp_path, **QUICK)
    assert result.num_classes == 3 and result.dataset["split"]["val"] == "validation"
