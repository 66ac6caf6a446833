"""Building a run before its first step: checked resolutions and speed options, and timm's optimizer,
scheduler, loss, Mixup/CutMix, EMA and gradient scaler for the model. Nothing here writes a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.train.config import TrainConfig
from timm_compound.train.engine import Parts
from timm_compound.train.models import Chosen, minimum_resolution
from timm_compound.train.settings import finite, positive_int


def native_resolution(model: nn.Module) -> int:
    import timm.data

    return int(timm.data.resolve_model_data_config(model)["input_size"][-1])


def resolve_resolutions(
    chosen: Chosen, resolution: int | None, train_resolution: int | float | None
) -> tuple[int, int]:
    """(evaluation pixels, training pixels); train_resolution is pixels (int) or a fraction (float) of the first."""
    if resolution is not None:
        positive_int("resolution", resolution)
    native = native_resolution(chosen.model)
    evaluated = resolution or native
    if train_resolution is None:
        trained = evaluated
    elif isinstance(train_resolution, bool) or not isinstance(train_resolution, (int, float)):
        raise CompoundError(f"train_resolution must be pixels (int) or a fraction (float), got {train_resolution!r}")
    elif isinstance(train_resolution, float):
        fraction = finite("train_resolution", train_resolution, low=0.0, open_low=True)
        trained = max(1, round(evaluated * fraction))
    else:
        trained = positive_int("train_resolution", train_resolution)
    floor = minimum_resolution(chosen)
    for label, pixels in (("resolution", evaluated), ("train_resolution", trained)):
        if pixels < floor:
            source = (
                f"rule {chosen.plan.rule_file}'s resolution.min"
                if chosen.plan is not None
                else "the network's total stride"
            )
            raise CompoundError(f"{label} {pixels} px is below the {floor} px {chosen.spec} accepts ({source})")
    if (chosen.model.pretrained_cfg or {}).get("fixed_input_size") and (evaluated, trained) != (native, native):
        raise CompoundError(f"{chosen.spec} takes only {native} px inputs (fixed_input_size)")
    return evaluated, trained


def default_workers(data: str) -> int:
    """In-memory built-in data needs no loader processes; files do."""
    return 0 if data.startswith("builtin:") else min(8, os.cpu_count() or 1)


def check_speed(config: TrainConfig, device: torch.device) -> None:
    """The speed options this torch and device can honour (fp16 is checked with amp)."""
    if config.compile is not None and not hasattr(torch, "compile"):
        raise CompoundError(f"compile needs torch.compile (torch 2.0 or later); this is torch {torch.__version__}")
    if config.compile is not None and config.compile_backend not in _backends():
        raise CompoundError(
            f"compile_backend {config.compile_backend!r} is not one torch.compile knows: {', '.join(_backends())}"
        )


def _backends() -> list[str]:
    import torch._dynamo

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def make_parts(
    module: nn.Module,
    settings: TrainConfig,
    *,
    device: torch.device,
    updates_per_epoch: int,
    num_classes: int,
    ddp: bool,
) -> Parts:
    """timm's optimizer and scheduler (stepped per epoch, as timm's train.py does by default), the loss,
    Mixup/CutMix, EMA and (for fp16) the gradient scaler, around the model on `device`; the model in
    channels-last layout, compiled and DDP-wrapped when asked (`Parts.module` stays the plain module)."""
    import timm.loss
    import timm.optim
    import timm.scheduler
    from timm.data import Mixup
    from timm.utils import ModelEmaV3, NativeScaler

    module.to(device)
    if settings.channels_last:
        module.to(memory_format=torch.channels_last)
    try:
        optimizer = timm.optim.create_optimizer_v2(
            module, settings.opt, lr=settings.lr, weight_decay=settings.weight_decay, momentum=settings.momentum
        )
    except (AssertionError, ValueError, KeyError, TypeError) as error:
        raise CompoundError(f"optimizer {settings.opt!r}: {error}") from None
    try:
        scheduler, _ = timm.scheduler.create_scheduler_v2(
            optimizer,
            settings.sched,
            num_epochs=settings.epochs,
            warmup_epochs=settings.warmup_epochs,
            plateau_mode="max",
            step_on_epochs=True,
            updates_per_epoch=updates_per_epoch,
        )
    except (AssertionError, ValueError, TypeError) as error:
        raise CompoundError(f"scheduler {settings.sched!r}: {error}") from None
    if settings.mixup > 0 or settings.cutmix > 0:
        loss_fn: nn.Module = timm.loss.SoftTargetCrossEntropy()
        mixer = Mixup(
            mixup_alpha=settings.mixup,
            cutmix_alpha=settings.cutmix,
            label_smoothing=settings.smoothing,
            num_classes=num_classes,
        )
    else:
        smoothing = settings.smoothing
        loss_fn = timm.loss.LabelSmoothingCrossEntropy(smoothing) if smoothing > 0 else nn.CrossEntropyLoss()
        mixer = None
    model = module
    if settings.compile is not None:
        model = torch.compile(module, mode=settings.compile, backend=settings.compile_backend)
    if ddp:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Parts(
        model=model,
        module=module,
        optimizer=optimizer,
        scheduler=scheduler or _NoSchedule(),
        loss_fn=loss_fn.to(device),
        device=device,
        amp=settings.amp,
        mixup=mixer,
        ema=ModelEmaV3(module, decay=settings.ema_decay, use_warmup=True) if settings.ema else None,
        scaler=NativeScaler(device=device.type) if settings.amp == "fp16" else None,
        grad_accum=settings.grad_accum,
        clip_grad=settings.clip_grad,
        clip_mode=settings.clip_mode,
        channels_last=settings.channels_last,
    )


class _NoSchedule:
    """sched='none': the optimizer's lr stays as given."""

    def step(self, epoch: int, metric: Any = None) -> None:
        pass

    def step_update(self, num_updates: int, metric: Any = None) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def check_can_create(path: Path) -> None:
    """Refuse, before any work, a run folder that could never be written: under a file, or read-only."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise CompoundError(f"cannot write the run folder {path}: {probe} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise CompoundError(f"cannot write the run folder {path}: {probe} is not writable")
