"""`hfds/NAME` from a Hugging Face dataset saved to disk (`DatasetDict.save_to_disk(DATA_DIR/NAME)`).

Offline machines and clusters keep datasets this way; `datasets.load_dataset` (what timm's hfds
reader calls) does not read such a folder, `datasets.load_from_disk` does. The image column is the
one whose feature is an `Image`, the label column the `ClassLabel` one; the validation split is
`validation`, `val` or `test`, in that order of preference. Needs the optional `datasets` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from timm_compound.errors import CompoundError

VAL_SPLITS = ("validation", "val", "test")


def is_saved(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file()


class SavedSplit(Dataset):
    """(PIL image, class index) pairs from one split; `classes` names the classes."""

    def __init__(self, split: Any, image_column: str, label_column: str, classes: list[str]):
        self.split, self.image_column, self.label_column, self.classes = split, image_column, label_column, classes

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        row = self.split[index]
        return row[self.image_column].convert("RGB"), int(row[self.label_column])


def load(folder: Path, name: str) -> tuple[SavedSplit, SavedSplit, str]:
    """(train split, validation split, the validation split's name) of a saved DatasetDict."""
    try:
        import datasets
    except ImportError:
        raise CompoundError(
            f"{name}: {folder} holds a saved Hugging Face dataset, and reading it needs the "
            "datasets package: pip install 'timm-compound[hfds]'"
        ) from None
    try:
        saved = datasets.load_from_disk(str(folder))
    except Exception as error:
        raise CompoundError(f"{folder}: cannot read the saved dataset ({type(error).__name__}: {error})") from None
    if not isinstance(saved, datasets.DatasetDict) or "train" not in saved:
        raise CompoundError(
            f"{folder}: a saved DatasetDict with a 'train' split is needed "
            f"(found splits: {', '.join(getattr(saved, 'keys', lambda: [])()) or 'none'})"
        )
    val_name = next((split for split in VAL_SPLITS if split in saved), None)
    if val_name is None:
        raise CompoundError(f"{folder}: no validation split ({', '.join(VAL_SPLITS)}); found {', '.join(saved)}")
    features = saved["train"].features
    images = [key for key, feature in features.items() if isinstance(feature, datasets.Image)]
    labels = [key for key, feature in features.items() if isinstance(feature, datasets.ClassLabel)]
    if len(images) != 1 or len(labels) != 1:
        raise CompoundError(
            f"{folder}: needs exactly one Image column and one ClassLabel column "
            f"(found images {images or 'none'}, labels {labels or 'none'})"
        )
    classes = list(features[labels[0]].names)
    if saved[val_name].features != features:
        raise CompoundError(f"{folder}: the train and {val_name} splits have different columns")
    return (
        SavedSplit(saved["train"], images[0], labels[0], classes),
        SavedSplit(saved[val_name], images[0], labels[0], classes),
        val_name,
    )
