"""Datasets for training and evaluation: a `--data` string -> a train and a validation split.

`data` is one of:
- `builtin:digits`: the offline default (see `timm_compound.train.builtin`);
- `torch/cifar10` and `torch/cifar100` from `data_dir` in torchvision's layout (`cifar`; with
  `download=True` torchvision fetches them first), `hfds/NAME` from a dataset saved to `data_dir/NAME`
  with `datasets` (`saved_hf`), and anything else `timm.data.create_dataset` reads as a map-style
  dataset (`torch/...`, `hfds/<hub dataset>`), under `data_dir`;
- an image folder, one subfolder per class, or with `train/` and `val/` (or `validation/`) split folders.

A source without its own validation split (the built-in set, a plain folder) is split once with a
fixed seed (`SPLIT_SEED`, never the training seed), so every run and `evaluate` see the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from timm_compound.errors import CompoundError
from timm_compound.train import builtin, cifar, saved_hf
from timm_compound.train.builtin import SPLIT_SEED, VAL_FRACTION
from timm_compound.train.config import DEFAULT_DATA  # noqa: F401  (re-exported)

TIMM_PREFIXES = ("torch/", "hfds/")
STREAMING_PREFIXES = ("hfids/", "tfds/", "wds/")
TRAIN_FOLDERS = ("train", "training")
VAL_FOLDERS = ("validation", "val", "valid", "eval", "evaluation")


@dataclass
class Split:
    """A dataset returning untransformed (PIL image, class index) pairs, and which of its indices to use."""

    dataset: Dataset
    indices: list[int]

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class DataSplits:
    """The train and validation splits of one `data` source and how they were made (for run.json)."""

    train: Split
    val: Split
    num_classes: int
    description: dict[str, Any]
    augment: bool = True  # timm's training augmentation suits this data (not the 8x8 digits)
    crop_pct: float | None = None  # evaluation crop; None: the model's pretrained_cfg


def load_data(
    data: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    train_samples: int | None = None,
    val_samples: int | None = None,
    num_classes: int | None = None,
) -> DataSplits:
    """Open `data` and make its train and validation splits; every bad input is a CompoundError."""
    if not isinstance(data, str) or not data.strip():
        raise CompoundError(f"data must be a dataset name or an image folder, got {data!r}")
    if data.startswith("builtin:"):
        splits = _builtin(data)
    elif data.lower().startswith(STREAMING_PREFIXES):
        raise CompoundError(f"{data}: streaming datasets are not supported; use a folder, torch/... or hfds/...")
    elif data.lower().startswith(TIMM_PREFIXES):
        splits = _timm_named(data, data_dir, download)
    elif Path(data).expanduser().is_dir():
        splits = _folder(Path(data).expanduser())
    else:
        raise CompoundError(
            f"unknown dataset {data!r}: not an image folder, not builtin:digits, and not a timm dataset name "
            "(torch/<name> or hfds/<name>)"
        )
    check_classes(splits.num_classes, data)
    if num_classes is not None and num_classes != splits.num_classes:
        raise CompoundError(f"{data} has {splits.num_classes} classes but num_classes={num_classes} was asked for")
    splits.train = _subset(splits.train, train_samples, "train_samples", data)
    splits.val = _subset(splits.val, val_samples, "val_samples", data)
    splits.description.update(
        name=data,
        classes=splits.num_classes,
        train_images=len(splits.train),
        val_images=len(splits.val),
        train_samples=train_samples,
        val_samples=val_samples,
    )
    return splits


def check_classes(count: int, data: str) -> None:
    """At least two classes: with one, every prediction is right (top-1 100% against a chance of 100%),
    so a "trained" model would report a result that means nothing."""
    if count < 2:
        found = "no class" if count == 0 else "only one class"
        raise CompoundError(
            f"{data} has {found}: classification needs at least two (an image folder needs one subfolder per class)"
        )


def _holdout(count: int) -> tuple[list[int], list[int]]:
    """A fixed, seeded 80/20 split of `count` samples: (train indices, validation indices)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    val = max(1, round(count * VAL_FRACTION))
    return sorted(order[val:]), sorted(order[:val])


def _split_record() -> dict[str, Any]:
    return {"kind": "seeded holdout", "val_fraction": VAL_FRACTION, "seed": SPLIT_SEED}


def _builtin(data: str) -> DataSplits:
    dataset, info = builtin.load(data.removeprefix("builtin:"))
    train, val = _holdout(len(dataset))
    description = {**info, "split": _split_record()}
    return DataSplits(
        Split(dataset, train), Split(dataset, val), len(dataset.classes), description, augment=False, crop_pct=1.0
    )


