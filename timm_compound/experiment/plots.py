"""The experiment's figures, sized and labelled to go into a paper as they are.

- accuracy_vs_gmacs.png: final top-1 against real GMACs (log x), one line per strategy from the base
  through each budget, references as labelled points (the EfficientNet paper's Figure 3 / 8 shape);
- accuracy_vs_params.png: the same against parameters;
- accuracy_vs_latency.png: the same against median latency measured on this machine, with the 95%
  interval as error bars and where it was timed under the axis (when the experiment timed its models);
- curves.png: training loss and validation top-1 against epoch for every model.
"""

from __future__ import annotations

from pathlib import Path

from timm_compound.experiment.inputs import KNOWN_STRATEGIES
from timm_compound.experiment.results import BASE, REFERENCE, Row

STYLE = {   # strategy -> (colour, marker), the same in every figure
    "depth": ("tab:blue", "o"), "width": ("tab:orange", "s"), "resolution": ("tab:green", "^"),
    "compound": ("tab:red", "D"), "dWr": ("tab:purple", "v"), BASE: ("black", "o"), REFERENCE: ("dimgray", "*"),
}
DPI = 150


def _figure(width: float = 6.4, height: float = 4.6, columns: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, columns)


def _trained(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.top1 is not None]


def _lines(rows: list[Row], x, axis, xlabel: str, title: str) -> None:
    base = next((row for row in rows if row.variant.strategy == BASE), None)
    for strategy in KNOWN_STRATEGIES:
        points = sorted((row for row in rows if row.variant.strategy == strategy), key=lambda row: x(row))
        if not points:
            continue
        line = ([base] if base is not None else []) + points
        colour, marker = STYLE[strategy]
        axis.plot([x(row) for row in line], [row.top1 for row in line], marker=marker, color=colour, linewidth=2,
                  markersize=7, label=f"{strategy} only" if strategy not in ("compound", "dWr") else strategy)
    if base is not None:
        axis.plot([x(base)], [base.top1], "o", color="black", markersize=8, zorder=5, label="base")
    for row in rows:
        if row.variant.strategy == REFERENCE:
            colour, marker = STYLE[REFERENCE]
            axis.plot([x(row)], [row.top1], marker=marker, color=colour, markersize=13, linestyle="none", zorder=6)
            axis.annotate(str(row.variant.model), (x(row), row.top1), textcoords="offset points", xytext=(0, 10),
                          ha="center", fontsize=10, color=colour)
    axis.set_xscale("log")
    axis.margins(x=0.1, y=0.12)
    _plain_log_ticks(axis, [x(row) for row in rows])
    axis.set_xlabel(xlabel, fontsize=12)
    axis.set_ylabel("top-1 accuracy (%)", fontsize=12)
    axis.set_title(title, fontsize=12)
    axis.tick_params(labelsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=10, loc="best")


