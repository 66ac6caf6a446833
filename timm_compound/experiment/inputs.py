"""An experiment's settings, checked before anything is measured, trained or written.

Everything that decides what the experiment computes is recorded in experiment.json and compared
on a re-run (`fingerprint`); where it runs (device, loader workers, data folder) is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from timm_compound.cost.latency import LatencySettings, device_name
from timm_compound.errors import CompoundError
from timm_compound.train.config import PLACE, TrainConfig, build_config
from timm_compound.train.settings import finite

STRATEGIES = ("depth", "width", "resolution", "compound")  # the default: the EfficientNet paper's comparison
KNOWN_STRATEGIES = STRATEGIES + ("dWr",)  # dWr: fast compound scaling, mostly width (scaling.strategies)
COSTS = ("gmacs", "latency")  # what a budget multiplies: the base's GMACs, or its measured latency
LATENCY_SECONDS = 3.0  # the time cap of each timing an experiment takes (unless `latency` says)
TIMING_ARGUMENTS = ("device", "batch_size", "threads", "dtype", "runtime", "max_seconds", "cache")

# TrainConfig settings an experiment sets itself for each model ("workers", the data loader processes, is
# `loader_workers`: an experiment's `workers` are the processes that share its runs)
OWN_SETTINGS = ("model", "phi", "data", "epochs", "resolution", "num_classes", "workers")
# the training settings an experiment passes on to every run unchanged (the same schedule and seed for all)
TRAIN_ARGUMENTS = tuple(name for name in TrainConfig.model_fields if name not in OWN_SETTINGS)
# ... of which these say where it runs, not what it computes: a re-run may change them
PLACE_ARGUMENTS = PLACE


def check_budgets(budgets: Any) -> tuple[float, ...]:
    """Multiples of the base's cost, each a number > 1, no repeats, in ascending order."""
    if isinstance(budgets, (int, float)) and not isinstance(budgets, bool):
        budgets = (budgets,)
    if isinstance(budgets, (str, bytes)) or not hasattr(budgets, "__iter__"):
        raise CompoundError(f"budgets must be a list of numbers > 1 (multiples of the base's GMACs), got {budgets!r}")
    checked = []
    for budget in budgets:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)):
            raise CompoundError(
                f"budget {budget!r} is not a number: budgets are multiples of the base's GMACs, e.g. 2, 4"
            )
        value = finite("budget", budget)
        if value <= 1:
            raise CompoundError(
                f"budget {budget!r} must be > 1: a budget is a multiple of the base's GMACs "
                "(the base itself is trained as the 1x point)"
            )
        checked.append(value)
    if not checked:
        raise CompoundError("give at least one budget (a multiple of the base's GMACs, e.g. 2)")
    if len(set(checked)) != len(checked):
        raise CompoundError(f"budgets repeat: {list(budgets)!r}")
    return tuple(sorted(checked))


def parse_budgets(text: str) -> tuple[float, ...]:
    """'2,4,8' -> (2.0, 4.0, 8.0); a part that is not a number is an error naming it."""
    values = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            values.append(float(part))
        except ValueError:
            raise CompoundError(
                f"--budgets must be numbers > 1 separated by commas (2,4,8); {part!r} is not a number"
            ) from None
    return check_budgets(values)


def check_cost(cost: Any) -> str:
    if cost not in COSTS:
        raise CompoundError(f"cost must be one of {', '.join(COSTS)} (what a budget multiplies), got {cost!r}")
    return cost


def check_latency(latency: Any, cost: str) -> LatencySettings | None:
    """How every model is timed: None or True for the defaults (cpu, batch 1, 1 thread, a 3 s cap), a
    dict of measure()'s timing arguments, a LatencySettings, or False to time nothing (cost gmacs only)."""
    if latency is False:
        if cost == "latency":
            raise CompoundError("cost='latency' matches models by their timings: latency=False is not allowed with it")
        return None
    if isinstance(latency, LatencySettings):
        return latency
    if latency is None or latency is True:
        latency = {}
    if not isinstance(latency, dict):
        raise CompoundError(
            f"latency must be a dict of timing settings ({', '.join(TIMING_ARGUMENTS)}), True, "
            f"False or None, got {latency!r}"
        )
    unknown = sorted(set(latency) - set(TIMING_ARGUMENTS))
    if unknown:
        raise CompoundError(
            f"latency does not take {', '.join(unknown)}: its settings are {', '.join(TIMING_ARGUMENTS)}"
        )
    return LatencySettings.check(**{"max_seconds": LATENCY_SECONDS, **latency})


