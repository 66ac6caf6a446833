"""plane.png (top-1 over the alpha-beta plane, gamma implied) and gmacs.png (top-1 against realised GMACs)."""

from __future__ import annotations

from pathlib import Path

from timm_compound.search.results import SearchResult

PLANE_FILE, GMACS_FILE = "plane.png", "gmacs.png"
_MARKERS = {"depth": "s", "width": "^", "resolution": "D"}


def _rows_with_top1(result: SearchResult):
    return [row for row in result.rows if row.top1 is not None]


def plot_plane(result: SearchResult, path: str | Path) -> None:
    """Each candidate at (alpha, beta), coloured by top-1 and labelled with its gamma; pruned ones
    hollow (their last top-1), references as labelled squares, triangles and diamonds, the best ringed."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    figure = Figure(figsize=(7.5, 6))
    ax = figure.subplots()
    scored = _rows_with_top1(result)
    values = [row.top1 for row in scored] or [0.0, 100.0]
    low, high = min(values), max(values)
    norm = dict(vmin=low, vmax=high if high > low else low + 1)
    mappable = None
    for row in result.rows:
        marker = _MARKERS.get(row.kind, "o")
        if row.top1 is None:
            ax.scatter(row.alpha, row.beta, marker=marker, s=70, facecolors="none", edgecolors="lightgray")
        elif row.state == "complete":
            mappable = ax.scatter(
                row.alpha,
                row.beta,
                c=[row.top1],
                cmap="viridis",
                marker=marker,
                s=90,
                edgecolors="black",
                linewidths=0.4,
                **norm,
            )
        else:
            ax.scatter(row.alpha, row.beta, c=[row.top1], cmap="viridis", marker=marker, s=90, alpha=0.35, **norm)
        ax.annotate(f"γ{row.gamma:.3g}", (row.alpha, row.beta), textcoords="offset points", xytext=(5, 4), fontsize=6)
        if row.kind != "grid":
            ax.annotate(
                _label(row.kind),
                (row.alpha, row.beta),
                textcoords="offset points",
                xytext=(5, -10),
                fontsize=7,
                color="darkred",
            )
    best = result.best
    if best is not None:
        ax.scatter(
            best.alpha,
            best.beta,
            s=260,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label=f"best: α={best.alpha:g} β={best.beta:g} γ={best.gamma:g} ({best.top1:.2f}%)",
        )
        ax.legend(loc="upper right", fontsize=8)
    if mappable is not None:
        figure.colorbar(mappable, ax=ax, label="validation top-1 (%)")
    factor = result.settings.get("grid", {}).get("flops_factor", 2.0)
    ax.set(
        xlabel="α (depth)",
        ylabel="β (width)",
        title=f"{result.base} at φ={result.phi:g}: top-1 over α, β (γ implied by α·β²·γ² ≈ {factor:g})",
    )
    ax.grid(True, alpha=0.3)
    figure.text(
        0.01, 0.01, "filled: trained to the end; faded: pruned (last top-1); grey: not run", fontsize=7, color="dimgray"
    )
    figure.tight_layout()
    figure.savefig(str(path), dpi=120)


def plot_gmacs(result: SearchResult, path: str | Path) -> None:
    """Top-1 against the realised GMACs each candidate trained at (nominal cost as a dashed line)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 5))
    ax = figure.subplots()
    for state, style in (
        ("complete", dict(color="tab:blue", alpha=0.9)),
        ("pruned", dict(color="tab:gray", alpha=0.5)),
    ):
        rows = [row for row in _rows_with_top1(result) if row.state == state]
        if rows:
            ax.scatter([row.gmacs for row in rows], [row.top1 for row in rows], label=state, s=40, **style)
    for row in _rows_with_top1(result):
        if row.kind != "grid":
            ax.annotate(
                _label(row.kind),
                (row.gmacs, row.top1),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=7,
                color="darkred",
            )
    table = result.table
    nominal = table.base_macs * (result.rows[0].nominal if result.rows else 1.0) / 1e9
    ax.axvline(nominal, linestyle="--", color="black", linewidth=0.8, label=f"nominal cost ({nominal:.3f} GMACs)")
    best = result.best
    if best is not None:
        ax.scatter([best.gmacs], [best.top1], s=200, facecolors="none", edgecolors="red", linewidths=1.5, label="best")
    ax.set(
        xlabel=f"realised GMACs at the trained size (base: {table.base_macs / 1e9:.3f} at {table.train_resolution} px)",
        ylabel="validation top-1 (%)",
        title=f"{result.base}: accuracy against realised cost",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(str(path), dpi=120)


def write_plots(result: SearchResult, out: Path) -> dict[str, Path]:
    plane, gmacs = out / PLANE_FILE, out / GMACS_FILE
    plot_plane(result, plane)
    plot_gmacs(result, gmacs)
    return {"plane": plane, "gmacs": gmacs}


def _label(kind: str) -> str:
    return "the rule's current" if kind == "current" else f"{kind} only"
