"""A finished run read back: its model (plan or registered name), its best weights and what it measured,
as plain data for `evaluate`, `publish --run` and the model card (the hub layer never reads runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timm_compound.errors import CompoundError
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
            "settings": {
                key: settings[key]
                for key in (
                    "epochs",
                    "batch_size",
                    "lr",
                    "opt",
                    "sched",
                    "warmup_epochs",
                    "weight_decay",
                    "momentum",
                    "smoothing",
                    "mixup",
                    "ema",
                    "amp",
                    "augment",
                    "seed",
                )
            },
            "world_size": record.get("world_size", 1),
            "versions": record.get("versions", {}),
        }


def open_run(path: str | Path) -> RecordedRun:
    """A run folder with a completed epoch, its record's fields and its plan validated; a CompoundError
    otherwise."""
    path = Path(path)
    record = read_record(path)  # checked: the types of every field read here
    if not (path / BEST).is_file() or not record.get("best"):
        raise CompoundError(f"{path}: no epoch has completed, so the run has no {BEST}")
    plan_data = (record.get("model") or {}).get("plan")
    if plan_data is None:
        raise CompoundError(
            f"{path}: the run trained a model without a timm-compound plan; "
            f"build that model yourself and pass --weights {path / BEST}"
        )
    return RecordedRun(path, record, plan_from_config(plan_data, f"{path / RUN_JSON}: model.plan"))
