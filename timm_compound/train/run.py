"""Run folders: what was asked (run.json), what was measured (metrics.csv, curves.png), and the
checks that keep a folder honest: a new run never writes into a used folder, and a resumed run must
ask for the same model, data and settings as the run it continues (refused before anything is written).

    RUN/run.json          model (name, plan), dataset and split, the config as asked and the settings as
                          resolved (lr, pixels, dropout filled in), progressive stages, versions, status
    RUN/metrics.csv       one row per completed epoch (timm_compound.train.results.COLUMNS)
    RUN/curves.png        loss and accuracy against epoch
    RUN/best.safetensors  weights of the best epoch (top-1); RUN/last/ the resumable checkpoint
    RUN/tensorboard/      TensorBoard event files (timm_compound.train.logs)
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from timm_compound.errors import CompoundError
from timm_compound.train.config import EXTENDABLE, TrainConfig, build_config, differences
from timm_compound.train.results import COLUMNS, EpochMetrics
from timm_compound.version import __version__

RUN_JSON, METRICS, CURVES = "run.json", "metrics.csv", "curves.png"
FORMAT = 1


def versions() -> dict[str, str]:
    import timm
    import torch

    return {
        "timm_compound": __version__,
        "timm": timm.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def check_writable(path: Path) -> None:
    """Create `path` if needed and prove a file can be written in it; a CompoundError otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise CompoundError(f"cannot write the run folder {path}: {error.strerror or error}") from None


def check_new(path: Path) -> None:
    """A new run's folder must be absent or empty (a used folder is never overwritten); creates nothing."""
    if path.exists() and not path.is_dir():
        raise CompoundError(f"cannot write the run folder {path}: it is a file")
    if path.is_dir() and any(path.iterdir()):
        hint = "pass resume to continue it" if (path / RUN_JSON).is_file() else "choose an empty or new folder"
        raise CompoundError(f"run folder {path} is not empty; {hint}")


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Model(_Part):
    spec: str
    name: Optional[str] = None
    num_classes: Optional[int] = None
    plan: Optional[dict[str, Any]] = None
    kwargs: Optional[dict[str, Any]] = None


class _Dataset(_Part):
    name: str
    classes: int = Field(ge=2)
    train_images: int = Field(ge=0)
    val_images: int = Field(ge=1)


class _Settings(_Part):
    """The resolved settings the readers of a finished run use (the rest is checked as a TrainConfig on resume)."""

    resolution: int = Field(ge=1)
    train_resolution: int = Field(ge=1)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float
    opt: str
    sched: str
    seed: int
    ema: bool
    augment: bool


class _Best(_Part):
    epoch: int = Field(ge=1)
    top1: float
    top5: Optional[float] = None
    eval_loss: Optional[float] = None


class _Record(_Part):
    """The shape of run.json that the code reading it relies on (more keys are allowed)."""

    format: Literal[1]
    status: str
    model: _Model
    dataset: _Dataset
    settings: _Settings
    config: Optional[dict[str, Any]] = None
    world_size: int = Field(1, ge=1)
    epochs_completed: int = Field(0, ge=0)
    best: Optional[_Best] = None


MAX_RECORD_BYTES = 16 * 2**20


def read_record(path: Path) -> dict[str, Any]:
    """run.json of a run folder, checked to have the shape the code reads (types of the keys it uses),
    or one CompoundError naming the file and the first key that is wrong."""
    file = Path(path) / RUN_JSON
    if not file.is_file():
        raise CompoundError(f"{path} is not a run folder: it has no {RUN_JSON}")
    try:
        if file.stat().st_size > MAX_RECORD_BYTES:
            raise CompoundError(
                f"{file}: {file.stat().st_size:,} bytes is not a run record (at most {MAX_RECORD_BYTES:,})"
            )
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CompoundError(f"{file}: not readable JSON: {type(error).__name__}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CompoundError(f"{file}: not a timm-compound run record (format {FORMAT})")
    try:
        _Record.model_validate(record)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(step) for step in first["loc"])
        raise CompoundError(f"{file}: {where}: {first['msg']} (got {first.get('input')!r:.80})") from None
    return record


