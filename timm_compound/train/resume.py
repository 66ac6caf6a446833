"""`train(resume=RUN)`: a run continued from its folder alone.

Every setting comes from the config its run.json recorded; the model from the name it recorded, or
else its plan. Only a larger `epochs` (which extends the run: the schedule is recomputed for the new
length) and where it runs (`PLACE`: device, loader processes, where the data lives) may be given;
anything else is refused, naming it, before anything is built or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.hub.config import plan_from_config
from timm_compound.train import run
from timm_compound.train.config import EXTENDABLE, PLACE, TrainConfig, build_config

MAY_CHANGE = EXTENDABLE + PLACE


@dataclass
class Resumed:
    config: TrainConfig
    model: Any  # a ScalePlan when the run recorded no name, else None (config.model names it)
    model_kwargs: dict[str, Any]
    extended_from: int


def refused(given: dict[str, Any] | list[str]) -> list[str]:
    """The settings of `given` a resume from the folder alone may not change."""
    return [name for name in given if name not in MAY_CHANGE]


def from_folder(run_dir: Path, settings: dict[str, Any]) -> Resumed:
    where = run_dir / run.RUN_JSON
    record = run.read_record(run_dir)
    bad = refused(settings)
    if bad:
        raise CompoundError(
            f"cannot resume {run_dir} with {', '.join(bad)}: a resumed run takes every setting from "
            f"its {run.RUN_JSON}; only a larger epochs, {', '.join(PLACE)} may be given (nothing was changed)"
        )
    recorded = run.recorded_config(record, where)
    config = build_config(recorded, where=f"resuming {run_dir}", **settings)
    if config.epochs < recorded.epochs:
        raise CompoundError(
            f"cannot resume {run_dir} with epochs {config.epochs}: the run was asked for "
            f"{recorded.epochs}, and a resume can only extend a run (nothing was changed)"
        )
    model_record = record.get("model") or {}
    model = None
    if config.model is None:
        if not isinstance(model_record, dict) or model_record.get("plan") is None:
            raise CompoundError(
                f"cannot resume {run_dir} from its folder alone: it trained a model built in Python, "
                "not a name or a plan; resume it with train(model, resume=RUN, ...) and the same settings"
            )
        model = plan_from_config(model_record["plan"], f"{where}: model.plan")
    kwargs = model_record.get("kwargs") if isinstance(model_record, dict) else None
    if kwargs is not None and not isinstance(kwargs, dict):
        raise CompoundError(f"{where}: model.kwargs must be a mapping, got {type(kwargs).__name__}")
    return Resumed(config, model, dict(kwargs or {}), recorded.epochs)
