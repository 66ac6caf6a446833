"""`TrainConfig`: every training setting, declared once, with its default, range and help text.

The Python API takes it (or keywords that build it), the CLI generates its options from it,
run.json stores it whole, and `train --resume RUN` rebuilds the run from it alone. `experiment` and
`search` pass it through to every run. It imports no torch, so `--help` stays light.

Fields fall in two kinds: what a run computes (compared when a run is resumed) and where it runs
(`PLACE`: device, loader processes, where data lives), which a resume may change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from timm_compound.errors import CompoundError

DEFAULT_DATA = "builtin:digits"
AMP_MODES = ("bf16", "fp16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CLIP_MODES = ("norm", "value", "agc")

# where a run runs, not what it computes: a resumed run may change these
PLACE = ("device", "workers", "data_dir", "download")
# may change on resume as well: a larger `epochs` extends a run (its schedule recomputed)
EXTENDABLE = ("epochs",)
# CLI option groups (rich help panels), by field
PANELS = {
    "Model": ("model", "phi", "norm", "drop_rate", "drop_path"),
    "Data": (
        "data",
        "num_classes",
        "train_samples",
        "val_samples",
        "resolution",
        "train_resolution",
        "augment",
        "aa",
        "reprob",
        "mixup",
        "cutmix",
        "smoothing",
        "progressive",
        "progressive_stages",
    ),
    "Optimisation": (
        "epochs",
        "batch_size",
        "grad_accum",
        "lr",
        "lr_base",
        "lr_base_size",
        "opt",
        "sched",
        "warmup_epochs",
        "weight_decay",
        "momentum",
        "clip_grad",
        "clip_mode",
        "ema",
        "ema_decay",
        "seed",
    ),
    "Speed": ("amp", "channels_last", "compile", "compile_backend"),
    "Logging": ("log_every", "log_wandb"),
    "Where it runs": PLACE,
}


def _pixels_or_fraction(value: Any) -> Any:
    """'160' -> 160 px; '0.5' -> half the evaluation resolution (the CLI passes text)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"must be pixels (160) or a fraction (0.5), got {value!r}") from None
    return value


def _span(value: Any) -> Any:
    """'0.5:1.0' -> (0.5, 1.0): the first and last stage's share of the training resolution."""
    if isinstance(value, str):
        parts = value.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            return float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(
                f"must be START:END fractions of the training resolution (0.5:1.0), got {value!r}"
            ) from None
    return value


def _no_amp(value: Any) -> Any:
    return None if value in ("", "none", "None", False) else value