def write_record(path: Path, record: dict[str, Any]) -> None:
    record = {**record, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_text(path / RUN_JSON, json.dumps(record, indent=2) + "\n")


# settings compared through the model and dataset records, not as settings
IDENTITY = ("model", "phi", "data", "num_classes")


def settings_record(settings: TrainConfig) -> dict[str, Any]:
    """The resolved settings as run.json keeps them (what the run computed with, lr and pixels filled in)."""
    return {key: value for key, value in settings.computed().items() if key not in IDENTITY}


def new_record(
    *,
    model: dict[str, Any],
    dataset: dict[str, Any],
    config: TrainConfig,
    settings: TrainConfig,
    world_size: int,
    device: str,
    workers: int,
    regularisation: dict[str, Any],
    progressive: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "status": "running",
        "message": None,
        "model": model,
        "dataset": dataset,
        "config": config.to_json(),
        "settings": settings_record(settings),
        "regularisation": regularisation,
        "progressive": progressive,
        "world_size": world_size,
        "device": device,
        "workers": workers,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "epochs_completed": 0,
        "best": None,
    }


def json_or_none(value: Any) -> Any:
    """`value` when it is plain JSON data (so a resume can rebuild it), else None."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value or None


def recorded_config(record: dict[str, Any], where: Path | str) -> TrainConfig:
    """The config a run was started with (a run written before configs were recorded: its settings)."""
    data = record.get("config")
    if data is None:
        settings = record.get("settings")
        if not isinstance(settings, dict):
            raise CompoundError(f"{where}: the run recorded neither its config nor its settings")
        data = {
            **settings,
            "data": (record.get("dataset") or {}).get("name"),
            "model": (record.get("model") or {}).get("name"),
        }
        data = {key: value for key, value in data.items() if value is not None}
    if not isinstance(data, dict):
        raise CompoundError(f"{where}: config must be a mapping of settings, got {type(data).__name__}")
    return build_config(data, where=f"{where}: config")


def resume_conflicts(
    record: dict[str, Any], *, model: dict[str, Any], dataset: dict[str, Any], settings: TrainConfig, world_size: int
) -> list[str]:
    """Why a run folder cannot be continued by this request (empty when it can)."""
    problems = []
    if record["model"].get("plan") != model.get("plan") or record["model"].get("num_classes") != model.get(
        "num_classes"
    ):
        problems.append(
            f"the model differs (run: {record['model'].get('spec')}, asked: {model.get('spec')}; "
            "plans or class counts are not equal)"
        )
    keys = ("name", "classes", "train_images", "val_images", "split", "train_samples", "val_samples")
    changed = [key for key in keys if record["dataset"].get(key) != dataset.get(key)]
    if changed:
        listed = ", ".join(f"{key}: run {record['dataset'].get(key)!r}, asked {dataset.get(key)!r}" for key in changed)
        problems.append(f"the dataset differs ({listed})")
    recorded = build_config(record["settings"], where=f"{RUN_JSON}: settings")
    problems += [f"setting {item}" for item in differences(recorded, settings, allowed=EXTENDABLE + IDENTITY)]
    if settings.epochs < recorded.epochs:
        problems.append(
            f"epochs {settings.epochs} is fewer than the run's {recorded.epochs} (a resume can only extend a run)"
        )
    if record.get("world_size") != world_size:
        problems.append(f"the run used {record.get('world_size')} process(es), this request {world_size}")
    return problems


def write_metrics(path: Path, history: list[EpochMetrics]) -> None:
    """metrics.csv from the whole history (rewritten each epoch, so it always matches the checkpoint)."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in history:
        values = row.to_dict()
        writer.writerow([repr(values[column]) for column in COLUMNS])
    _write_text(path / METRICS, buffer.getvalue())


def read_metrics(path: Path) -> list[EpochMetrics]:
    with open(Path(path) / METRICS, newline="", encoding="utf-8") as handle:
        return [EpochMetrics.from_dict(row) for row in csv.DictReader(handle)]


def _write_text(file: Path, text: str) -> None:
    partial = file.with_name(file.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, file)