def _timm_named(data: str, data_dir: str | Path | None, download: bool) -> DataSplits:
    root = Path(data_dir or Path.home() / ".cache" / "timm-compound" / "datasets").expanduser()
    name = data.split("/", 1)[1]
    if data.lower().startswith("torch/") and name.lower() in cifar.LAYOUTS:
        return _cifar(name.lower(), root, download)
    if data.lower().startswith("hfds/") and saved_hf.is_saved(root / name):
        train, val, val_name = saved_hf.load(root / name, data)
        return DataSplits(
            Split(train, list(range(len(train)))),
            Split(val, list(range(len(val)))),
            len(train.classes),
            {
                "source": f"datasets.load_from_disk({str(root / name)!r})",
                "root": str(root),
                "split": {"kind": "dataset splits", "train": "train", "val": val_name},
            },
        )
    import timm.data

    opened = []
    for split in ("train", "validation"):
        try:
            opened.append(timm.data.create_dataset(data, root=str(root), split=split, download=download))
        except (AssertionError, RuntimeError, OSError, ValueError, ImportError, KeyError) as error:
            hint = "" if download else " (pass download=True / --download to fetch it)"
            raise CompoundError(f"cannot open dataset {data} ({split}) under {root}: {error}{hint}") from None
    train, val = opened
    classes = _class_count(train, data)
    if _class_count(val, data) != classes:
        raise CompoundError(
            f"{data}: the train split has {classes} classes, the validation split {_class_count(val, data)}"
        )
    return DataSplits(
        Split(train, list(range(len(train)))),
        Split(val, list(range(len(val)))),
        classes,
        {
            "source": f"timm.data.create_dataset({data!r})",
            "root": str(root),
            "split": {"kind": "dataset splits", "train": "train", "val": "validation"},
        },
    )


def _cifar(name: str, root: Path, download: bool) -> DataSplits:
    """torchvision's CIFAR layout under `root`, read by `cifar` (no unpickling of code)."""
    layout = cifar.LAYOUTS[name]
    if download and not (root / layout.folder).is_dir():
        cifar.download(name, root)
    train, val = cifar.load_split(name, root, train=True), cifar.load_split(name, root, train=False)
    return DataSplits(
        Split(train, list(range(len(train)))),
        Split(val, list(range(len(val)))),
        layout.classes,
        {
            "source": f"{layout.title} in torchvision's layout ({root / layout.folder})",
            "root": str(root),
            "split": {"kind": "dataset splits", "train": "train", "val": "test"},
        },
    )


def _folder(path: Path) -> DataSplits:
    train_dir = next((path / name for name in TRAIN_FOLDERS if (path / name).is_dir()), None)
    val_dir = next((path / name for name in VAL_FOLDERS if (path / name).is_dir()), None)
    if train_dir is not None and val_dir is not None:
        train, val = _image_folder(train_dir), _image_folder(val_dir)
        if train.reader.class_to_idx != val.reader.class_to_idx:
            raise CompoundError(f"{path}: {train_dir.name}/ and {val_dir.name}/ hold different class folders")
        splits = (Split(train, list(range(len(train)))), Split(val, list(range(len(val)))))
        record = {"kind": "folders", "train": train_dir.name, "val": val_dir.name}
    else:
        whole = _image_folder(train_dir or path)
        if len(whole) < 2:
            raise CompoundError(f"{path}: one image cannot make a train and a validation split")
        train_idx, val_idx = _holdout(len(whole))
        splits = (Split(whole, train_idx), Split(whole, val_idx))
        record = _split_record()
    classes = len(splits[0].dataset.reader.class_to_idx)
    return DataSplits(*splits, classes, {"source": f"image folder {path.resolve()}", "split": record})


def _image_folder(path: Path) -> Dataset:
    """timm's folder dataset, with every file checked to open as an image before any training starts."""
    import timm.data

    try:
        dataset = timm.data.create_dataset("", root=str(path), split="train", search_split=False)
    except RuntimeError as error:
        raise CompoundError(f"{path}: no images found ({error})") from None
    check_images([Path(name) for name in dataset.filenames(absolute=True)], path)
    return dataset


def check_images(paths: list[Path], where: Path) -> None:
    """Every file's header must decode as an image (PIL verify): a corrupt file is refused, never skipped."""
    from PIL import Image

    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as error:
            bad.append(f"{path.relative_to(where) if path.is_relative_to(where) else path} ({type(error).__name__})")
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise CompoundError(f"{where}: {len(bad)} file(s) cannot be decoded as images: {', '.join(bad[:5])}{more}")


def _class_count(dataset: Any, data: str) -> int:
    reader = getattr(dataset, "reader", None)
    for mapping in (getattr(reader, "class_to_idx", None), getattr(dataset, "class_to_idx", None)):
        if mapping:
            return len(mapping)
    classes = getattr(dataset, "classes", None)
    if classes:
        return len(classes)
    raise CompoundError(f"{data}: cannot tell how many classes this dataset has")


def _subset(split: Split, count: int | None, name: str, data: str) -> Split:
    """The first `count` samples of a fixed seeded shuffle: the same subset in every run."""
    if count is None:
        return split
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CompoundError(f"{name} must be a positive integer, got {count!r}")
    if count > len(split):
        raise CompoundError(f"{name}={count} but {data} has only {len(split)} images in that split")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    return Split(split.dataset, sorted(split.indices[i] for i in order[:count]))
