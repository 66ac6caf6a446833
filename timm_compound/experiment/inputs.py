"""An experiment's settings, checked before anything is measured, trained or written.

Everything that decides what the experiment computes is recorded in experiment.json and compared
on a re-run (`fingerprint`); where it runs (device, loader workers, data folder) is not.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.train.settings import check_amp, finite, positive_int

STRATEGIES = ("depth", "width", "resolution", "compound")   # the default: the EfficientNet paper's comparison
KNOWN_STRATEGIES = STRATEGIES + ("dWr",)   # dWr: fast compound scaling, mostly width (scaling.strategies)

# train() arguments an experiment passes on to every run unchanged (the same schedule and seed for all)
TRAIN_ARGUMENTS = (
    "batch_size", "lr", "opt", "sched", "warmup_epochs", "weight_decay", "momentum", "smoothing", "mixup",
    "ema", "ema_decay", "amp", "augment", "train_samples", "val_samples", "seed",
    "data_dir", "download", "workers", "device",
)
# ... of which these say where it runs, not what it computes: a re-run may change them
PLACE_ARGUMENTS = ("data_dir", "download", "workers", "device")


def check_budgets(budgets: Any) -> tuple[float, ...]:
    """Multiples of the base's cost, each a number > 1, no repeats, in ascending order."""
    if isinstance(budgets, (int, float)) and not isinstance(budgets, bool):
        budgets = (budgets,)
    if isinstance(budgets, (str, bytes)) or not hasattr(budgets, "__iter__"):
        raise CompoundError(f"budgets must be a list of numbers > 1 (multiples of the base's GMACs), got {budgets!r}")
    checked = []
    for budget in budgets:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)):
            raise CompoundError(f"budget {budget!r} is not a number: budgets are multiples of the base's GMACs, e.g. 2, 4")
        value = finite("budget", budget)
        if value <= 1:
            raise CompoundError(f"budget {budget!r} must be > 1: a budget is a multiple of the base's GMACs "
                                "(the base itself is trained as the 1x point)")
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
            raise CompoundError(f"--budgets must be numbers > 1 separated by commas (2,4,8); {part!r} is not a number") from None
    return check_budgets(values)


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
    """The training arguments every run shares, checked as train() would check them (before anything is written)."""
    unknown = sorted(set(arguments) - set(TRAIN_ARGUMENTS))
    if unknown:
        raise CompoundError(f"experiment() does not take {', '.join(unknown)}: the training arguments it passes "
                            f"to every run are {', '.join(TRAIN_ARGUMENTS)} (each model's resolution is the experiment's)")
    given = dict(arguments)
    for name in ("batch_size", "warmup_epochs", "seed", "train_samples", "val_samples", "workers"):
        if given.get(name) is not None:
            positive_int(name, given[name], minimum=0 if name in ("warmup_epochs", "seed", "workers") else 1)
    if given.get("lr") is not None:
        finite("lr", given["lr"], open_low=True)
    for name, high in (("weight_decay", None), ("momentum", 1.0), ("smoothing", 0.99), ("mixup", None)):
        if given.get(name) is not None:
            finite(name, given[name], high=high)
    if given.get("ema_decay") is not None:
        finite("ema_decay", given["ema_decay"], open_low=True, high=1.0)
    for name in ("opt", "sched"):
        if name in given and (not isinstance(given[name], str) or not given[name]):
            raise CompoundError(f"{name} must be a name, got {given[name]!r}")
    if given.get("amp") is not None:
        check_amp(given["amp"], "cuda")   # the device is checked by the first run; here only the name
    if given.get("mixup") and given.get("batch_size", 64) % 2:
        raise CompoundError(f"mixup needs an even batch_size, got {given['batch_size']}")
    return given


def check_tolerance(tolerance: Any) -> float:
    value = finite("tolerance", tolerance, open_low=True)
    if value >= 1:
        raise CompoundError(f"tolerance is a fraction of the budget (0.05 = 5%), got {tolerance!r}")
    return value


def fingerprint(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as plain JSON data (what experiment.json records and a re-run must repeat)."""
    return json.loads(json.dumps(settings, default=str))


def train_defaults() -> dict[str, Any]:
    """train()'s own defaults: a training argument left out means the same as given at its default."""
    from timm_compound.train.api import train

    return {name: parameter.default for name, parameter in inspect.signature(train).parameters.items()
            if name in TRAIN_ARGUMENTS}


def differences(recorded: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """'epochs: folder 3, asked 5' for every setting that differs (place arguments ignored; a training
    argument left out counts as train()'s default, so `seed=0` and no seed are the same experiment)."""
    keys = sorted(set(recorded) | set(asked))
    defaults = fingerprint(train_defaults())
    found = []
    for key in keys:
        if key == "train":
            old, new = recorded.get(key) or {}, asked.get(key) or {}
            found += [f"{name}: folder {old.get(name, defaults.get(name))!r}, asked {new.get(name, defaults.get(name))!r}"
                      for name in sorted(set(old) | set(new))
                      if name not in PLACE_ARGUMENTS and old.get(name, defaults.get(name)) != new.get(name, defaults.get(name))]
        elif recorded.get(key) != asked.get(key):
            found.append(f"{key}: folder {recorded.get(key)!r}, asked {asked.get(key)!r}")
    return found
