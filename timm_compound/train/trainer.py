"""The epoch loop of one run: restore the last checkpoint, train, evaluate, reduce across ranks,
record (rank 0 only), checkpoint, report, ask `on_epoch` whether to go on.

Determinism: the data order is a function of (seed, epoch), every RNG is checkpointed at each
epoch's end (per rank), and a resumed run restarts the interrupted epoch from that state, so on the
same device it ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from timm_compound.train import checkpoint, predictions, run
from timm_compound.train.config import TrainConfig
from timm_compound.train.curves import plot_curves
from timm_compound.train.distributed import World
from timm_compound.train.engine import NonFiniteLoss, Parts, TrainSums, evaluate_batches, non_finite, train_epoch
from timm_compound.train.loaders import TrainBatches
from timm_compound.train.logs import Logs
from timm_compound.train.predictions import ImageResults
from timm_compound.train.progress import Reporter
from timm_compound.train.progressive import Stages
from timm_compound.train.results import EpochMetrics, TrainResult

OnEpoch = Callable[[int, EpochMetrics], Any]


@dataclass
class Loop:
    """A prepared run: model parts, loaders, where it writes, and what it has done so far."""

    parts: Parts
    train_batches: TrainBatches
    eval_batches: Any
    train_count: int
    settings: TrainConfig
    world: World
    reporter: Reporter
    record: dict[str, Any]
    run_dir: Path | None
    title: str
    history: list[EpochMetrics]
    stages: Stages = field(default_factory=lambda: Stages([]))
    logs: Logs = field(default_factory=Logs)
    best_epoch: int = 0
    updates: int = 0
    finished: bool = False
    throughput_said: bool = False
    images: ImageResults | None = None  # the last evaluation, image by image

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are evaluated and published: the EMA's when EMA is on."""
        return self.parts.ema.module if self.parts.ema is not None else self.parts.module

    def restore(self, folder: Path) -> None:
        """Continue from a checkpoint folder: weights, optimizer, scheduler, scaler, this rank's RNG."""
        weights, ema_weights, state = checkpoint.load_last(folder)
        self.parts.module.load_state_dict(weights)
        if self.parts.ema is not None and ema_weights is not None:
            self.parts.ema.module.load_state_dict(ema_weights)
        self.parts.optimizer.load_state_dict(state["optimizer"])
        if state["epochs"] == self.settings.epochs:  # more epochs asked for: the new length's schedule
            self.parts.scheduler.load_state_dict(state["scheduler"])
        if self.parts.scaler is not None and state.get("scaler"):
            self.parts.scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"][self.world.rank])
        self.history = [EpochMetrics.from_dict(row) for row in state["history"]]
        self.best_epoch, self.updates = int(state["best_epoch"]), int(state["updates"])

    def run(self, on_epoch: OnEpoch | None) -> TrainResult:
        start = time.perf_counter()
        status = "completed"
        first = len(self.history) + 1
        if first > 1:
            self.parts.scheduler.step(first - 1)
        try:
            for epoch in range(first, self.settings.epochs + 1):
                metrics = self.epoch(epoch)
                if on_epoch is not None and self.world.from_primary(bool(self.ask(on_epoch, epoch, metrics))):
                    status = "stopped"
                    break
        except NonFiniteLoss as error:
            if self.run_dir is None:
                kept = "no run folder was given, so nothing was saved"
            elif self.history:
                kept = (
                    f"the last good checkpoint (epoch {len(self.history)}) is kept in {self.run_dir / checkpoint.LAST}"
                )
            else:
                kept = "no epoch completed, so there is no checkpoint"
            self.finish("failed", f"{error}; {kept}")
            raise NonFiniteLoss(f"{error}; {kept}") from None
        except BaseException as error:
            if not self.finished:
                self.finish(
                    "failed" if isinstance(error, Exception) else "interrupted", f"{type(error).__name__}: {error}"
                )
            raise
        self.finish(status, None)
        self.evaluated.eval()
        return TrainResult(
            model=self.evaluated,
            history=list(self.history),
            status=status,
            run_dir=self.run_dir,
            settings=self.settings.computed(),
            dataset=self.record["dataset"],
            num_classes=self.record["model"]["num_classes"],
            best_epoch=self.best_epoch,
            seconds=time.perf_counter() - start,
            world_size=self.world.world_size,
            images=self.images,
        )

    def ask(self, on_epoch: OnEpoch, epoch: int, metrics: EpochMetrics) -> Any:
        """The callback's verdict; an exception it raises (e.g. a pruned Optuna trial) stops the run as "stopped"."""
        try:
            return on_epoch(epoch, metrics)
        except Exception as error:
            self.finish("stopped", f"on_epoch raised {type(error).__name__}: {error}")
            raise

    def epoch(self, epoch: int) -> EpochMetrics:
        start = time.perf_counter()
        parts, world, settings = self.parts, self.world, self.settings
        stage = self.stages.enter(epoch)
        if stage is not None:
            self.reporter.message(
                f"progressive stage {stage.stage}/{len(self.stages.stages)} (epochs "
                f"{stage.first_epoch}-{stage.last_epoch}): {stage.train_resolution} px"
                + (f", aa {stage.aa}" if stage.aa else "")
                + _regularisation(stage)
            )
        lr = parts.optimizer.param_groups[0]["lr"]
        self.reporter.start_epoch(epoch, settings.epochs, len(self.train_batches))
        visits = torch.zeros(self.train_count, dtype=torch.int64)
        sums, self.updates = train_epoch(
            parts,
            self.train_batches.epoch(epoch - 1),
            epoch=epoch,
            updates=self.updates,
            visits=visits,
            world=world,
            reporter=self.reporter,
            logs=self.logs,
            every=settings.log_every,
            throughput=None if self.throughput_said else self.say_throughput,
        )
        visits = world.sum_tensor(visits).cpu()
        loss, correct, images, seconds = world.sum([sums.loss, sums.correct, sums.images, sums.seconds])
        ev = evaluate_batches(
            self.evaluated,
            self.eval_batches,
            parts.device,
            parts.amp,
            channels_last=parts.channels_last,
            per_image=True,
        )
        self.images = ImageResults.merged(world.gather(ev.per_image), epoch)
        eval_loss, correct1, correct5, eval_images = world.sum([ev.loss, ev.correct1, ev.correct5, ev.images])
        if not math.isfinite(eval_loss):
            raise non_finite("validation loss", epoch, lr)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=loss / images,
            train_top1=100.0 * correct / images,
            eval_loss=eval_loss / eval_images,
            top1=100.0 * round(correct1) / eval_images,
            top5=100.0 * round(correct5) / eval_images,
            lr=lr,
            seconds=time.perf_counter() - start,
            images_per_second=images / (seconds / world.world_size),
            train_images=int(visits.sum()),
            distinct_images=int((visits > 0).sum()),
        )
        parts.scheduler.step(epoch, metrics.top1)
        self.history.append(metrics)
        if not self.best_epoch or metrics.top1 > self.history[self.best_epoch - 1].top1:
            self.best_epoch = epoch
            if self.run_dir is not None and world.primary:
                checkpoint.save_weights(self.evaluated.state_dict(), self.run_dir / checkpoint.BEST)
        self.save(epoch)
        self.logs.epoch(metrics, self.updates, self.stages.current)
        self.reporter.end_epoch(metrics)
        return metrics

    def say_throughput(self, sums: TrainSums, step: int) -> None:
        """Once, early in the first epoch this process trains: is the data loader or the model the bottleneck?"""
        self.throughput_said = True
        computing = sums.seconds - sums.waiting
        model_rate = sums.images / computing if computing > 0 else float("inf")
        share = sums.waiting / sums.seconds if sums.seconds > 0 else 0.0
        verdict = (
            "data loading is the bottleneck: the model waited for data "
            f"{share:.0%} of the time (raise --workers, or store the data on a faster disk)"
            if share > 0.2
            else f"the model is the bottleneck (it waited for data {share:.0%} of the time)"
        )
        self.reporter.message(
            f"throughput over the first {step} steps: model {model_rate:.0f} img/s "
            f"when it has data, {sums.images / sums.seconds:.0f} img/s overall; {verdict}"
        )

    def save(self, epoch: int) -> None:
        """Checkpoint (every rank's RNG), metrics.csv, curves.png and run.json: rank 0 writes, all wait."""
        rngs = self.world.gather(checkpoint.rng_state())
        if self.run_dir is None or not self.world.primary:
            self.world.barrier()
            return
        parts = self.parts
        state = {
            "epoch": epoch,
            "epochs": self.settings.epochs,
            "updates": self.updates,
            "best_epoch": self.best_epoch,
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(),
            "scaler": parts.scaler.state_dict() if parts.scaler is not None else None,
            "rng": rngs,
            "history": [row.to_dict() for row in self.history],
        }
        ema = parts.ema.module.state_dict() if parts.ema is not None else None
        checkpoint.save_last(self.run_dir, parts.module.state_dict(), ema, state)
        run.write_metrics(self.run_dir, self.history)
        if self.images is not None:
            predictions.write(self.run_dir, self.images)
        plot_curves(self.history, self.run_dir / run.CURVES, self.title)
        best = self.history[self.best_epoch - 1]
        self.record.update(
            epochs_completed=epoch,
            best={"epoch": best.epoch, "top1": best.top1, "top5": best.top5, "eval_loss": best.eval_loss},
        )
        run.write_record(self.run_dir, self.record)
        self.world.barrier()

    def finish(self, status: str, message: str | None) -> None:
        self.finished = True
        self.reporter.close()
        self.logs.close()
        if self.run_dir is not None and self.world.primary:
            self.record.update(status=status, message=message)
            run.write_record(self.run_dir, self.record)
            if status in ("completed", "stopped"):
                self.reporter.message(
                    f"run folder {self.run_dir}: best top-1 {self.record['best']['top1']:.2f}% "
                    f"at epoch {self.best_epoch}, weights in {self.run_dir / checkpoint.BEST}"
                )


def _regularisation(stage) -> str:
    parts = [
        f"{name} {value:g}"
        for name, value in (("mixup", stage.mixup), ("cutmix", stage.cutmix), ("dropout", stage.drop_rate))
        if value
    ]
    return "" if not parts else ", " + ", ".join(parts)
