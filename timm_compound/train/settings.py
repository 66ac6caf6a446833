"""Small checks shared by the training, experiment and search entry points (the settings themselves
are declared once, in `timm_compound.train.config.TrainConfig`)."""

from __future__ import annotations

import math
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.train.config import AMP_MODES


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
