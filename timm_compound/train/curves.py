"""curves.png: loss and accuracy against epoch, labelled for a report."""

from __future__ import annotations

from pathlib import Path

from timm_compound.train.results import EpochMetrics


def plot_curves(history: list[EpochMetrics], path: str | Path, title: str) -> None:
    """Two panels: train and validation loss; train top-1, validation top-1 and top-5 (percent)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    epochs = [row.epoch for row in history]
    figure = Figure(figsize=(10, 4))
    loss_ax, acc_ax = figure.subplots(1, 2)
    loss_ax.plot(epochs, [row.train_loss for row in history], "o-", label="train loss")
    loss_ax.plot(epochs, [row.eval_loss for row in history], "s-", label="validation loss")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    acc_ax.plot(epochs, [row.train_top1 for row in history], "o-", label="train top-1 (batches)")
    acc_ax.plot(epochs, [row.top1 for row in history], "s-", label="validation top-1")
    acc_ax.plot(epochs, [row.top5 for row in history], "^--", label="validation top-5")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(0, 100.5))
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(str(path), dpi=120)
