"""What a training run is asked to do: every hyperparameter, checked once, recorded in run.json.

A resumed run must ask for the same settings (only `epochs` may change), so they live in one
frozen dataclass that compares and serialises as plain data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from timm_compound.errors import CompoundError

AMP_MODES = ("bf16", "fp16")
# settings a resume may change: they do not alter what the finished epochs computed
RESUMABLE = ("epochs",)


@dataclass(frozen=True)
class Settings:
    """Hyperparameters of one run (resolutions in pixels, lr already resolved from the batch size)."""

    epochs: int
    batch_size: int
    lr: float
    opt: str
    sched: str
    warmup_epochs: int
    weight_decay: float
    momentum: float
    smoothing: float
    mixup: float
    ema: bool
    ema_decay: float
    amp: str | None
    seed: int
    resolution: int
    train_resolution: int
    augment: bool
    train_samples: int | None
    val_samples: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def differences(self, other: Settings) -> list[str]:
        """'lr: run 0.1, asked 0.05' for each setting (but the resumable ones) where `other` asks for another value."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{key}: run {mine[key]!r}, asked {theirs[key]!r}"
                for key in mine if key not in RESUMABLE and mine[key] != theirs[key]]


def default_lr(opt: str, batch_size: int, world_size: int = 1) -> float:
    """timm train.py's rule: lr_base 0.1 per 256 images, scaled linearly (sqrt for ada*/lamb optimizers)."""
    ratio = batch_size * world_size / 256
    sqrt = any(name in opt.lower() for name in ("ada", "lamb"))
    return 0.1 * (math.sqrt(ratio) if sqrt else ratio)


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CompoundError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def finite(name: str, value: Any, *, low: float = 0.0, high: float | None = None, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompoundError(f"{name} must be a finite number, got {value!r}")
    if value < low or (open_low and value == low) or (high is not None and value > high):
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        raise CompoundError(f"{name} must be {bound}{'' if high is None else f' and <= {high:g}'}, got {value!r}")
    return float(value)


def check_amp(amp: str | None, device_type: str) -> str | None:
    """None (full precision), 'bf16' (CPU or CUDA) or 'fp16' (CUDA only, with a gradient scaler)."""
    if amp in (None, "", "none", False):
        return None
    if amp not in AMP_MODES:
        raise CompoundError(f"amp must be one of {', '.join(AMP_MODES)} (or None), got {amp!r}")
    if amp == "fp16" and device_type != "cuda":
        raise CompoundError("amp='fp16' needs a CUDA device; use amp='bf16' on the CPU")
    return amp
