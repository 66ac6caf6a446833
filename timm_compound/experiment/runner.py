"""The experiment folder and its runs: one run folder per model and seed, trained by the training
engine with the same schedule for all, skipped when finished and resumed when interrupted.

    OUT/experiment.json           the settings and the planned models (a re-run must ask for the same)
    OUT/runs/<name>/              a model's run folder with one seed (run.json, metrics.csv,
                                  predictions.csv, best.safetensors, last/)
    OUT/runs/<name>/seed-<k>/     ... with several seeds, one folder per seed

A folder holding an experiment with other settings, or anything that is not an experiment, is
refused before anything is written. A finished run keeps its final weights, its metrics and its
per-image results; its optimizer and scheduler state is deleted (`keep_checkpoints` keeps it).
Progress across the whole experiment (which run, which epoch, how much is left) is estimated from
compute: seconds per training MAC measured so far, times the MACs still to train.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.experiment.inputs import differences
from timm_compound.experiment.results import Row, Run, Variant
from timm_compound.train import checkpoint
from timm_compound.train import predictions as image_results
from timm_compound.train import run as run_folder
from timm_compound.train.api import train
from timm_compound.train.checkpoint import EMA, LAST, MODEL, load_weights
from timm_compound.train.engine import NonFiniteLoss
from timm_compound.train.results import EpochMetrics

EXPERIMENT_JSON, RUNS = "experiment.json", "runs"
FORMAT = 1
# what an experiment's own processes put into its folder before experiment.json exists (workers starting together)
OWN_FILES = {
    RUNS,
    EXPERIMENT_JSON + ".partial",
    "experiment.db",
    "experiment.db-journal",
    "experiment.db-wal",
    "experiment.db-shm",
}


def prepare(out: Path, settings: dict[str, Any], *, shared: bool = False) -> bool:
    """Check `out` may hold this experiment (creates nothing); True when it continues one already there.
    `shared`: other workers of this experiment may be creating the folder at this moment."""
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
            raise CompoundError(
                f"{out} holds an experiment with different settings ({'; '.join(found)}): refused, "
                "nothing was changed; use another folder, or repeat the recorded settings to continue it"
            )
        return True
    others = [path.name for path in out.iterdir()] if out.is_dir() else []
    if shared:
        others = [name for name in others if name not in OWN_FILES]
    if others:
        raise CompoundError(
            f"{out} is not empty and holds no experiment ({EXPERIMENT_JSON}): refused, nothing was "
            "changed; choose an empty or new folder"
        )
    return False


def write_record(out: Path, settings: dict[str, Any], variants: list[Variant], *, resuming: bool) -> None:
    try:
        (out / RUNS).mkdir(parents=True, exist_ok=True)
        if resuming:
            return
        record = {
            "format": FORMAT,
            "settings": settings,
            "models": [variant.describe() for variant in variants],
            "versions": run_folder.versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        partial = out / (EXPERIMENT_JSON + ".partial")
        partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        partial.replace(out / EXPERIMENT_JSON)
    except OSError as error:
        raise CompoundError(f"cannot write the experiment folder {out}: {error.strerror or error}") from None


def read_record(out: Path) -> dict[str, Any]:
    """OUT/experiment.json; a folder without one is a clear error."""
    record = Path(out) / EXPERIMENT_JSON
    if not record.is_file():
        raise CompoundError(f"{out} holds no experiment (no {EXPERIMENT_JSON}): give the --out folder of an experiment")
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        data["settings"]["base"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise CompoundError(f"{record}: not a readable experiment record ({error})") from None
    return data


def finished(run_dir: Path, epochs: int) -> bool:
    if not (run_dir / run_folder.RUN_JSON).is_file():
        return False
    record = run_folder.read_record(run_dir)
    return record.get("status") == "completed" and record.get("epochs_completed") == epochs


@dataclass(frozen=True)
class Job:
    """One training of the experiment: a model with one seed, in its run folder."""

    variant: Variant
    seed: int
    run_dir: Path
    index: int  # 1-based place in the experiment's order (every seed 0 run first, then seed 1, ...)

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def label(self) -> str:
        return self.name if self.run_dir.name == self.name else f"{self.name} seed {self.seed}"


def seed_list(settings: dict[str, Any]) -> list[int]:
    """The seeds every model trains with: seed, seed + 1, ... (`seeds` of them; seed: the training setting)."""
    first = int(settings["train"].get("seed", 0))
    return [first + k for k in range(int(settings.get("seeds", 1)))]


def run_dir_of(out: Path, name: str, seed: int, seeds: list[int]) -> Path:
    """OUT/runs/NAME with one seed (as before seeds existed), OUT/runs/NAME/seed-K with several."""
    folder = Path(out) / RUNS / name
    return folder if len(seeds) == 1 else folder / f"seed-{seed}"


def jobs_of(out: Path, variants: list[Variant], seeds: list[int]) -> list[Job]:
    """Every (model, seed) training, seed by seed: all models' first seed, then their second, ...; within
    a seed the costliest model first, so the runs claimed last are the cheapest and workers finish together."""
    costliest_first = sorted(variants, key=lambda variant: -variant.cost.macs)
    order = [(variant, seed) for seed in seeds for variant in costliest_first]
    return [
        Job(variant, seed, run_dir_of(out, variant.name, seed, seeds), index)
        for index, (variant, seed) in enumerate(order, 1)
    ]


class Progress:
    """One line per epoch across the experiment: run k/n, epoch e/E, share of the compute done, time left."""

    def __init__(
        self,
        jobs: list[Job],
        epochs: int,
        train_images: int,
        say: Callable[[str], None],
        finished_runs: Callable[[], int] | None = None,
    ):
        self.work = {job.index: job.variant.cost.macs * train_images * epochs for job in jobs}
        self.total = sum(self.work.values()) or 1.0
        self.count = len(jobs)
        self.epochs, self.say = epochs, say
        self.finished_runs = finished_runs  # a worker among others: the runs every worker has finished
        self.done = 0.0  # MACs-images trained or skipped
        self.timed_work = 0.0  # ... of which trained in this session, for the rate
        self.timed_seconds = 0.0
        self.start = time.perf_counter()

    def skip(self, job: Job) -> None:
        self.done += self.work.get(job.index, 0.0)

    def epoch(self, job: Job, epoch: int, seconds: float) -> None:
        share = self.work.get(job.index, 0.0) / self.epochs
        self.done += share
        self.timed_work += share
        self.timed_seconds += seconds
        left = (self.total - self.done) * self.timed_seconds / self.timed_work if self.timed_work else None
        if self.finished_runs is not None:  # this worker's share of the compute says little: count every worker's runs
            self.say(
                f"experiment: run {job.index}/{self.count} {job.label}, epoch {epoch}/{self.epochs} done; "
                f"{self.finished_runs()} of {self.count} runs finished by all workers, "
                f"{_duration(time.perf_counter() - self.start)} elapsed"
            )
            return
        self.say(
            f"experiment: run {job.index}/{self.count} {job.label}, epoch {epoch}/{self.epochs} done; "
            f"{100 * self.done / self.total:.0f}% of the compute, {_duration(time.perf_counter() - self.start)} "
            f"elapsed, about {_duration(left)} left"
        )


def printer(console: Console, quiet: bool) -> Callable[[str], None]:
    """A `say(line)` that prints plain text to `console` (nothing when quiet)."""
    if quiet:
        return lambda text: None
    return lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)


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


@dataclass(frozen=True)
class Recipe:
    """How every run trains: the data, the epochs, the shared training settings (its seed replaced by the
    run's), the dataset's classes, and whether finished runs keep their training state."""

    data: str
    epochs: int
    train_arguments: dict[str, Any]
    num_classes: int
    keep_checkpoints: bool = False


def train_job(
    job: Job,
    recipe: Recipe,
    tracker: Progress,
    progress: Any,
    console: Console,
    on_epoch: Callable[[int, EpochMetrics], Any] | None = None,
) -> Run:
    """Train (or resume) one run in its folder; a finished run is thinned unless checkpoints are kept.
    A diverging loss ends this run (its Run says failed), not the experiment."""
    verb = "resuming" if (job.run_dir / run_folder.RUN_JSON).is_file() else "training"
    tracker.say(f"experiment: run {job.index}/{tracker.count} {job.label}: {verb} {_what(job.variant)}")

    def each_epoch(epoch: int, metrics: EpochMetrics) -> Any:
        tracker.epoch(job, epoch, metrics.seconds)
        return on_epoch(epoch, metrics) if on_epoch is not None else False

    try:
        model, arguments = model_for(job.variant, recipe.num_classes, {**recipe.train_arguments, "seed": job.seed})
        job.run_dir.parent.mkdir(parents=True, exist_ok=True)
        train(
            model,
            recipe.data,
            epochs=recipe.epochs,
            resolution=job.variant.resolution,
            out=job.run_dir,
            resume=True,
            on_epoch=each_epoch,
            progress=progress,
            console=console,
            **arguments,
        )
    except NonFiniteLoss as error:  # one diverging model does not end the experiment; its row says so
        tracker.say(f"experiment: run {job.label} failed: {error}")
        return read_run(job, recipe.epochs)
    if not recipe.keep_checkpoints and finished(job.run_dir, recipe.epochs):
        thin(job.run_dir)
    return read_run(job, recipe.epochs)


def thin(run_dir: Path) -> int:
    """A finished run keeps its final weights (best.safetensors when the last epoch was the best, else
    last/model.safetensors), metrics and per-image results; its training state goes."""
    record = run_folder.read_record(run_dir)
    best = (record.get("best") or {}).get("epoch")
    return checkpoint.thin(run_dir, final_is_best=best is not None and best == record.get("epochs_completed"))


def run_all(jobs: list[Job], recipe: Recipe, *, train_images: int, progress: Any, console: Console) -> list[Run]:
    """Train every run that has not finished, in order; a finished run is read back, not retrained."""
    quiet = progress is False or progress == "quiet"
    tracker = Progress(jobs, recipe.epochs, train_images, say=printer(console, quiet))
    runs = []
    for job in jobs:
        if finished(job.run_dir, recipe.epochs):
            tracker.skip(job)
            tracker.say(f"experiment: run {job.index}/{len(jobs)} {job.label} finished earlier: skipped")
            runs.append(read_run(job, recipe.epochs))
            continue
        runs.append(train_job(job, recipe, tracker, progress, console))
    return runs


def read_run(job: Job, epochs: int) -> Run:
    """A run as its folder holds it: completed (every epoch), failed (run.json says why) or unfinished."""
    run_dir = job.run_dir
    if not (run_dir / run_folder.RUN_JSON).is_file():
        return Run(job.seed, run_dir, [], "unfinished")
    record = run_folder.read_record(run_dir)
    history = run_folder.read_metrics(run_dir) if (run_dir / run_folder.METRICS).is_file() else []
    if record.get("status") == "completed" and record.get("epochs_completed") == epochs:
        status, message = "completed", None
    elif record.get("status") == "failed":
        status, message = "failed", record.get("message")
    else:
        status, message = "unfinished", None
    images = None
    if image_results.exists(run_dir):
        found = image_results.read(run_dir)
        images = found if history and found.epoch == history[-1].epoch else None
    return Run(job.seed, run_dir, history, status, message, images)


def rows_of(variants: list[Variant], jobs: list[Job], runs: list[Run]) -> list[Row]:
    """One row per model, its runs in seed order."""
    by_model: dict[str, list[Run]] = {variant.name: [] for variant in variants}
    for job, found in zip(jobs, runs):
        by_model[job.name].append(found)
    return [Row(variant, sorted(by_model[variant.name], key=lambda found: found.seed)) for variant in variants]


def disk_used(out: Path) -> int:
    """Bytes of every file under `out`."""
    return sum(path.stat().st_size for path in Path(out).rglob("*") if path.is_file())


def size_text(size: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


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


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights evaluated at the last epoch: the EMA's when the run kept one (best.safetensors when the
    run was thinned after a last epoch that was its best)."""
    last = run_dir / LAST
    if not (last / MODEL).is_file():
        return load_weights(run_dir / checkpoint.BEST)
    return load_weights(last / EMA if (last / EMA).is_file() else last / MODEL)


def load_final(variant: Variant, run_dir: Path, num_classes: int) -> torch.nn.Module:
    """The model a row's accuracy was measured on, rebuilt and loaded from its run folder."""
    import timm

    from timm_compound.hub.load import build

    with_norm = variant.plan is not None and variant.plan.norm != "batch"  # timm's own names build batch norm
    if variant.timm_only or (variant.strategy == "reference" and not with_norm):
        model = timm.create_model(variant.model, num_classes=num_classes)
    else:
        model = build(variant.plan, num_classes=num_classes)
    model.load_state_dict(final_weights(run_dir))
    return model.eval()


def summary_lines(
    rows: list[Row], budgets: tuple[float, ...], best: dict[float, str], unit: str = "GMACs"
) -> list[str]:
    lines = []
    for budget in budgets:
        column = [row for row in rows if row.variant.budget == budget and row.top1 is not None]
        listed = ", ".join(
            f"{row.variant.strategy} {row.top1:.2f}%" for row in sorted(column, key=lambda row: -row.top1)
        )
        lines.append(f"{budget:g}x the base's {unit}: best {best.get(budget, 'none (no run finished)')} ({listed})")
    return lines
