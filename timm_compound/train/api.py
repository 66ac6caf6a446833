"""`train()` and `evaluate()`: the public entry points (the CLI's `train` and `eval` call these).

Every setting is a field of `TrainConfig`, checked before anything is built; the data is opened and
the model built before anything is written; a new run never writes into a used folder, and a
resumed one either takes every setting from its run.json (`train(resume=RUN)`) or must ask for
what its run.json recorded (`train(model, resume=RUN, ...)`, as experiments and searches do).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.train import checkpoint, run
from timm_compound.train.config import DEFAULT_DATA, TrainConfig, build_config, default_lr
from timm_compound.train.data import DataSplits, load_data
from timm_compound.train.distributed import World, resolve_device, setup
from timm_compound.train.engine import evaluate_batches
from timm_compound.train.loaders import Samples, TrainBatches, eval_loader, make_transforms
from timm_compound.train.logs import check_wandb, open_logs
from timm_compound.train.models import Chosen, choose_model, load_trained, minimum_resolution
from timm_compound.train.progress import Mode, Reporter
from timm_compound.train.progressive import Stages
from timm_compound.train.regularisation import regularisation
from timm_compound.train.results import EvalResult, TrainResult
from timm_compound.train.resume import Resumed, from_folder
from timm_compound.train.settings import check_amp, positive_int
from timm_compound.train.setup import (
    check_can_create,
    check_speed,
    default_workers,
    make_parts,
    native_resolution,
    resolve_resolutions,
)
from timm_compound.train.trainer import Loop, OnEpoch


@dataclass
class _Request:
    """One call of train(): the settings, what to build, and where the run lives."""

    config: TrainConfig
    model: Any  # an nn.Module, a ScalePlan, or None (config.model names it)
    run_dir: Path | None
    resuming: bool
    model_kwargs: dict[str, Any]
    extended_from: int | None = None  # a resume that extends the run: its epochs before


def train(
    model: Any = None,
    data: str | None = None,
    *,
    config: TrainConfig | dict[str, Any] | None = None,
    out: str | Path | None = None,
    resume: str | Path | bool | None = None,
    progress: Mode | bool = "auto",
    console: Console | None = None,
    on_epoch: OnEpoch | None = None,
    model_kwargs: dict[str, Any] | None = None,
    **settings: Any,
) -> TrainResult:
    """Train `model` (an nn.Module, a registered name, a base a rule covers, or a ScalePlan) on `data`.

    `config` is a `TrainConfig` (or a dict of its fields); keywords set fields on top of it
    (`epochs=3, lr=0.05, aa="rand-m9-mstd0.5"`): see `TrainConfig` for every setting and its default.
    Uses timm's create_optimizer_v2, create_scheduler_v2 (stepped per epoch), create_transform with
    the model's data config, Mixup/CutMix, ModelEmaV3, NativeScaler and dispatch_clip_grad.
    `out` is the run folder (None: write nothing). `resume=RUN` alone continues that run with every
    setting from its run.json (only a larger `epochs` and where it runs may be given);
    `train(model, ..., resume=RUN)` must ask for what the run recorded; `resume=True` continues the
    run in `out` if there is one and starts it otherwise. `on_epoch(epoch, metrics)` runs after each
    epoch is saved (on every rank); returning True stops training there, and an exception it raises
    (an Optuna pruner's TrialPruned) propagates; either way run.json says "stopped".
    `progress`: 'auto' (a rich bar per epoch on a terminal, plain lines otherwise), 'plain', or
    False for none; lines go to `console` (default: stdout).
    Under `torchrun` each process trains its shard with DistributedDataParallel.
    """
    request = _request(model, data, config, out, resume, settings, model_kwargs)
    device = resolve_device(request.config.device)
    world = setup(device)
    try:
        return _train(world, request, progress, console, on_epoch)
    finally:
        world.close()


def _request(
    model: Any,
    data: str | None,
    config: Any,
    out: Any,
    resume: Any,
    settings: dict[str, Any],
    model_kwargs: dict[str, Any] | None,
) -> _Request:
    if data is not None:
        settings["data"] = data
    if isinstance(model, str):
        settings["model"] = model
    run_dir, resuming = _run_folder(out, resume)
    if model is None and config is None and resuming and resume is not True:
        resumed: Resumed = from_folder(run_dir, settings)
        if model_kwargs:
            raise CompoundError(
                f"cannot resume {run_dir} with model_kwargs: the run's model is rebuilt from its run.json"
            )
        return _Request(resumed.config, resumed.model, run_dir, True, resumed.model_kwargs, resumed.extended_from)
    built = build_config(config, **settings)
    if model is None and built.model is None:
        raise CompoundError(
            "give the model to train (a registered name, a base, a ScalePlan or an nn.Module), "
            "or resume=RUN to continue a run"
        )
    return _Request(built, None if isinstance(model, str) else model, run_dir, resuming, dict(model_kwargs or {}))


def _train(
    world: World, request: _Request, progress: Mode | bool, console: Console | None, on_epoch: OnEpoch | None
) -> TrainResult:
    config, device, run_dir = request.config, world.device, request.run_dir
    amp = check_amp(config.amp, device.type)
    check_speed(config, device)
    if config.log_wandb:
        check_wandb()
    if run_dir is not None and not request.resuming:
        _agreed(world, lambda: (check_can_create(run_dir), run.check_new(run_dir)))
    _seed_everything(config.seed)
    splits = load_data(
        config.data,
        data_dir=config.data_dir,
        download=config.download,
        train_samples=config.train_samples,
        val_samples=config.val_samples,
        num_classes=config.num_classes,
    )
    spec = request.model if request.model is not None else config.model
    drops = regularisation(spec, config, phi=config.phi, resolution=config.resolution)
    chosen = choose_model(
        spec,
        num_classes=splits.num_classes,
        resolution=config.resolution,
        phi=config.phi,
        norm=config.norm,
        model_kwargs={**drops.model_kwargs, **request.model_kwargs},
    )
    resolution, train_resolution = resolve_resolutions(chosen, config.resolution, config.train_resolution)
    augment = splits.augment if config.augment is None else config.augment
    if not augment and (config.aa or config.reprob):
        raise CompoundError(
            f"aa and reprob are training augmentations, and {config.data} trains without augmentation "
            "by default: pass augment=True (--augment) to use them"
        )
    settings = config.model_copy(
        update=dict(
            lr=float(config.lr or default_lr(config, world.world_size)),
            amp=amp,
            resolution=resolution,
            train_resolution=train_resolution,
            augment=augment,
            drop_rate=drops.drop_rate(chosen.model),
            drop_path=drops.drop_path,
        )
    )
    stages = Stages.plan(settings, minimum=minimum_resolution(chosen))
    workers = default_workers(config.data) if config.workers is None else config.workers
    model_record = {**chosen.record(), "kwargs": run.json_or_none(request.model_kwargs)}
    record = run.new_record(
        model=model_record,
        dataset=splits.description,
        config=config,
        settings=settings,
        world_size=world.world_size,
        device=str(device),
        workers=workers,
        regularisation=drops.describe(settings),
        progressive=stages.describe(),
    )
    last = None
    if request.resuming:

        def check_resume():
            previous = run.read_record(run_dir)
            problems = run.resume_conflicts(
                previous, model=model_record, dataset=splits.description, settings=settings, world_size=world.world_size
            )
            if problems:
                raise CompoundError(f"cannot resume {run_dir}: " + "; ".join(problems) + " (nothing was changed)")

        _agreed(world, check_resume)
        record = {
            **run.read_record(run_dir),
            "status": "running",
            "message": None,
            "config": config.to_json(),
            "settings": run.settings_record(settings),
            "workers": workers,
            "device": str(device),
            "progressive": stages.describe(),
        }
        last = checkpoint.find_last(run_dir)
        if last is None and int(record.get("epochs_completed") or 0) > 0:
            raise CompoundError(
                f"cannot resume {run_dir}: it completed {record['epochs_completed']} epoch(s) but its "
                f"training state ({checkpoint.LAST}/{checkpoint.STATE}) is gone (removed to save disk "
                "when it finished); train a new run instead (nothing was changed)"
            )

    logs = open_logs(
        run_dir if world.primary else None, settings, wandb=config.log_wandb and world.primary, title=chosen.spec
    )
    loop = _build_loop(
        world,
        chosen,
        splits,
        settings,
        workers,
        record,
        run_dir,
        stages,
        logs,
        Reporter(progress if world.primary else "quiet", console),
    )
    if last is not None:
        loop.restore(last)
        _say_resumed(loop, run_dir, request.extended_from)
    if run_dir is not None:
        _agreed(world, lambda: (run.check_writable(run_dir), run.write_record(run_dir, loop.record)))
    return loop.run(on_epoch)


def _say_resumed(loop: Loop, run_dir: Path, extended_from: int | None) -> None:
    done, epochs = len(loop.history), loop.settings.epochs
    if done >= epochs:
        loop.reporter.message(
            f"{run_dir} is already finished ({done} of {epochs} epochs): give a larger epochs "
            f"(--epochs N, N > {epochs}) to train it longer"
        )
    elif extended_from is not None and extended_from != epochs:
        loop.reporter.message(
            f"extending {run_dir} from {extended_from} to {epochs} epochs: the {loop.settings.sched} "
            f"schedule is recomputed for {epochs} epochs from epoch {done + 1} on"
        )
    else:
        loop.reporter.message(f"resuming {run_dir} after epoch {done} of {epochs}")


def _build_loop(
    world: World,
    chosen: Chosen,
    splits: DataSplits,
    settings: TrainConfig,
    workers: int,
    record: dict[str, Any],
    run_dir: Path | None,
    stages: Stages,
    logs,
    reporter: Reporter,
) -> Loop:
    import timm.data

    device = world.device
    data_config = timm.data.resolve_model_data_config(chosen.model)
    train_tf, eval_tf = make_transforms(
        data_config,
        settings.train_resolution,
        settings.resolution,
        augment=settings.augment,
        crop_pct=splits.crop_pct,
        aa=settings.aa,
        reprob=settings.reprob,
    )
    train_samples = Samples(splits.train, train_tf)
    pin = device.type == "cuda"
    batches = TrainBatches(
        train_samples,
        batch_size=settings.batch_size,
        seed=settings.seed,
        rank=world.rank,
        world_size=world.world_size,
        workers=workers,
        pin_memory=pin,
    )
    if len(batches) == 0:
        raise CompoundError(
            f"batch_size {settings.batch_size} x {world.world_size} process(es) is more than the "
            f"{len(train_samples)} training images: no full batch to train on"
        )
    updates = -(-len(batches) // settings.grad_accum)
    parts = make_parts(
        chosen.model,
        settings,
        device=device,
        updates_per_epoch=updates,
        num_classes=splits.num_classes,
        ddp=world.distributed,
    )
    evaluation = eval_loader(
        Samples(splits.val, eval_tf),
        batch_size=settings.batch_size,
        rank=world.rank,
        world_size=world.world_size,
        workers=workers,
        pin_memory=pin,
    )
    pixels = (
        f"{settings.resolution} px"
        if settings.train_resolution == settings.resolution
        else f"trained at {settings.train_resolution} px, evaluated at {settings.resolution} px"
    )
    title = f"{chosen.spec} on {splits.description['name']} ({pixels})"
    stages.bind(data_config, settings, train_samples, parts)
    return Loop(
        parts,
        batches,
        evaluation,
        len(train_samples),
        settings,
        world,
        reporter,
        record,
        run_dir,
        title,
        [],
        stages=stages,
        logs=logs,
    )


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
    run.read_record(folder)  # a clear error when it is not a run folder
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
    channels_last: bool = False,
    norm: str | None = None,
) -> EvalResult:
    """Top-1, top-5, loss and images/s of `model` on the validation split of `data`, at `resolution`
    (default: the model's own). `weights` (a .safetensors state dict, e.g. RUN/best.safetensors) is
    loaded first; with a name or plan the class count is read from the file. `norm` builds a name or
    plan with that norm (the one its weights were trained with)."""
    import timm.data

    positive_int("batch_size", batch_size)
    device = resolve_device(device)
    amp = check_amp(amp, device.type)
    if weights is not None:
        chosen = load_trained(model, weights, resolution=resolution, norm=norm)
        splits = load_data(data, data_dir=data_dir, download=download, val_samples=val_samples)
        if chosen.model.num_classes != splits.num_classes:
            raise CompoundError(f"{weights} has {chosen.model.num_classes} classes but {data} has {splits.num_classes}")
    else:
        splits = load_data(data, data_dir=data_dir, download=download, val_samples=val_samples)
        chosen = choose_model(model, num_classes=splits.num_classes, resolution=resolution, norm=norm)
    pixels, _ = resolve_resolutions(chosen, resolution, None)
    module = chosen.model.to(device).eval()
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    config = timm.data.resolve_model_data_config(module)
    _, eval_tf = make_transforms(config, pixels, pixels, augment=False, crop_pct=splits.crop_pct)
    workers = default_workers(data) if workers is None else positive_int("workers", workers, minimum=0)
    loader = eval_loader(
        Samples(splits.val, eval_tf),
        batch_size=batch_size,
        rank=0,
        world_size=1,
        workers=workers,
        pin_memory=device.type == "cuda",
    )
    start = time.perf_counter()
    sums = evaluate_batches(module, loader, device, amp, channels_last=channels_last)
    return EvalResult(
        top1=100.0 * round(sums.correct1) / sums.images,
        top5=100.0 * round(sums.correct5) / sums.images,
        loss=sums.loss / sums.images,
        images=sums.images,
        images_per_second=sums.images / sums.seconds,
        resolution=pixels,
        seconds=time.perf_counter() - start,
        num_classes=splits.num_classes,
    )


__all__ = ["TrainConfig", "evaluate", "native_resolution", "train"]
