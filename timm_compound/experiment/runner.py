"""The experiment folder and its runs: one run folder per model, trained by the training engine with
the same schedule and seed, skipped when finished and resumed when interrupted.

    OUT/experiment.json       the settings and the planned models (a re-run must ask for the same)
    OUT/runs/<name>/          a run folder per model (run.json, metrics.csv, best.safetensors, last/)

A folder holding an experiment with other settings, or anything that is not an experiment, is
refused before anything is written. Progress across the whole experiment (which run, which epoch,
how much is left) is estimated from compute: seconds per training MAC measured so far, times the
MACs still to train.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.experiment.inputs import differences
from timm_compound.experiment.results import Row, Variant
from timm_compound.train import run as run_folder
from timm_compound.train.api import train
from timm_compound.train.checkpoint import EMA, LAST, MODEL, load_weights
from timm_compound.train.engine import NonFiniteLoss
from timm_compound.train.results import EpochMetrics

EXPERIMENT_JSON, RUNS = "experiment.json", "runs"
FORMAT = 1


def prepare(out: Path, settings: dict[str, Any]) -> bool:
    """Check `out` may hold this experiment (creates nothing); True when it continues one already there."""
    if out.exists() and not out.is_dir():
        raise CompoundError(f"experiment folder {out} is a file")
    record = out / EXPERIMENT_JSON
    if record.is_file():
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
            recorded = previous["settings"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise CompoundError(f"{record}: not a readable experiment record ({error}); nothing was changed") from None
        found = differences(recorded, settings)
        if found:
            raise CompoundError(f"{out} holds an experiment with different settings ({'; '.join(found)}): refused, "
                                "nothing was changed; use another folder, or repeat the recorded settings to continue it")
        return True
    if out.is_dir() and any(out.iterdir()):
        raise CompoundError(f"{out} is not empty and holds no experiment ({EXPERIMENT_JSON}): refused, nothing was "
                            "changed; choose an empty or new folder")
    return False


def write_record(out: Path, settings: dict[str, Any], variants: list[Variant], *, resuming: bool) -> None:
    try:
        (out / RUNS).mkdir(parents=True, exist_ok=True)
        if resuming:
            return
        record = {"format": FORMAT, "settings": settings, "models": [variant.describe() for variant in variants],
                  "versions": run_folder.versions(),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        partial = out / (EXPERIMENT_JSON + ".partial")
        partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        partial.replace(out / EXPERIMENT_JSON)
    except OSError as error:
        raise CompoundError(f"cannot write the experiment folder {out}: {error.strerror or error}") from None


def finished(run_dir: Path, epochs: int) -> bool:
    if not (run_dir / run_folder.RUN_JSON).is_file():
        return False
    record = run_folder.read_record(run_dir)
    return record.get("status") == "completed" and record.get("epochs_completed") == epochs


class Progress:
    """One line per epoch across the experiment: run k/n, epoch e/E, share of the compute done, time left."""

    def __init__(self, variants: list[Variant], epochs: int, train_images: int, console: Console, quiet: bool):
        self.work = {variant.name: variant.cost.macs * train_images * epochs for variant in variants}
        self.total = sum(self.work.values())
        self.epochs, self.console, self.quiet = epochs, console, quiet
        self.done = 0.0            # MACs-images trained or skipped
        self.timed_work = 0.0      # ... of which trained in this session, for the rate
        self.timed_seconds = 0.0
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def skip(self, variant: Variant) -> None:
        self.done += self.work[variant.name]

    def epoch(self, index: int, count: int, variant: Variant, epoch: int, seconds: float) -> None:
        share = self.work[variant.name] / self.epochs
        self.done += share
        self.timed_work += share
        self.timed_seconds += seconds
        left = (self.total - self.done) * self.timed_seconds / self.timed_work if self.timed_work else None
        self.say(f"experiment: run {index}/{count} {variant.name}, epoch {epoch}/{self.epochs} done; "
                 f"{100 * self.done / self.total:.0f}% of the compute, {_duration(time.perf_counter() - self.start)} "
                 f"elapsed, about {_duration(left)} left")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def run_all(out: Path, variants: list[Variant], *, data: str, epochs: int, train_arguments: dict[str, Any],
            num_classes: int, train_images: int, progress: Any, console: Console) -> list[Row]:
    """Train every variant that has not finished, in order; a finished run is read back, not retrained."""
    quiet = progress is False or progress == "quiet"
    tracker = Progress(variants, epochs, train_images, console, quiet)
    rows = []
    for index, variant in enumerate(variants, 1):
        run_dir = out / RUNS / variant.name
        if finished(run_dir, epochs):
            tracker.skip(variant)
            tracker.say(f"experiment: run {index}/{len(variants)} {variant.name} finished earlier: skipped")
            rows.append(read_row(variant, run_dir))
            continue
        verb = "resuming" if (run_dir / run_folder.RUN_JSON).is_file() else "training"
        tracker.say(f"experiment: run {index}/{len(variants)} {variant.name}: {verb} {_what(variant)}")

        def on_epoch(epoch: int, metrics: EpochMetrics, _variant=variant, _index=index) -> bool:
            tracker.epoch(_index, len(variants), _variant, epoch, metrics.seconds)
            return False

        try:
            model, arguments = model_for(variant, num_classes, train_arguments)
            train(model, data, epochs=epochs, resolution=variant.resolution, out=run_dir, resume=True,
                  on_epoch=on_epoch, progress=progress, console=console, **arguments)
        except NonFiniteLoss as error:   # one diverging model does not end the experiment; its row says so
            tracker.say(f"experiment: run {variant.name} failed: {error}")
            rows.append(read_row(variant, run_dir, failed=str(error)))
            continue
        rows.append(read_row(variant, run_dir))
    return rows


def _what(variant: Variant) -> str:
    pixels = f"{variant.resolution} px, {variant.cost.gmacs:.4g} GMACs ({variant.ratio:.3g}x the base)"
    if variant.plan is None or variant.strategy == "reference":
        return f"{variant.model} at {pixels}"
    return f"{variant.plan.base} depths {variant.plan.depths}, widths {variant.plan.widths} at {pixels}"


# settings that go to a model's constructor: train() builds plans with them, a timm-only reference gets them here
_CONSTRUCTOR = {"drop_rate": "drop_rate", "drop_path": "drop_path_rate"}


def model_for(variant: Variant, num_classes: int, arguments: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What train() gets: the plan or name, or for a timm-only reference its module, seeded as train() seeds
    and built with the run's dropout settings (which train() then does not get again)."""
    if not variant.timm_only:
        return variant.model, arguments
    import timm

    torch.manual_seed(arguments.get("seed", 0))
    kwargs = {arg: arguments[name] for name, arg in _CONSTRUCTOR.items() if arguments.get(name) is not None}
    rest = {key: value for key, value in arguments.items() if key not in _CONSTRUCTOR}
    return timm.create_model(variant.model, num_classes=num_classes, **kwargs), rest


