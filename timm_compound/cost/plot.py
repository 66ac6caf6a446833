"""A family table as a picture: GMACs and params against phi, realised beside the ideal."""

from __future__ import annotations

import os
from pathlib import Path

from timm_compound.cost.table import TableRow
from timm_compound.errors import CompoundError

FORMATS = (".png", ".svg", ".pdf")


def check_plot_path(path: str | Path) -> Path:
    """Refuse, before anything is measured, a plot path that cannot be written: a folder, an
    unknown image format, or a parent that is a file or not writable (missing folders are made)."""
    path = Path(path)
    if path.is_dir():
        raise CompoundError(f"--plot {path} is a folder: give a file name such as {path / 'table.png'}")
    if path.suffix.lower() not in FORMATS:
        raise CompoundError(f"--plot {path}: the file must end in {', '.join(FORMATS)}")
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CompoundError(f"cannot write {path}: {existing} is not a writable folder")
    return path


def plot_table(rows: list[TableRow], path, title: str | None = None) -> None:
    """GMACs and params against phi on log axes, realised beside ideal; writes a PNG (or SVG/PDF),
    making missing parent folders."""
    path = check_plot_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phis = [row.phi for row in rows]
    zero_gmacs = rows[0].gmacs / rows[0].ratio
    fig, (macs_ax, params_ax) = plt.subplots(1, 2, figsize=(10, 4))
    macs_ax.plot(phis, [row.gmacs for row in rows], "o-", label="realised")
    macs_ax.plot(phis, [zero_gmacs * row.ideal for row in rows], "--", label="ideal (α·β²·γ²)^φ")
    macs_ax.set(yscale="log", xlabel="φ", ylabel="GMACs", title="compute")
    params_ax.plot(phis, [row.mparams for row in rows], "o-", color="C2", label="realised")
    params_ax.set(yscale="log", xlabel="φ", ylabel="params (M)", title="parameters")
    for ax in (macs_ax, params_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
