"""What training and evaluation measured: one metrics.csv row per epoch, and the two results returned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch.nn as nn

# metrics.csv columns, in order (accuracies in percent, lr at the epoch's first step)
COLUMNS = (
    "epoch",
    "train_loss",
    "train_top1",
    "eval_loss",
    "top1",
    "top5",
    "lr",
    "seconds",
    "images_per_second",
    "train_images",
    "distinct_images",
)


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch: training loss/accuracy on the training batches, then loss/top-1/top-5 on the validation split.

    `images_per_second` counts training images over the training loop's time (all ranks together);
    `seconds` is the whole epoch, evaluation and checkpoint included. `train_images` is how many
    images were trained on, `distinct_images` how many different ones (equal when no sample repeats).
    """

    epoch: int
    train_loss: float
    train_top1: float
    eval_loss: float
    top1: float
    top5: float
    lr: float
    seconds: float
    images_per_second: float
    train_images: int
    distinct_images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochMetrics:
        kinds = {f.name: (int if f.type in ("int", int) else float) for f in fields(cls)}
        return cls(**{key: kinds[key](data[key]) for key in kinds})


@dataclass(frozen=True)
class EvalResult:
    """Top-1/top-5 accuracy (percent) and mean cross-entropy over a validation split."""

    top1: float
    top5: float
    loss: float
    images: int
    images_per_second: float
    resolution: int
    seconds: float
    num_classes: int

    @property
    def chance(self) -> float:
        """Top-1 (percent) of guessing: 100 / classes."""
        return 100.0 / self.num_classes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """A finished (or stopped) run: the trained model, every epoch's metrics and where the run folder is.

    `status` is "completed", or "stopped" when `on_epoch` asked to stop early. `model` holds the
    weights that were evaluated last (the EMA weights when `ema=True`); `best_epoch` is the epoch
    with the highest top-1, whose weights are `run_dir/best.safetensors`.
    """

    model: nn.Module
    history: list[EpochMetrics]
    status: str
    run_dir: Path | None
    settings: dict[str, Any]
    dataset: dict[str, Any]
    num_classes: int
    best_epoch: int
    seconds: float
    world_size: int = 1
    images: Any = None  # predictions.ImageResults of the last epoch this call evaluated (None: it trained none)

    @property
    def last(self) -> EpochMetrics:
        return self.history[-1]

    @property
    def best(self) -> EpochMetrics:
        return next(row for row in self.history if row.epoch == self.best_epoch)

    @property
    def top1(self) -> float:
        """Top-1 (percent) of the last epoch."""
        return self.last.top1

    @property
    def best_top1(self) -> float:
        return self.best.top1
