"""Training progress for people and for scripts: a rich bar per epoch on a terminal, plain lines
(about ten per epoch, flushed) when stdout is not one, nothing when quiet. Only rank 0 reports."""

from __future__ import annotations

from typing import Literal

from rich.console import Console

from timm_compound.train.results import EpochMetrics

Mode = Literal["auto", "rich", "plain", "quiet"]


def summary(metrics: EpochMetrics, epochs: int) -> str:
    return (
        f"epoch {metrics.epoch}/{epochs}: train loss {metrics.train_loss:.4f} | val loss {metrics.eval_loss:.4f} "
        f"top-1 {metrics.top1:.2f}% top-5 {metrics.top5:.2f}% | lr {metrics.lr:.4g} | "
        f"{metrics.seconds:.1f} s, {metrics.images_per_second:.0f} img/s"
    )


class Reporter:
    """`mode`: 'auto' (rich on a terminal, plain otherwise), 'rich', 'plain' or 'quiet'."""

    def __init__(self, mode: Mode | bool = "auto", console: Console | None = None):
        if mode is True:
            mode = "auto"
        elif mode is False:
            mode = "quiet"
        self.console = console or Console()
        if mode == "auto":
            mode = "rich" if self.console.is_terminal else "plain"
        self.mode = mode
        self._bar = None
        self._task = None
        self._epoch = self._epochs = self._steps = 0

    @property
    def every(self) -> int:
        """Steps between measured updates (loss, accuracy): about ten per epoch."""
        return max(1, self._steps // 10)

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self._epoch, self._epochs, self._steps = epoch, epochs, steps
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(f"epoch {epoch}/{epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._bar.add_task("train", total=steps, status="")
            self._bar.start()

    def step(self, done: int, loss: float | None = None, top1: float | None = None, rate: float | None = None) -> None:
        """`done` batches of this epoch; loss/accuracy/images per second only at measured updates."""
        status = None if loss is None else f"loss {loss:.4f}  top-1 {top1:.1f}%  {rate:.0f} img/s"
        if self.mode == "rich" and self._bar is not None:
            self._bar.update(self._task, completed=done, **({"status": status} if status else {}))
        elif self.mode == "plain" and status is not None:
            self.message(f"epoch {self._epoch}/{self._epochs} [{done}/{self._steps}] {status}")

    def end_epoch(self, metrics: EpochMetrics) -> None:
        self._stop_bar()
        self.message(summary(metrics, self._epochs))

    def message(self, text: str) -> None:
        """One line (rich flushes each print, so a script reading stdout sees it at once)."""
        if self.mode != "quiet":
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
