"""The experiment's figures, sized and labelled to go into a paper as they are.

- accuracy_vs_gmacs.png: final top-1 against real GMACs (log x), one curve per strategy from the base
  through each budget, references as labelled points (the EfficientNet paper's Figure 3 / 8 shape).
  Points are means over the seeds with the seeds' SD as error bars; each strategy's curve is a fitted
  saturating curve with its bootstrap band (`curve_fit`) where there are three costs to fit, else
  the line through its means;
- accuracy_vs_params.png: the same against parameters (lines through the means);
- accuracy_vs_latency.png: the same against median latency measured on this machine, with the 95%
  interval as error bars and where it was timed under the axis (when the experiment timed its models);
- curves.png: training loss and validation top-1 against epoch for every model (the mean over seeds,
  the band spanning the lowest to the highest seed).

The accuracy axis spans the strategies' points and error bars: a reference far outside that range is
drawn at the axis edge with its value written, not allowed to flatten every other line; a dashed
line marks chance level (always guessing the most frequent validation class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from timm_compound.experiment import curve_fit
from timm_compound.experiment.inputs import KNOWN_STRATEGIES
from timm_compound.experiment.results import BASE, REFERENCE, Row

STYLE = {  # strategy -> (colour, marker), the same in every figure
    "depth": ("tab:blue", "o"),
    "width": ("tab:orange", "s"),
    "resolution": ("tab:green", "^"),
    "compound": ("tab:red", "D"),
    "dWr": ("tab:purple", "v"),
    BASE: ("black", "o"),
    REFERENCE: ("dimgray", "*"),
}
DPI = 150


def _figure(width: float = 6.4, height: float = 4.6, columns: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, columns)


def _trained(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.top1 is not None]


def _sd(row: Row) -> float:
    return row.spread.sd if row.spread is not None and row.spread.sd is not None else 0.0


def _lines(
    rows: list[Row], x, axis, xlabel: str, title: str, *, fits: bool = False, chance: float | None = None
) -> None:
    """Strategies, base and references on `axis`; `fits`: a fitted curve per strategy (see the module)."""
    base = next((row for row in rows if row.variant.strategy == BASE), None)
    for strategy in KNOWN_STRATEGIES:
        points = sorted((row for row in rows if row.variant.strategy == strategy), key=lambda row: x(row))
        if not points:
            continue
        line = ([base] if base is not None else []) + points
        colour, marker = STYLE[strategy]
        label = f"{strategy} only" if strategy not in ("compound", "dWr") else strategy
        curve = _curve(line, x) if fits else None
        if curve is not None:
            span = np.geomspace(min(x(row) for row in line), max(x(row) for row in line), 60)
            axis.plot(span, curve(span), color=colour, linewidth=2, label=f"{label} (fitted)")
            band = curve.band(span)
            if band is not None:
                axis.fill_between(span, band[0], band[1], color=colour, alpha=0.15, linewidth=0)
        else:
            axis.plot([x(row) for row in line], [row.top1 for row in line], color=colour, linewidth=2, label=label)
        axis.errorbar(
            [x(row) for row in points],
            [row.top1 for row in points],
            yerr=[_sd(row) for row in points],
            fmt=marker,
            color=colour,
            markersize=7,
            capsize=3,
            linestyle="none",
        )
    if base is not None:
        axis.errorbar(
            [x(base)],
            [base.top1],
            yerr=[_sd(base)],
            fmt="o",
            color="black",
            markersize=8,
            capsize=3,
            zorder=5,
            label="base",
        )
    low, high = _accuracy_range([row for row in rows if row.variant.strategy != REFERENCE] or rows)
    for row in rows:
        if row.variant.strategy == REFERENCE:
            _reference(axis, row, x(row), low, high)
    if chance is not None:
        _chance(axis, chance, low, high)
    axis.set_ylim(low, high)
    axis.set_xscale("log")
    axis.margins(x=0.1)
    _plain_log_ticks(axis, [x(row) for row in rows])
    axis.set_xlabel(xlabel, fontsize=12)
    axis.set_ylabel("top-1 accuracy (%)", fontsize=12)
    axis.set_title(title, fontsize=12)
    axis.tick_params(labelsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=9, loc="best")


def unfitted(rows: list[Row]) -> list[str]:
    """The strategies accuracy_vs_gmacs.png draws as lines through their means: no saturating curve fits
    them (fewer than three costs, or points that do not rise or fall to a plateau)."""
    trained = _trained(rows)
    base = [row for row in trained if row.variant.strategy == BASE]
    found = []
    for strategy in KNOWN_STRATEGIES:
        line = base + [row for row in trained if row.variant.strategy == strategy]
        if len(line) > len(base) and _curve(line, lambda row: row.variant.cost.macs / 1e9) is None:
            found.append(strategy)
    return found


def _curve(line: list[Row], x):
    """The saturating fit through every finished seed of the line's models (None: fewer than 3 costs or no fit)."""
    xs, ys = [], []
    for row in line:
        for run in row.finished:
            xs.append(x(row))
            ys.append(run.top1)
    return curve_fit.fit(xs, ys) if xs else None