def read_row(variant: Variant, run_dir: Path, failed: str | None = None) -> Row:
    history = run_folder.read_metrics(run_dir) if (run_dir / run_folder.METRICS).is_file() else []
    return Row(variant, run_dir, history, "failed" if failed else "completed", failed)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights evaluated at the last epoch: the EMA's when the run kept one."""
    last = run_dir / LAST
    return load_weights(last / EMA if (last / EMA).is_file() else last / MODEL)


def load_final(variant: Variant, run_dir: Path, num_classes: int) -> torch.nn.Module:
    """The model a row's accuracy was measured on, rebuilt and loaded from its run folder."""
    import timm

    from timm_compound.hub.load import build

    if variant.timm_only or variant.strategy == "reference":
        model = timm.create_model(variant.model, num_classes=num_classes)
    else:
        model = build(variant.plan, num_classes=num_classes)
    model.load_state_dict(final_weights(run_dir))
    return model.eval()


def summary_lines(rows: list[Row], budgets: tuple[float, ...], best: dict[float, str], unit: str = "GMACs") -> list[str]:
    lines = []
    for budget in budgets:
        column = [row for row in rows if row.variant.budget == budget and row.top1 is not None]
        listed = ", ".join(f"{row.variant.strategy} {row.top1:.2f}%" for row in
                           sorted(column, key=lambda row: -row.top1))
        lines.append(f"{budget:g}x the base's {unit}: best {best.get(budget, 'none (no run finished)')} ({listed})")
    return lines