class TrainConfig(BaseModel):
    """Every setting of a training run. Defaults follow timm's train.py where it has one."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True)

    # --- what to train
    model: Optional[str] = Field(None, description="A registered variant (resnet18_cs_phi0) or a base (resnet18).")
    phi: Optional[float] = Field(None, description="Scale the base MODEL by this phi.")
    norm: Optional[Literal["batch", "group", "layer", "proxy", "proxy-layer"]] = Field(
        None,
        description="Norm layers: batch (the model's own), group, layer, proxy or proxy-layer "
        "(batch-independent; families whose rule has a norm section).",
    )
    drop_rate: Optional[float] = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Dropout before the classifier (default: the rule's recipe at phi, else the model's).",
    )
    drop_path: Optional[float] = Field(
        None, ge=0.0, lt=1.0, description="Stochastic depth rate (default: the rule's recipe at phi, else 0)."
    )

    # --- data
    data: str = Field(
        DEFAULT_DATA,
        min_length=1,
        description="builtin:digits, an image folder, torch/cifar10, torch/cifar100 or hfds/NAME.",
    )
    num_classes: Optional[int] = Field(None, ge=2, description="Expected class count (checked against the data).")
    train_samples: Optional[int] = Field(None, ge=1, description="Train on a fixed subset of this many images.")
    val_samples: Optional[int] = Field(None, ge=1, description="Evaluate on a fixed subset of this many images.")
    resolution: Optional[int] = Field(None, ge=1, description="Evaluation input size in pixels (default: the plan's).")
    train_resolution: Annotated[Optional[int | float], BeforeValidator(_pixels_or_fraction)] = Field(
        None, description="Train at these pixels (160) or this fraction (0.5) of the resolution."
    )
    augment: Optional[bool] = Field(
        None, description="timm's training augmentation (default: on, off for builtin:digits)."
    )
    aa: Optional[str] = Field(None, description="timm's AutoAugment/RandAugment string (rand-m9-mstd0.5-inc1).")
    reprob: float = Field(0.0, ge=0.0, le=1.0, description="Random erasing probability.")
    mixup: float = Field(0.0, ge=0.0, description="Mixup alpha (0: off).")
    cutmix: float = Field(0.0, ge=0.0, description="CutMix alpha (0: off).")
    smoothing: float = Field(0.0, ge=0.0, le=0.99, description="Label smoothing.")
    progressive: Annotated[Optional[tuple[float, float]], BeforeValidator(_span)] = Field(
        None,
        description="Progressive resizing START:END (0.5:1.0): fractions of the training resolution; "
        "RandAugment magnitude, Mixup, CutMix and dropout grow alike.",
    )
    progressive_stages: int = Field(4, ge=1, description="Stages of progressive resizing.")

    # --- optimisation
    epochs: int = Field(10, ge=1, description="Epochs to train.")
    batch_size: int = Field(64, ge=1, description="Images per step and process.")
    grad_accum: int = Field(1, ge=1, description="Batches whose gradients add up to one optimizer step.")
    lr: Optional[float] = Field(
        None, gt=0.0, description="Learning rate (default: lr_base x global batch / lr_base_size)."
    )
    lr_base: float = Field(0.1, gt=0.0, description="Learning rate per lr_base_size images (timm's linear rule).")
    lr_base_size: int = Field(256, ge=1, description="Global batch size lr_base is given for.")
    opt: str = Field("sgd", min_length=1, description="timm optimizer name (sgd, adamw, lamb, ...).")
    sched: str = Field("cosine", min_length=1, description="timm scheduler name (cosine, step, poly, none, ...).")
    warmup_epochs: int = Field(0, ge=0, description="Linear warmup epochs.")
    weight_decay: float = Field(2e-5, ge=0.0, description="Weight decay.")
    momentum: float = Field(0.9, ge=0.0, le=1.0, description="SGD momentum.")
    clip_grad: Optional[float] = Field(None, gt=0.0, description="Clip gradients at this value (off when not given).")
    clip_mode: Literal["norm", "value", "agc"] = Field("norm", description="How clip_grad clips: norm, value or agc.")
    ema: bool = Field(False, description="Keep, evaluate and save an EMA of the weights.")
    ema_decay: float = Field(0.9998, gt=0.0, le=1.0, description="EMA decay per step.")
    seed: int = Field(0, ge=0, description="Seed of the weights, the data order and augmentation.")

    # --- speed
    amp: Annotated[Optional[Literal["bf16", "fp16"]], BeforeValidator(_no_amp)] = Field(
        None, description="Mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA)."
    )
    channels_last: bool = Field(False, description="Model and inputs in channels-last memory layout.")
    compile: Optional[Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]] = Field(
        None,
        description="torch.compile the model with this mode: default, reduce-overhead, max-autotune or "
        "max-autotune-no-cudagraphs (--compile alone: default).",
        json_schema_extra={"flag_value": "default"},
    )
    compile_backend: str = Field("inductor", min_length=1, description="torch.compile backend (inductor, eager, ...).")

    # --- logging
    log_every: Optional[int] = Field(
        None, ge=1, description="Steps between TensorBoard step scalars (default: about ten per epoch)."
    )
    log_wandb: bool = Field(False, description="Also log to Weights & Biases (needs wandb installed).")

    # --- where it runs (a resumed run may change these)
    device: Optional[str] = Field(None, description="cpu, cuda or cuda:N (default: cuda when available).")
    workers: Optional[int] = Field(None, ge=0, description="Data loader processes (default: 0 for builtin data).")
    data_dir: Optional[str] = Field(
        None, description="Where torch/ and hfds/ datasets live (default: ~/.cache/timm-compound/datasets)."
    )
    download: bool = Field(False, description="Let torch/ datasets download (needs network).")

    @field_validator("train_resolution")
    @classmethod
    def _positive_resolution(cls, value: int | float | None) -> int | float | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError("must be pixels (int) or a fraction (float)")
        if isinstance(value, int) and value < 1:
            raise ValueError(f"must be at least 1 pixel, got {value}")
        if isinstance(value, float) and not (0 < value <= 1):
            raise ValueError(f"as a fraction of the resolution must be in (0, 1], got {value}")
        return value

    @field_validator("progressive")
    @classmethod
    def _fractions(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None:
            start, end = value
            if not (0 < start <= end <= 1):
                raise ValueError(
                    f"needs 0 < START <= END <= 1 (fractions of the training resolution), got {start}:{end}"
                )
        return value

    @field_validator("aa")
    @classmethod
    def _aa_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
            raise ValueError(f"is not a timm augmentation string (rand-m9-mstd0.5-inc1), got {value!r}")
        return value

    @model_validator(mode="after")
    def _agree(self) -> TrainConfig:
        """Settings that contradict each other, caught before anything is built."""
        if self.phi is not None and (not math.isfinite(self.phi)):
            raise ValueError("phi must be finite")
        if self.progressive is not None and self.progressive_stages > self.epochs:
            raise ValueError(
                f"progressive_stages {self.progressive_stages} is more than the {self.epochs} epoch(s): "
                "every stage needs at least one epoch"
            )
        if self.augment is False and (self.aa or self.reprob):
            raise ValueError("aa and reprob are training augmentations: they cannot apply with augment off")
        if (self.mixup or self.cutmix) and self.batch_size % 2:
            raise ValueError(f"mixup and cutmix need an even batch_size, got {self.batch_size}")
        return self

    # ---------------------------------------------------------------- views

    def computed(self) -> dict[str, Any]:
        """The settings that decide what the run computes (everything but where it runs), as JSON data."""
        return self.model_dump(mode="json", exclude=set(PLACE))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def given(self) -> dict[str, Any]:
        """Only the settings that were set explicitly (not left at their defaults)."""
        return self.model_dump(mode="json", exclude_unset=True)


def differences(run: TrainConfig, asked: TrainConfig, *, allowed: tuple[str, ...] = EXTENDABLE) -> list[str]:
    """'lr: run 0.1, asked 0.05' for each computed setting (but `allowed`) where `asked` differs from `run`."""
    mine, theirs = run.computed(), asked.computed()
    return [
        f"{key}: run {mine[key]!r}, asked {theirs[key]!r}"
        for key in mine
        if key not in allowed and mine[key] != theirs[key]
    ]


def build_config(
    config: TrainConfig | dict[str, Any] | None = None,
    where: str = "train config",
    spell: Callable[[str], str] | None = None,
    **settings: Any,
) -> TrainConfig:
    """A TrainConfig from a config (or a dict) with `settings` on top; a bad value is one CompoundError
    naming the setting (and `where` it came from: a file, a run folder; `spell` names it, e.g. as an option)."""
    if isinstance(config, TrainConfig):
        base = config.given()
    elif isinstance(config, dict):
        base = dict(config)
    elif config is None:
        base = {}
    else:
        raise CompoundError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    merged = {**base, **{key: str(value) if isinstance(value, Path) else value for key, value in settings.items()}}
    try:
        return TrainConfig(**merged)
    except ValidationError as error:
        raise CompoundError(f"{where}: {explain(error, spell)}") from None
    except TypeError as error:
        raise CompoundError(f"{where}: {error}") from None


def explain(error: ValidationError, spell: Callable[[str], str] | None = None) -> str:
    """pydantic's errors as one line: 'epochs: Input should be greater than or equal to 1 (got 0)'."""
    parts = []
    for item in error.errors():
        field = ".".join(str(step) for step in item["loc"])
        if field and spell is not None:
            field = spell(field)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"not a training setting (the settings are: {', '.join(TrainConfig.model_fields)})"
        elif field and "input" in item and item["type"] != "missing" and "got " not in message:
            message = f"{message} (got {item['input']!r})"
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) file of settings, read with yaml.safe_load; errors name the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CompoundError(f"{path}: cannot read the config file: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CompoundError(f"{path}: not a text file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CompoundError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise CompoundError(f"{path}: a config file is a mapping of setting names to values, got {type(data).__name__}")
    return data


def to_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_json(), sort_keys=False)


def default_lr(config: TrainConfig, world_size: int = 1) -> float:
    """timm train.py's rule: lr_base per lr_base_size images of the global batch (processes x batch x
    accumulation), linear, or square root for the ada*/lamb optimizers."""
    ratio = config.batch_size * world_size * config.grad_accum / config.lr_base_size
    sqrt = any(name in config.opt.lower() for name in ("ada", "lamb"))
    return config.lr_base * (math.sqrt(ratio) if sqrt else ratio)