def _accuracy_range(rows: list[Row]) -> tuple[float, float]:
    """The axis limits: the rows' means and error bars, padded (at least a point each way), within 0-100."""
    values = [row.top1 - _sd(row) for row in rows] + [row.top1 + _sd(row) for row in rows]
    if not values:
        return 0.0, 100.0
    low, high = min(values), max(values)
    pad = max(0.15 * (high - low), 1.0)
    return max(0.0, low - pad), min(100.0, high + pad)


def _reference(axis, row: Row, x: float, low: float, high: float) -> None:
    """A reference as a labelled star with error bars, or, outside the axis range, a triangle at its edge
    with its value written."""
    colour, marker = STYLE[REFERENCE]
    name = str(row.variant.model)
    if low <= row.top1 <= high:
        axis.errorbar([x], [row.top1], yerr=[_sd(row)], fmt=marker, color=colour, markersize=13, capsize=3, zorder=6)
        axis.annotate(
            name, (x, row.top1), textcoords="offset points", xytext=(0, 10), ha="center", fontsize=10, color=colour
        )
        return
    above = row.top1 > high
    edge = high if above else low
    axis.plot(
        [x],
        [edge],
        marker="^" if above else "v",
        color=colour,
        markersize=11,
        linestyle="none",
        zorder=6,
        clip_on=False,
    )
    axis.annotate(
        f"{name}: {row.top1:.1f}% (off the axis)",
        (x, edge),
        textcoords="offset points",
        xytext=(0, -14 if above else 8),
        ha="center",
        fontsize=9,
        color=colour,
    )


def _chance(axis, chance: float, low: float, high: float) -> None:
    """A dashed line at chance level, or a note at the bottom edge when it lies below the axis."""
    if low <= chance <= high:
        axis.axhline(chance, color="gray", linestyle="--", linewidth=1.2, label=f"chance ({chance:.1f}%)")
    else:
        axis.annotate(
            f"chance level {chance:.1f}% is {'below' if chance < low else 'above'} the axis",
            (0.01, 0.01 if chance < low else 0.95),
            xycoords="axes fraction",
            fontsize=8,
            color="gray",
        )


