"""The loops: one training epoch and one evaluation pass, built from timm's parts.

Per step: optional `timm.data.Mixup`, forward under `torch.autocast` when AMP is on, the loss,
backward (through timm's `NativeScaler` for fp16), optimizer step, `step_update` of the timm
scheduler, `ModelEmaV3.update`. Losses and correct counts accumulate as tensors and are read
(one sync) only at the reporter's ~10 measured updates per epoch, where a non-finite loss stops
training on every rank at once.
"""

from __future__ import annotations

import contextlib
import time
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
    """Everything one training step uses; `model` may be DDP-wrapped, `module` never is."""

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


@dataclass
class TrainSums:
    """This rank's totals for one epoch."""

    loss: float
    correct: float
    images: int
    seconds: float


@dataclass
class EvalSums:
    loss: float
    correct1: float
    correct5: float
    images: int
    seconds: float


def autocast(device: torch.device, amp: str | None):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def train_epoch(parts: Parts, loader, *, epoch: int, updates: int, visits: torch.Tensor, world: World,
                reporter: Reporter) -> tuple[TrainSums, int]:
    """One pass over this rank's shard; returns the sums and the number of optimizer updates so far."""
    model, device = parts.model, parts.device
    model.train()
    steps = len(loader)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    images = 0
    start = time.perf_counter()
    for step, (inputs, targets, positions) in enumerate(loader, start=1):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        labels = targets
        if parts.mixup is not None:
            inputs, targets = parts.mixup(inputs, targets)
        with autocast(device, parts.amp):
            output = model(inputs)
            loss = parts.loss_fn(output, targets)
        parts.optimizer.zero_grad(set_to_none=True)
        if parts.scaler is not None:
            parts.scaler(loss, parts.optimizer)
        else:
            loss.backward()
            parts.optimizer.step()
        updates += 1
        parts.scheduler.step_update(num_updates=updates)
        if parts.ema is not None:
            parts.ema.update(parts.module, step=updates)
        batch = labels.shape[0]
        images += batch
        loss_sum += loss.detach().double() * batch
        correct += (output.detach().argmax(dim=-1) == labels).sum()
        visits.index_add_(0, positions, torch.ones_like(positions))
        if step % reporter.every == 0 or step == steps:
            _check_finite(loss_sum, world, epoch, step, steps, parts.optimizer)
            elapsed = time.perf_counter() - start
            reporter.step(step, loss_sum.item() / images, 100.0 * correct.item() / images, images * world.world_size / elapsed)
        else:
            reporter.step(step)
    return TrainSums(loss_sum.item(), correct.item(), images, time.perf_counter() - start), updates


def non_finite(what: str, epoch: int, lr: float) -> NonFiniteLoss:
    return NonFiniteLoss(f"the {what} became NaN or infinite in epoch {epoch} at lr {lr:.4g}: "
                         "training stopped; lower the learning rate (or turn off amp)")


def _check_finite(loss_sum: torch.Tensor, world: World, epoch: int, step: int, steps: int, optimizer) -> None:
    bad = world.sum([0.0 if bool(torch.isfinite(loss_sum)) else 1.0])[0]
    if bad:
        raise non_finite(f"training loss (by step {step}/{steps})", epoch, optimizer.param_groups[0]["lr"])


@torch.inference_mode()
def evaluate_batches(model: nn.Module, loader, device: torch.device, amp: str | None = None) -> EvalSums:
    """Summed cross-entropy and top-1/top-5 correct counts (timm.utils.accuracy) over this rank's shard."""
    from timm.utils import accuracy

    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss = correct1 = correct5 = 0.0
    images = 0
    start = time.perf_counter()
    for inputs, targets, _ in loader:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast(device, amp):
            output = model(inputs)
        output = output.float()
        batch = targets.shape[0]
        top1, top5 = accuracy(output, targets, topk=(1, 5))
        loss += loss_fn(output, targets).item()
        correct1 += top1.item() * batch / 100.0
        correct5 += top5.item() * batch / 100.0
        images += batch
    return EvalSums(loss, correct1, correct5, images, time.perf_counter() - start)