def _plain_log_ticks(axis, values: list[float]) -> None:
    """Tick labels as plain numbers (0.012, not 1.2x10^-2); the in-between ticks labelled only when the
    data spans less than a decade (else they crowd)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    axis.xaxis.set_major_formatter(plain)
    narrow = bool(values) and min(values) > 0 and max(values) / min(values) < 10
    axis.xaxis.set_minor_formatter(plain if narrow else NullFormatter())
    axis.tick_params(axis="x", which="minor", labelsize=8)


def accuracy_vs_cost(rows: list[Row], path: Path, *, what: str, title: str, budget_lines: bool = True) -> Path:
    """`what`: 'gmacs' or 'params'; `budget_lines`: mark the budgets on the GMACs axis (they are GMACs)."""
    figure, axis = _figure()
    trained = _trained(rows)
    if what == "gmacs":
        _lines(trained, lambda row: row.variant.cost.macs / 1e9, axis, "GMACs (log scale)", title)
        base = next((row for row in trained if row.variant.strategy == BASE), None)
        budgets = sorted({row.variant.budget for row in trained if row.variant.budget not in (None, 1.0)})
        if base is not None and budget_lines:
            for budget in budgets:
                axis.axvline(base.variant.cost.macs / 1e9 * budget, color="gray", linestyle=":", linewidth=1)
                axis.annotate(f"{budget:g}x", (base.variant.cost.macs / 1e9 * budget, 0), xycoords=("data", "axes fraction"),
                              xytext=(3, 4), textcoords="offset points", fontsize=9, color="gray")
    else:
        _lines(trained, lambda row: row.variant.cost.params / 1e6, axis, "parameters (millions, log scale)", title)
    figure.savefig(str(path), dpi=DPI)
    return path


def accuracy_vs_latency(rows: list[Row], path: Path, *, title: str, cost: str = "gmacs") -> Path | None:
    """Top-1 against median latency (log x) with horizontal bars for the 95% interval; with cost
    'latency', dotted lines mark the budgets (multiples of the base's latency). None when nothing was timed."""
    trained = [row for row in _trained(rows) if row.variant.latency is not None]
    if not trained:
        return None
    timing = trained[0].variant.latency
    threads = f"{timing.threads} thread" + ("s" if timing.threads != 1 else "")
    figure, axis = _figure(height=5.0)
    _lines(trained, lambda row: row.variant.latency.median_ms, axis,
           f"median latency, ms (log scale)\n{timing.device} ({timing.device_name}), {threads}, batch {timing.batch_size}, "
           f"{timing.dtype}, {timing.runtime}", title)
    for row in trained:
        median, (low, high) = row.variant.latency.median_ms, row.variant.latency.ci_ms
        colour = STYLE[row.variant.strategy][0]
        axis.errorbar([median], [row.top1], xerr=[[median - low], [high - median]], fmt="none", ecolor=colour,
                      capsize=3, linewidth=1, zorder=4)
    base = next((row for row in trained if row.variant.strategy == BASE), None)
    if cost == "latency" and base is not None:
        for budget in sorted({row.variant.budget for row in trained if row.variant.budget not in (None, 1.0)}):
            at = base.variant.latency.median_ms * budget
            axis.axvline(at, color="gray", linestyle=":", linewidth=1)
            axis.annotate(f"{budget:g}x", (at, 0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                          textcoords="offset points", fontsize=9, color="gray")
    figure.savefig(str(path), dpi=DPI)
    return path


def curves(rows: list[Row], path: Path, *, title: str) -> Path:
    """Training loss and validation top-1 against epoch, one line per model (colour: strategy, dash: budget)."""
    figure, (loss_axis, accuracy_axis) = _figure(12.0, 5.0, columns=2)
    budgets = sorted({row.variant.budget for row in rows if row.variant.budget not in (None, 1.0)})
    dashes = ["-", "--", "-.", ":"]
    for row in rows:
        if not row.history:
            continue
        colour, marker = STYLE[row.variant.strategy]
        dash = dashes[budgets.index(row.variant.budget) % len(dashes)] if row.variant.budget in budgets else "-"
        epochs = [metrics.epoch for metrics in row.history]
        style = dict(color=colour, marker=marker, linestyle=dash, linewidth=1.6, markersize=5, label=row.variant.label)
        loss_axis.plot(epochs, [metrics.train_loss for metrics in row.history], **style)
        accuracy_axis.plot(epochs, [metrics.top1 for metrics in row.history], **style)
    loss_axis.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="training loss")
    accuracy_axis.set(xlabel="epoch", ylabel="validation top-1 (%)", title="validation accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(True, alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.xaxis.label.set_size(12)
        axis.yaxis.label.set_size(12)
    handles, labels = accuracy_axis.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right center", fontsize=9)
    figure.suptitle(title, fontsize=12)
    figure.savefig(str(path), dpi=DPI)
    return path


def write(rows: list[Row], folder: Path, title: str, cost: str = "gmacs") -> dict[str, Path]:
    written = {
        "accuracy_vs_gmacs": accuracy_vs_cost(rows, folder / "accuracy_vs_gmacs.png", what="gmacs",
                                              title=f"{title}: accuracy against real cost", budget_lines=cost == "gmacs"),
        "accuracy_vs_params": accuracy_vs_cost(rows, folder / "accuracy_vs_params.png", what="params",
                                               title=f"{title}: accuracy against parameters"),
        "accuracy_vs_latency": accuracy_vs_latency(rows, folder / "accuracy_vs_latency.png", cost=cost,
                                                   title=f"{title}: accuracy against measured latency"),
        "curves": curves(rows, folder / "curves.png", title=f"{title}: every model, epoch by epoch"),
    }
    return {name: path for name, path in written.items() if path is not None}