def _plain_log_ticks(axis, values: list[float]) -> None:
    """Tick labels as plain numbers (0.012, not 1.2x10^-2); the in-between ticks labelled only when the
    data spans less than a decade (else they crowd)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    axis.xaxis.set_major_formatter(plain)
    narrow = bool(values) and min(values) > 0 and max(values) / min(values) < 10
    axis.xaxis.set_minor_formatter(plain if narrow else NullFormatter())
    axis.tick_params(axis="x", which="minor", labelsize=8)


def accuracy_vs_cost(
    rows: list[Row], path: Path, *, what: str, title: str, budget_lines: bool = True, chance: float | None = None
) -> Path:
    """`what`: 'gmacs' (with the fitted curves) or 'params'; `budget_lines`: mark the budgets on the GMACs
    axis (they are GMACs)."""
    figure, axis = _figure()
    trained = _trained(rows)
    if what == "gmacs":
        _lines(
            trained, lambda row: row.variant.cost.macs / 1e9, axis, "GMACs (log scale)", title, fits=True, chance=chance
        )
        base = next((row for row in trained if row.variant.strategy == BASE), None)
        budgets = sorted({row.variant.budget for row in trained if row.variant.budget not in (None, 1.0)})
        if base is not None and budget_lines:
            for budget in budgets:
                axis.axvline(base.variant.cost.macs / 1e9 * budget, color="gray", linestyle=":", linewidth=1)
                axis.annotate(
                    f"{budget:g}x",
                    (base.variant.cost.macs / 1e9 * budget, 1),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                    fontsize=9,
                    color="gray",
                )
    else:
        _lines(
            trained,
            lambda row: row.variant.cost.params / 1e6,
            axis,
            "parameters (millions, log scale)",
            title,
            chance=chance,
        )
    figure.savefig(str(path), dpi=DPI)
    return path


def accuracy_vs_latency(
    rows: list[Row], path: Path, *, title: str, cost: str = "gmacs", chance: float | None = None
) -> Path | None:
    """Top-1 against median latency (log x) with horizontal bars for the 95% interval; with cost
    'latency', dotted lines mark the budgets (multiples of the base's latency). None when nothing was timed."""
    trained = [row for row in _trained(rows) if row.variant.latency is not None]
    if not trained:
        return None
    timing = trained[0].variant.latency
    threads = f"{timing.threads} thread" + ("s" if timing.threads != 1 else "")
    figure, axis = _figure(height=5.0)
    _lines(
        trained,
        lambda row: row.variant.latency.median_ms,
        axis,
        f"median latency, ms (log scale)\n{timing.device} ({timing.device_name}), {threads}, batch {timing.batch_size}, "
        f"{timing.dtype}, {timing.runtime}",
        title,
        chance=chance,
    )
    for row in trained:
        median, (low, high) = row.variant.latency.median_ms, row.variant.latency.ci_ms
        colour = STYLE[row.variant.strategy][0]
        axis.errorbar(
            [median],
            [row.top1],
            xerr=[[median - low], [high - median]],
            fmt="none",
            ecolor=colour,
            capsize=3,
            linewidth=1,
            zorder=4,
        )
    base = next((row for row in trained if row.variant.strategy == BASE), None)
    if cost == "latency" and base is not None:
        for budget in sorted({row.variant.budget for row in trained if row.variant.budget not in (None, 1.0)}):
            at = base.variant.latency.median_ms * budget
            axis.axvline(at, color="gray", linestyle=":", linewidth=1)
            axis.annotate(
                f"{budget:g}x",
                (at, 0),
                xycoords=("data", "axes fraction"),
                xytext=(3, 4),
                textcoords="offset points",
                fontsize=9,
                color="gray",
            )
    figure.savefig(str(path), dpi=DPI)
    return path


def _per_epoch(row: Row, what: str) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray] | None:
    """(epochs, mean, lowest, highest) of a metric over the row's runs that have the same epochs."""
    runs = [run for run in row.runs if run.history]
    if not runs:
        return None
    epochs = [metrics.epoch for metrics in runs[0].history]
    runs = [run for run in runs if [metrics.epoch for metrics in run.history] == epochs]
    values = np.array([[getattr(metrics, what) for metrics in run.history] for run in runs], dtype=float)
    return epochs, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def curves(rows: list[Row], path: Path, *, title: str) -> Path:
    """Training loss and validation top-1 against epoch, one line per model (colour: strategy, dash: budget),
    the mean over seeds with a band from the lowest to the highest seed."""
    figure, (loss_axis, accuracy_axis) = _figure(12.0, 5.0, columns=2)
    budgets = sorted({row.variant.budget for row in rows if row.variant.budget not in (None, 1.0)})
    dashes = ["-", "--", "-.", ":"]
    for row in rows:
        if not row.history:
            continue
        colour, marker = STYLE[row.variant.strategy]
        dash = dashes[budgets.index(row.variant.budget) % len(dashes)] if row.variant.budget in budgets else "-"
        style = dict(color=colour, marker=marker, linestyle=dash, linewidth=1.6, markersize=5, label=row.variant.label)
        for axis, what in ((loss_axis, "train_loss"), (accuracy_axis, "top1")):
            found = _per_epoch(row, what)
            if found is None:
                continue
            epochs, mean, lowest, highest = found
            axis.plot(epochs, mean, **style)
            if len(row.runs) > 1:
                axis.fill_between(epochs, lowest, highest, color=colour, alpha=0.12, linewidth=0)
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


def write(
    rows: list[Row], folder: Path, title: str, cost: str = "gmacs", chance: float | None = None
) -> dict[str, Path]:
    written = {
        "accuracy_vs_gmacs": accuracy_vs_cost(
            rows,
            folder / "accuracy_vs_gmacs.png",
            what="gmacs",
            title=f"{title}: accuracy against real cost",
            budget_lines=cost == "gmacs",
            chance=chance,
        ),
        "accuracy_vs_params": accuracy_vs_cost(
            rows,
            folder / "accuracy_vs_params.png",
            what="params",
            title=f"{title}: accuracy against parameters",
            chance=chance,
        ),
        "accuracy_vs_latency": accuracy_vs_latency(
            rows,
            folder / "accuracy_vs_latency.png",
            cost=cost,
            title=f"{title}: accuracy against measured latency",
            chance=chance,
        ),
        "curves": curves(rows, folder / "curves.png", title=f"{title}: every model, epoch by epoch"),
    }
    return {name: path for name, path in written.items() if path is not None}
