"""Progressive resizing with adaptive regularisation (EfficientNetV2, Tan & Le 2021, section 4.2).

Training is split into `progressive_stages` stages of (nearly) equal epochs. Stage i of S trains at
a fraction of the training resolution that goes linearly from START to END, rounded to 8 pixels,
and its regularisation (RandAugment magnitude, Mixup and CutMix alphas, dropout before the
classifier) goes linearly from START/END of the run's values to the run's values, so the smallest
images get the weakest regularisation. Evaluation is always at the full resolution. The stage of
an epoch is a function of the epoch alone, so a run resumed mid-stage resumes in that stage.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.train.config import TrainConfig

STEP = 8  # stage resolutions are multiples of this many pixels


@dataclass(frozen=True)
class Stage:
    stage: int  # 1-based
    first_epoch: int
    last_epoch: int
    train_resolution: int
    aa: str | None
    mixup: float
    cutmix: float
    drop_rate: float | None


def stage_plan(settings: TrainConfig, minimum: int) -> list[Stage]:
    """The stages of a run with `progressive` set (resolved settings: train_resolution in pixels)."""
    start, end = settings.progressive
    count, epochs = settings.progressive_stages, settings.epochs
    stages = []
    for index in range(count):
        t = index / (count - 1) if count > 1 else 1.0
        size_fraction = start + (end - start) * t
        strength = start / end + (1 - start / end) * t
        pixels = max(STEP, round(settings.train_resolution * size_fraction / STEP) * STEP)
        if pixels < minimum:
            raise CompoundError(
                f"progressive {start:g}:{end:g} trains stage {index + 1} at {pixels} px, below the "
                f"{minimum} px the model accepts: raise START or the training resolution"
            )
        stages.append(
            Stage(
                stage=index + 1,
                first_epoch=index * epochs // count + 1,
                last_epoch=(index + 1) * epochs // count,
                train_resolution=pixels,
                aa=scaled_magnitude(settings.aa, strength),
                mixup=round(settings.mixup * strength, 6),
                cutmix=round(settings.cutmix * strength, 6),
                drop_rate=None if settings.drop_rate is None else round(settings.drop_rate * strength, 6),
            )
        )
    return stages


def scaled_magnitude(aa: str | None, strength: float) -> str | None:
    """'rand-m9-mstd0.5' at strength 0.5 -> 'rand-m5-mstd0.5': timm reads whole magnitudes (rounded half
    up here); policies without a magnitude are unchanged."""
    if aa is None:
        return None
    return re.sub(r"(?<=-)m(\d+(?:\.\d+)?)(?=-|$)", lambda m: f"m{int(float(m[1]) * strength + 0.5)}", aa)


class Stages:
    """Applies each epoch's stage to the training data and model; does nothing without `progressive`."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages
        self.current: Stage | None = None
        self._bound: tuple | None = None

    @classmethod
    def plan(cls, settings: TrainConfig, minimum: int) -> Stages:
        return cls(stage_plan(settings, minimum) if settings.progressive is not None else [])

    def describe(self) -> list[dict[str, Any]] | None:
        return [asdict(stage) for stage in self.stages] or None

    def bind(self, data_config: dict[str, Any], settings: TrainConfig, samples: Any, parts: Any) -> None:
        """What a stage changes: the training samples' transform, the Mixup/CutMix alphas, the dropout."""
        dropouts = [m for m in parts.module.modules() if isinstance(m, nn.Dropout)]
        self._bound = (data_config, settings, samples, parts, dropouts, getattr(parts.module, "drop_rate", None))

    def of(self, epoch: int) -> Stage | None:
        return next((stage for stage in self.stages if stage.first_epoch <= epoch <= stage.last_epoch), None)

    def enter(self, epoch: int) -> Stage | None:
        """Switch to `epoch`'s stage (a new stage only: the same stage keeps its transform)."""
        stage = self.of(epoch)
        if stage is None or stage == self.current:
            return None
        from timm_compound.train.loaders import train_transform

        data_config, settings, samples, parts, dropouts, final_rate = self._bound
        samples.transform = train_transform(
            data_config, stage.train_resolution, augment=settings.augment, aa=stage.aa, reprob=settings.reprob
        )
        if parts.mixup is not None:
            parts.mixup.mixup_alpha, parts.mixup.cutmix_alpha = stage.mixup, stage.cutmix
            parts.mixup.mixup_enabled = stage.mixup > 0 or stage.cutmix > 0
        if stage.drop_rate is not None:
            set_dropout(parts.module, dropouts, final_rate, stage.drop_rate)
        self.current = stage
        return stage


def set_dropout(module: nn.Module, dropouts: list[nn.Dropout], final_rate: Any, rate: float) -> None:
    """The classifier dropout of a timm model: its `drop_rate` attribute (what forward_head reads) and the
    nn.Dropout layers built with that same rate (a ClassifierHead's)."""
    if isinstance(final_rate, (int, float)) and not isinstance(final_rate, bool):
        module.drop_rate = rate
        for layer in dropouts:
            if getattr(layer, "_final_p", layer.p) == final_rate:
                layer._final_p = final_rate
                layer.p = rate
