"""A finished run read back: its model (plan or registered name), its best weights and what it measured,
as plain data for `evaluate`, `publish --run` and the model card (the hub layer never reads runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from timm_compound.errors import CompoundError, from_validation_error
from timm_compound.hub.config import plan_from_config
from timm_compound.scaling.catalog import registered
from timm_compound.scaling.plan import ScalePlan
from timm_compound.train.checkpoint import BEST
from timm_compound.train.run import RUN_JSON, read_record


@dataclass(frozen=True)
class RecordedRun:
    path: Path
    record: dict[str, Any]
    plan: ScalePlan

    @property
    def weights(self) -> Path:
        return self.path / BEST

    @property
    def name(self) -> str | None:
        """The registered variant the run trained, when its plan is that variant's own."""
        name = self.record["model"].get("name")
        return name if name in registered() else None

    @property
    def model(self) -> str | ScalePlan:
        """What to build for this run's weights: the registered name, else the recorded plan."""
        return self.name or self.plan

    @property
    def resolution(self) -> int:
        return int(self.record["settings"]["resolution"])

    def training_summary(self) -> dict[str, Any]:
        """What the model card shows: data, measured accuracy of the published (best) weights, settings."""
        record, best = self.record, self.record.get("best") or {}
        dataset, settings = record["dataset"], record["settings"]
        return {
            "dataset": dataset["name"],
            "dataset_source": dataset.get("source"),
            "classes": dataset["classes"],
            "train_images": dataset["train_images"],
            "val_images": dataset["val_images"],
            "split": dataset.get("split"),
            "train_samples": dataset.get("train_samples"),
            "val_samples": dataset.get("val_samples"),
            "epochs": record.get("epochs_completed"),
            "best_epoch": best.get("epoch"),
            "top1": best.get("top1"),
            "top5": best.get("top5"),
            "eval_loss": best.get("eval_loss"),
            "resolution": settings["resolution"],
            "train_resolution": settings["train_resolution"],
            "settings": {key: settings[key] for key in (
                "epochs", "batch_size", "lr", "opt", "sched", "warmup_epochs", "weight_decay", "momentum",
                "smoothing", "mixup", "ema", "amp", "augment", "seed")},
            "world_size": record.get("world_size", 1),
            "versions": record.get("versions", {}),
        }


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Model(_Part):
    spec: StrictStr
    name: Optional[StrictStr] = None
    plan: Optional[dict[str, Any]] = None


class _Dataset(_Part):
    name: StrictStr
    classes: StrictInt = Field(ge=2)
    train_images: StrictInt = Field(ge=0)
    val_images: StrictInt = Field(ge=1)


class _Settings(_Part):
    resolution: StrictInt = Field(ge=1)
    train_resolution: StrictInt = Field(ge=1)
    epochs: StrictInt = Field(ge=1)
    batch_size: StrictInt = Field(ge=1)
    lr: float
    opt: StrictStr
    sched: StrictStr
    seed: StrictInt
    ema: StrictBool
    augment: StrictBool


class _Best(_Part):
    epoch: StrictInt = Field(ge=1)
    top1: float
    top5: Optional[float] = None
    eval_loss: Optional[float] = None


class _Record(_Part):
    model: _Model
    dataset: _Dataset
    settings: _Settings
    best: Optional[_Best] = None
    epochs_completed: StrictInt = Field(ge=0)
    world_size: StrictInt = Field(default=1, ge=1)


def check_record(record: dict[str, Any], file: Path) -> dict[str, Any]:
    """`record` if the fields a finished run is read back by (its model, data, settings, best epoch) have
    their types; a CompoundError naming `file` and the field otherwise (never a bare int() error later)."""
    try:
        _Record.model_validate(record)
    except ValidationError as error:
        raise from_validation_error(file, error) from None
    return record


def open_run(path: str | Path) -> RecordedRun:
    """A run folder with a completed epoch, its record's fields and its plan validated; a CompoundError
    otherwise."""
    path = Path(path)
    record = check_record(read_record(path), path / RUN_JSON)
    if not (path / BEST).is_file() or not record.get("best"):
        raise CompoundError(f"{path}: no epoch has completed, so the run has no {BEST}")
    plan_data = (record.get("model") or {}).get("plan")
    if plan_data is None:
        raise CompoundError(f"{path}: the run trained a model without a timm-compound plan; "
                            f"build that model yourself and pass --weights {path / BEST}")
    return RecordedRun(path, record, plan_from_config(plan_data, f"{path / RUN_JSON}: model.plan"))
