"""`train()` and `evaluate()`: the public entry points (the CLI's `train` and `eval` call these).

Every argument is checked, the data opened and the model built before anything is written; a
new run never writes into a used folder and a resumed one must ask for what its run.json recorded.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.train import checkpoint, run
from timm_compound.train.data import DEFAULT_DATA, DataSplits, load_data
from timm_compound.train.distributed import World, resolve_device, setup
from timm_compound.train.engine import evaluate_batches
from timm_compound.train.loaders import Samples, TrainBatches, eval_loader, make_transforms
from timm_compound.train.models import choose_model, load_trained
from timm_compound.train.progress import Mode, Reporter
from timm_compound.train.results import EvalResult, TrainResult
from timm_compound.train.settings import Settings, check_amp, default_lr, finite, positive_int
from timm_compound.train.setup import (
    check_can_create,
    default_workers,
    make_parts,
    native_resolution,
    resolve_resolutions,
)
from timm_compound.train.trainer import Loop, OnEpoch


def train(
    model: Any,
    data: str = DEFAULT_DATA,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float | None = None,
    opt: str = "sgd",
    sched: str = "cosine",
    warmup_epochs: int = 0,
    weight_decay: float = 2e-5,
    momentum: float = 0.9,
    smoothing: float = 0.0,
    mixup: float = 0.0,
    ema: bool = False,
    ema_decay: float = 0.9998,
    amp: str | None = None,
    resolution: int | None = None,
    train_resolution: int | float | None = None,
    num_classes: int | None = None,
    augment: bool | None = None,
    train_samples: int | None = None,
    val_samples: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    resume: str | Path | bool | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    workers: int | None = None,
    device: str | torch.device | None = None,
    progress: Mode | bool = "auto",
    console: Console | None = None,
    on_epoch: OnEpoch | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> TrainResult:
    """Train `model` (an nn.Module, a registered name, a base a rule covers, or a ScalePlan) on `data`.

    Uses timm's create_optimizer_v2, create_scheduler_v2 (stepped per epoch), create_transform with
    the model's data config, Mixup, ModelEmaV3 and NativeScaler. `lr=None` follows timm's rule
    (0.1 per 256 images). `resolution` overrides the plan's input size; `train_resolution` (pixels,
    or a float fraction of `resolution`) trains smaller and evaluates at `resolution` (FixRes).
    `out` is the run folder (None: write nothing); `resume=RUN` (or True: resume `out` if it holds a
    run) continues after the last completed epoch. `on_epoch(epoch, metrics)` runs after each epoch is
    saved (on every rank); returning True stops training there, and an exception it raises (an Optuna
    pruner's TrialPruned) propagates; either way run.json says "stopped".
    `progress`: 'auto' (a rich bar per epoch on a terminal, plain lines otherwise), 'plain', or
    False for none; lines go to `console` (default: stdout).
    Under `torchrun` each process trains its shard with DistributedDataParallel.
    """
    device = resolve_device(device)
    world = setup(device)
    try:
        return _train(world, locals())
    finally:
        world.close()


def _train(world: World, args: dict[str, Any]) -> TrainResult:
    device = world.device
    _check_numbers(args)
    amp = check_amp(args["amp"], device.type)
    run_dir, resuming = _run_folder(args["out"], args["resume"])
    if run_dir is not None and not resuming:
        _agreed(world, lambda: (check_can_create(run_dir), run.check_new(run_dir)))
    _seed_everything(args["seed"])
    splits = load_data(args["data"], data_dir=args["data_dir"], download=args["download"], train_samples=args["train_samples"],
                       val_samples=args["val_samples"], num_classes=args["num_classes"])
    chosen = choose_model(args["model"], num_classes=splits.num_classes, resolution=args["resolution"],
                          model_kwargs=args["model_kwargs"])
    resolution, train_resolution = resolve_resolutions(chosen, args["resolution"], args["train_resolution"])
    batch_size = args["batch_size"]
    if args["mixup"] > 0 and batch_size % 2:
        raise CompoundError(f"mixup needs an even batch_size, got {batch_size}")
    settings = Settings(
        epochs=args["epochs"], batch_size=batch_size, lr=float(args["lr"] or default_lr(args["opt"], batch_size, world.world_size)),
        opt=args["opt"], sched=args["sched"], warmup_epochs=args["warmup_epochs"], weight_decay=float(args["weight_decay"]),
        momentum=float(args["momentum"]), smoothing=float(args["smoothing"]), mixup=float(args["mixup"]), ema=bool(args["ema"]),
        ema_decay=float(args["ema_decay"]), amp=amp, seed=args["seed"], resolution=resolution,
        train_resolution=train_resolution, augment=splits.augment if args["augment"] is None else bool(args["augment"]),
        train_samples=args["train_samples"], val_samples=args["val_samples"],
    )
    workers = default_workers(args["data"]) if args["workers"] is None else positive_int("workers", args["workers"], minimum=0)
    model_record = chosen.record()
    record = run.new_record(model=model_record, dataset=splits.description, settings=settings,
                            world_size=world.world_size, device=str(device), workers=workers)
    last = None
    if resuming:
        def check_resume():
            previous = run.read_record(run_dir)
            problems = run.resume_conflicts(previous, model=model_record, dataset=splits.description,
                                            settings=settings, world_size=world.world_size)
            if problems:
                raise CompoundError(f"cannot resume {run_dir}: " + "; ".join(problems) + " (nothing was changed)")
        _agreed(world, check_resume)
        record = {**run.read_record(run_dir), "status": "running", "message": None, "settings": settings.to_dict(),
                  "workers": workers, "device": str(device)}
        last = checkpoint.find_last(run_dir)

    loop = _build_loop(world, chosen.model, splits, settings, workers, args, record, run_dir, chosen.spec)
    if last is not None:
        loop.restore(last)
    if run_dir is not None:
        _agreed(world, lambda: (run.check_writable(run_dir), run.write_record(run_dir, loop.record)))
    return loop.run(args["on_epoch"])


def _build_loop(world: World, model, splits: DataSplits, settings: Settings, workers: int, args: dict[str, Any],
                record: dict[str, Any], run_dir: Path | None, spec: str) -> Loop:
    import timm.data

    device = world.device
    config = timm.data.resolve_model_data_config(model)
    train_tf, eval_tf = make_transforms(config, settings.train_resolution, settings.resolution,
                                        augment=settings.augment, crop_pct=splits.crop_pct)
    train_samples = Samples(splits.train, train_tf)
    pin = device.type == "cuda"
    batches = TrainBatches(train_samples, batch_size=settings.batch_size, seed=settings.seed, rank=world.rank,
                           world_size=world.world_size, workers=workers, pin_memory=pin)
    if len(batches) == 0:
        raise CompoundError(f"batch_size {settings.batch_size} x {world.world_size} process(es) is more than the "
                            f"{len(train_samples)} training images: no full batch to train on")
    parts = make_parts(
        model, device=device, opt=settings.opt, lr=settings.lr, weight_decay=settings.weight_decay,
        momentum=settings.momentum, sched=settings.sched, epochs=settings.epochs, warmup_epochs=settings.warmup_epochs,
        steps_per_epoch=len(batches), smoothing=settings.smoothing, mixup=settings.mixup,
        num_classes=splits.num_classes, ema=settings.ema, ema_decay=settings.ema_decay, amp=settings.amp,
        ddp=world.distributed,
    )
    evaluation = eval_loader(Samples(splits.val, eval_tf), batch_size=settings.batch_size, rank=world.rank,
                             world_size=world.world_size, workers=workers, pin_memory=pin)
    reporter = Reporter(args["progress"] if world.primary else "quiet", args["console"])
    pixels = (f"{settings.resolution} px" if settings.train_resolution == settings.resolution
              else f"trained at {settings.train_resolution} px, evaluated at {settings.resolution} px")
    title = f"{spec} on {splits.description['name']} ({pixels})"
    return Loop(parts, batches, evaluation, len(train_samples), settings, world, reporter, record, run_dir, title, [])


def _check_numbers(args: dict[str, Any]) -> None:
    positive_int("epochs", args["epochs"])
    positive_int("batch_size", args["batch_size"])
    positive_int("warmup_epochs", args["warmup_epochs"], minimum=0)
    positive_int("seed", args["seed"], minimum=0)
    if args["lr"] is not None:
        finite("lr", args["lr"], open_low=True)
    finite("weight_decay", args["weight_decay"])
    finite("momentum", args["momentum"], high=1.0)
    finite("smoothing", args["smoothing"], high=0.99)
    finite("mixup", args["mixup"])
    finite("ema_decay", args["ema_decay"], open_low=True, high=1.0)
    for name in ("opt", "sched"):
        if not isinstance(args[name], str) or not args[name]:
            raise CompoundError(f"{name} must be a name, got {args[name]!r}")


def _run_folder(out: str | Path | None, resume: str | Path | bool | None) -> tuple[Path | None, bool]:
    """(run folder, whether it continues an existing run)."""
    if resume is True:
        if out is None:
            raise CompoundError("resume=True continues the run in `out`: give out as well")
        return Path(out), (Path(out) / run.RUN_JSON).is_file()
    if resume in (None, False):
        return (Path(out) if out is not None else None), False
    folder = Path(resume)
    if out is not None and Path(out).resolve() != folder.resolve():
        raise CompoundError(f"resume continues {folder} in place; out {out} names another folder")
    run.read_record(folder)   # a clear error when it is not a run folder
    return folder, True


def _agreed(world: World, action) -> None:
    """Run a check (or a write) on rank 0 only; if it fails, every rank raises the same error."""
    problem = None
    if world.primary:
        try:
            action()
        except CompoundError as error:
            problem = str(error)
    problem = world.from_primary(problem)
    if problem is not None:
        raise CompoundError(problem)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate(
    model: Any,
    data: str = DEFAULT_DATA,
    *,
    weights: str | Path | None = None,
    resolution: int | None = None,
    batch_size: int = 64,
    val_samples: int | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    workers: int | None = None,
    device: str | torch.device | None = None,
    amp: str | None = None,
) -> EvalResult:
    """Top-1, top-5, loss and images/s of `model` on the validation split of `data`, at `resolution`
    (default: the model's own). `weights` (a .safetensors state dict, e.g. RUN/best.safetensors) is
    loaded first; with a name or plan the class count is read from the file."""
    import timm.data

    positive_int("batch_size", batch_size)
    device = resolve_device(device)
    amp = check_amp(amp, device.type)
    if weights is not None:
        chosen = load_trained(model, weights, resolution=resolution)
        splits = load_data(data, data_dir=data_dir, download=download, val_samples=val_samples)
        if chosen.model.num_classes != splits.num_classes:
            raise CompoundError(f"{weights} has {chosen.model.num_classes} classes but {data} has {splits.num_classes}")
    else:
        splits = load_data(data, data_dir=data_dir, download=download, val_samples=val_samples)
        chosen = choose_model(model, num_classes=splits.num_classes, resolution=resolution)
    pixels, _ = resolve_resolutions(chosen, resolution, None)
    module = chosen.model.to(device).eval()
    config = timm.data.resolve_model_data_config(module)
    _, eval_tf = make_transforms(config, pixels, pixels, augment=False, crop_pct=splits.crop_pct)
    workers = default_workers(data) if workers is None else positive_int("workers", workers, minimum=0)
    loader = eval_loader(Samples(splits.val, eval_tf), batch_size=batch_size, rank=0, world_size=1, workers=workers,
                         pin_memory=device.type == "cuda")
    start = time.perf_counter()
    sums = evaluate_batches(module, loader, device, amp)
    return EvalResult(
        top1=100.0 * round(sums.correct1) / sums.images, top5=100.0 * round(sums.correct5) / sums.images,
        loss=sums.loss / sums.images, images=sums.images, images_per_second=sums.images / sums.seconds,
        resolution=pixels, seconds=time.perf_counter() - start, num_classes=splits.num_classes,
    )


__all__ = ["evaluate", "native_resolution", "train"]
