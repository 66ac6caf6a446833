"""Logs a person watches while a run trains: TensorBoard event files in the run folder (always, when
there is a run folder) and Weights & Biases (when asked and installed). Scalars per epoch, and at the
steps where the training loop reads its loss (about ten per epoch, or every `log_every` steps),
indexed by optimizer updates. Only rank 0 logs; nothing here touches a random number generator.

    RUN/tensorboard/    `tensorboard --logdir RUN` shows loss, top-1, lr and images/s
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.train.config import TrainConfig
from timm_compound.train.results import EpochMetrics

TENSORBOARD = "tensorboard"


class Logs:
    """Where scalars go: a TensorBoard writer and/or a wandb run (either may be absent)."""

    def __init__(self, writer: Any = None, wandb_run: Any = None):
        self.writer, self.wandb = writer, wandb_run

    def step(self, updates: int, scalars: dict[str, float]) -> None:
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, updates)
        if self.wandb is not None:
            self.wandb.log({**scalars, "updates": updates})

    def epoch(self, metrics: EpochMetrics, updates: int, stage: Any = None) -> None:
        scalars = {f"epoch/{name}": float(value) for name, value in metrics.to_dict().items() if name != "epoch"}
        if stage is not None:
            scalars["epoch/train_resolution"] = float(stage.train_resolution)
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, metrics.epoch)
            self.writer.flush()
        if self.wandb is not None:
            self.wandb.log({**scalars, "epoch": metrics.epoch, "updates": updates})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def open_logs(run_dir: Path | None, settings: TrainConfig, *, wandb: bool, title: str) -> Logs:
    """TensorBoard under RUN/tensorboard (no run folder: none), and a wandb run when `wandb` is asked for."""
    writer = None
    if run_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD))
    wandb_run = _wandb(run_dir, settings, title) if wandb else None
    return Logs(writer, wandb_run)


def check_wandb() -> None:
    """log_wandb needs the optional wandb package; say so before anything is built."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise CompoundError("log_wandb needs Weights & Biases: pip install wandb (or leave --log-wandb off)") from None


def _wandb(run_dir: Path | None, settings: TrainConfig, title: str):
    check_wandb()
    import wandb

    return wandb.init(
        project="timm-compound",
        name=run_dir.name if run_dir is not None else title,
        dir=str(run_dir) if run_dir is not None else None,
        config=settings.to_json(),
        resume="allow",
    )