def timing_record(settings: LatencySettings) -> dict[str, Any]:
    """What decides a latency-matched experiment's models, beside its settings: where they are timed."""
    return {
        "device": settings.device,
        "device_name": device_name(settings.device),
        "threads": settings.threads,
        "batch_size": settings.batch_size,
        "dtype": settings.dtype,
        "runtime": settings.runtime,
    }


def check_strategies(strategies: Any) -> tuple[str, ...]:
    if isinstance(strategies, str):
        strategies = [part.strip() for part in strategies.split(",") if part.strip()]
    strategies = list(strategies)
    if not strategies:
        raise CompoundError(f"give at least one strategy: {', '.join(KNOWN_STRATEGIES)}")
    for name in strategies:
        if name not in KNOWN_STRATEGIES:
            raise CompoundError(f"unknown strategy {name!r}: choose from {', '.join(KNOWN_STRATEGIES)}")
    if len(set(strategies)) != len(strategies):
        raise CompoundError(f"strategies repeat: {strategies!r}")
    return tuple(strategies)


def check_train_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The training settings every run shares, checked as train() checks them (before anything is written)."""
    unknown = sorted(set(arguments) - set(TRAIN_ARGUMENTS) - {"workers"})  # workers: given as loader_workers
    if unknown:
        raise CompoundError(
            f"experiment() does not take {', '.join(unknown)}: the training arguments it passes "
            f"to every run are {', '.join(TRAIN_ARGUMENTS)} (each model's resolution is the experiment's; "
            "the data loader's processes are loader_workers)"
        )
    given = {key: str(value) if isinstance(value, Path) else value for key, value in arguments.items()}
    build_config(where="experiment training settings", **given)
    return given


def check_seeds(seeds: Any) -> int:
    """How many seeds every model trains with (seed, seed + 1, ...): a whole number >= 1."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise CompoundError(
            f"seeds must be a whole number >= 1 (each model trains with seeds seed, seed+1, ...), got {seeds!r}"
        )
    return seeds


def check_tolerance(tolerance: Any) -> float:
    value = finite("tolerance", tolerance, open_low=True)
    if value >= 1:
        raise CompoundError(f"tolerance is a fraction of the budget (0.05 = 5%), got {tolerance!r}")
    return value


def fingerprint(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as plain JSON data (what experiment.json records and a re-run must repeat)."""
    return json.loads(json.dumps(settings, default=str))


def train_defaults() -> dict[str, Any]:
    """TrainConfig's defaults: a training setting left out means the same as given at its default."""
    return {name: field.default for name, field in TrainConfig.model_fields.items() if name in TRAIN_ARGUMENTS}


# experiment settings added after the first experiments were recorded: what a record without them meant
RECORD_DEFAULTS = {"seeds": 1, "versus": None}


def every_setting(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with every training setting filled in at its default (what the report lists)."""
    train = {**fingerprint(train_defaults()), **settings.get("train", {})}
    return {**settings, "train": dict(sorted(train.items()))}


def differences(recorded: dict[str, Any], asked: dict[str, Any], where: str = "folder") -> list[str]:
    """'epochs: folder 3, asked 5' for every setting that differs (place arguments ignored; a training
    argument left out counts as train()'s default, so `seed=0` and no seed are the same experiment)."""
    recorded, asked = {**RECORD_DEFAULTS, **recorded}, {**RECORD_DEFAULTS, **asked}
    keys = sorted(set(recorded) | set(asked))
    defaults = fingerprint(train_defaults())
    found = []
    for key in keys:
        if key == "train":
            old, new = recorded.get(key) or {}, asked.get(key) or {}
            found += [
                f"{name}: {where} {old.get(name, defaults.get(name))!r}, asked {new.get(name, defaults.get(name))!r}"
                for name in sorted(set(old) | set(new))
                if name not in PLACE_ARGUMENTS
                and old.get(name, defaults.get(name)) != new.get(name, defaults.get(name))
            ]
        elif recorded.get(key) != asked.get(key):
            found.append(f"{key}: {where} {recorded.get(key)!r}, asked {asked.get(key)!r}")
    return found
