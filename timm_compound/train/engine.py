"""The loops: one training epoch and one evaluation pass, built from timm's parts.

Per step: optional `timm.data.Mixup` (Mixup and CutMix), forward under `torch.autocast` when AMP is
on, the loss, backward (through timm's `NativeScaler` for fp16); after every `grad_accum` batches,
gradient clipping (`timm.utils.dispatch_clip_grad`), the optimizer step, `step_update` of the timm
scheduler, `ModelEmaV3.update`. Losses and correct counts accumulate as tensors and are read
(one sync) only at the reporter's ~10 measured updates per epoch, where a non-finite loss stops
training on every rank at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.train.distributed import World
from timm_compound.train.progress import Reporter

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLoss(CompoundError):
    """The training loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


@dataclass
class Parts:
    """Everything one training step uses; `model` may be compiled and DDP-wrapped, `module` never is."""

    model: nn.Module
    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    device: torch.device
    amp: str | None = None
    mixup: Any = None
    ema: Any = None
    scaler: Any = None
    grad_accum: int = 1
    clip_grad: float | None = None
    clip_mode: str = "norm"
    channels_last: bool = False


@dataclass
class TrainSums:
    """This rank's totals for one epoch; `waiting` is the time spent waiting for the data loader."""

    loss: float
    correct: float
    images: int
    seconds: float
    waiting: float = 0.0


@dataclass
class EvalSums:
    loss: float
    correct1: float
    correct5: float
    images: int
    seconds: float
    per_image: tuple[list[int], list[int], list[int]] | None = None  # (positions, labels, predicted), when asked


def autocast(device: torch.device, amp: str | None):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def to_device(inputs: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    inputs = inputs.to(device, non_blocking=True)
    return inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs


def train_epoch(
    parts: Parts,
    loader,
    *,
    epoch: int,
    updates: int,
    visits: torch.Tensor,
    world: World,
    reporter: Reporter,
    logs: Any = None,
    every: int | None = None,
    throughput: Callable[[TrainSums, int], None] | None = None,
) -> tuple[TrainSums, int]:
    """One pass over this rank's shard; returns the sums and the number of optimizer updates so far.

    With `grad_accum` N, the gradients of N batches (each loss divided by the group's size) add up to
    one optimizer step, as timm's train.py does; the last group of an epoch may be shorter. Gradients
    are clipped (timm's dispatch_clip_grad) just before each step. Loss and accuracy are read (one
    sync) every `every` steps (default: the reporter's ~10 per epoch), where `logs` get them too and
    `throughput(sums, step)` is called once at the first."""
    model, device, accum = parts.model, parts.device, parts.grad_accum
    model.train()
    steps = len(loader)
    every = every or reporter.every
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    images = 0
    waiting = 0.0
    start = time.perf_counter()
    batches = iter(loader)
    for step in range(1, steps + 1):
        fetched = time.perf_counter()
        inputs, targets, positions = next(batches)
        waiting += time.perf_counter() - fetched
        inputs = to_device(inputs, device, parts.channels_last)
        targets = targets.to(device, non_blocking=True)
        labels = targets
        if parts.mixup is not None:
            inputs, targets = parts.mixup(inputs, targets)
        first, group = (step - 1) % accum == 0, min(accum, steps - (step - 1) // accum * accum)
        last = step % accum == 0 or step == steps
        if first:
            parts.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients once per optimizer step, not after every accumulated batch
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast(device, parts.amp):
                output = model(inputs)
                loss = parts.loss_fn(output, targets)
            _backward(parts, loss / group, step_now=last)
        if last:
            updates += 1
            parts.scheduler.step_update(num_updates=updates)
            if parts.ema is not None:
                parts.ema.update(parts.module, step=updates)
        batch = labels.shape[0]
        images += batch
        loss_sum += loss.detach().double() * batch
        correct += (output.detach().argmax(dim=-1) == labels).sum()
        visits.index_add_(0, positions, torch.ones_like(positions))
        if step % every == 0 or step == steps:
            _check_finite(loss_sum, world, epoch, step, steps, parts.optimizer)
            elapsed = time.perf_counter() - start
            mean_loss, top1 = loss_sum.item() / images, 100.0 * correct.item() / images
            rate = images * world.world_size / elapsed
            reporter.step(step, mean_loss, top1, rate)
            if logs is not None:
                logs.step(
                    updates,
                    {
                        "train/loss": mean_loss,
                        "train/top1": top1,
                        "train/images_per_second": rate,
                        "train/lr": parts.optimizer.param_groups[0]["lr"],
                    },
                )
            if throughput is not None and (step >= max(2, steps // 5) or step == steps):
                throughput(TrainSums(mean_loss, top1, images, elapsed, waiting), step)
                throughput = None
        else:
            reporter.step(step)
    return TrainSums(loss_sum.item(), correct.item(), images, time.perf_counter() - start, waiting), updates


def _backward(parts: Parts, loss: torch.Tensor, *, step_now: bool) -> None:
    """Backward; at the end of an accumulation group, clip and step (through the fp16 scaler if any)."""
    if parts.scaler is not None:
        parts.scaler(
            loss,
            parts.optimizer,
            clip_grad=parts.clip_grad,
            clip_mode=parts.clip_mode,
            parameters=parts.module.parameters(),
            need_update=step_now,
        )
        return
    loss.backward()
    if step_now:
        if parts.clip_grad is not None:
            from timm.utils import dispatch_clip_grad

            dispatch_clip_grad(parts.module.parameters(), parts.clip_grad, mode=parts.clip_mode)
        parts.optimizer.step()


def non_finite(what: str, epoch: int, lr: float) -> NonFiniteLoss:
    return NonFiniteLoss(
        f"the {what} became NaN or infinite in epoch {epoch} at lr {lr:.4g}: "
        "training stopped; lower the learning rate (or turn off amp)"
    )


def _check_finite(loss_sum: torch.Tensor, world: World, epoch: int, step: int, steps: int, optimizer) -> None:
    bad = world.sum([0.0 if bool(torch.isfinite(loss_sum)) else 1.0])[0]
    if bad:
        raise non_finite(f"training loss (by step {step}/{steps})", epoch, optimizer.param_groups[0]["lr"])


@torch.inference_mode()
def evaluate_batches(
    model: nn.Module,
    loader,
    device: torch.device,
    amp: str | None = None,
    *,
    channels_last: bool = False,
    per_image: bool = False,
) -> EvalSums:
    """Summed cross-entropy and top-1/top-5 correct counts (timm.utils.accuracy) over this rank's shard;
    with `per_image`, also each image's position in the split, its label and the predicted class."""
    from timm.utils import accuracy

    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss = correct1 = correct5 = 0.0
    images = 0
    positions: list[int] = []
    labels: list[int] = []
    predicted: list[int] = []
    start = time.perf_counter()
    for inputs, targets, where in loader:
        inputs, targets = to_device(inputs, device, channels_last), targets.to(device, non_blocking=True)
        with autocast(device, amp):
            output = model(inputs)
        output = output.float()
        batch = targets.shape[0]
        top1, top5 = accuracy(output, targets, topk=(1, 5))
        loss += loss_fn(output, targets).item()
        correct1 += top1.item() * batch / 100.0
        correct5 += top5.item() * batch / 100.0
        images += batch
        if per_image:
            positions += [int(p) for p in where]
            labels += targets.tolist()
            predicted += output.topk(1, 1, True, True).indices[:, 0].tolist()  # as accuracy() ranks them
    return EvalSums(
        loss,
        correct1,
        correct5,
        images,
        time.perf_counter() - start,
        (positions, labels, predicted) if per_image else None,
    )
