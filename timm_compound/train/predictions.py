"""Per-image results of an evaluation: for every validation image, its class and the model's prediction.

Two models evaluated on the same split can then be compared image by image (a paired test, as
`timm_compound.experiment.statistics` does), not only by their accuracies. A run folder keeps the
last completed epoch's as `predictions.csv` (image, label, predicted, correct, epoch), rewritten
with metrics.csv after every epoch, so the two always describe the same weights. `image` is the
position in the validation split (the same images in the same order for every run on the same
data and `val_samples`).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from timm_compound.errors import CompoundError

PREDICTIONS = "predictions.csv"
COLUMNS = ("image", "label", "predicted", "correct", "epoch")


@dataclass(frozen=True)
class ImageResults:
    """Position in the split, true class and predicted class of every evaluated image (sorted by position)."""

    images: np.ndarray  # int64 positions in the validation split
    labels: np.ndarray  # int64 true classes
    predicted: np.ndarray  # int64 predicted classes (the top-1)
    epoch: int = 0  # the epoch whose weights were evaluated (0: not from a training)

    @property
    def correct(self) -> np.ndarray:
        """1 where the prediction is right, else 0 (int8), image by image."""
        return (self.labels == self.predicted).astype(np.int8)

    @property
    def top1(self) -> float:
        """Percent right: what metrics.csv reports as top1 for the same epoch."""
        return 100.0 * float(self.correct.mean()) if len(self.images) else 0.0

    @classmethod
    def merged(cls, parts: list[tuple[list[int], list[int], list[int]]], epoch: int = 0) -> ImageResults:
        """One result from each rank's (images, labels, predicted) lists, sorted by image position."""
        images = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts]) if parts else np.zeros(0, np.int64)
        labels = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts]) if parts else np.zeros(0, np.int64)
        predicted = (
            np.concatenate([np.asarray(p[2], dtype=np.int64) for p in parts]) if parts else np.zeros(0, np.int64)
        )
        order = np.argsort(images, kind="stable")
        return cls(images[order], labels[order], predicted[order], epoch)


def write(run_dir: Path, results: ImageResults) -> Path:
    """RUN/predictions.csv, written beside and renamed into place (a kill never leaves half a file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    correct = results.correct
    for row in zip(results.images.tolist(), results.labels.tolist(), results.predicted.tolist(), correct.tolist()):
        writer.writerow([*row, results.epoch])
    path = Path(run_dir) / PREDICTIONS
    partial = path.with_name(path.name + ".partial")
    partial.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(partial, path)
    return path


def read(run_dir: Path) -> ImageResults:
    """A run folder's predictions.csv; a missing or damaged file is a CompoundError naming it."""
    path = Path(run_dir) / PREDICTIONS
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if rows and set(COLUMNS) - set(rows[0]):
            raise ValueError(f"columns {', '.join(COLUMNS)} expected")
        images = np.array([int(row["image"]) for row in rows], dtype=np.int64)
        labels = np.array([int(row["label"]) for row in rows], dtype=np.int64)
        predicted = np.array([int(row["predicted"]) for row in rows], dtype=np.int64)
        epochs = {int(row["epoch"]) for row in rows}
    except FileNotFoundError:
        raise CompoundError(f"{path}: no per-image results (a run written before they were recorded)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise CompoundError(f"{path}: not a readable per-image results file ({error})") from None
    if len(epochs) > 1:
        raise CompoundError(f"{path}: rows of several epochs ({sorted(epochs)}): a damaged file")
    return ImageResults(images, labels, predicted, epochs.pop() if epochs else 0)


def exists(run_dir: Path) -> bool:
    return (Path(run_dir) / PREDICTIONS).is_file()
