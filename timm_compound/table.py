"""A family table: what each phi of a base really costs next to the ideal (alpha*beta^2*gamma^2)**phi."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from timm_compound.measure import measure
from timm_compound.plan import plan as make_plan


@dataclass(frozen=True)
class TableRow:
    phi: float
    d: float
    d_realised: float
    w: float
    w_realised: float
    r: float
    r_realised: float
    resolution: int
    depths: list[int]
    mparams: float
    gmacs: float
    ratio: float          # GMACs / GMACs at phi = 0
    ideal: float          # (alpha * beta**2 * gamma**2) ** phi
    activations: int
    train_memory_mib: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def family_table(
    base: str,
    phis: Iterable[float] = range(8),
    *,
    coefficients: Any = None,
    batch_size: int = 1,
    train_memory: bool = False,
    progress: Callable[[float], None] | None = None,
) -> list[TableRow]:
    """One row per phi, each measured on meta at its own resolution (``measure``)."""
    phis = list(phis)
    zero = make_plan(base, 0, coefficients=coefficients)
    # phi = 0 is the reference for every ratio; when it is also a row, it is measured once for both
    reference = measure(zero, batch_size=batch_size, train_memory=train_memory and 0 in phis)
    rows = []
    for phi in phis:
        scaled = zero if phi == 0 else make_plan(base, phi, coefficients=coefficients)
        cost = reference if phi == 0 else measure(scaled, batch_size=batch_size, train_memory=train_memory)
        mult, real = scaled.multipliers, scaled.realised
        rows.append(TableRow(
            phi=float(phi), d=mult.depth, d_realised=real.depth, w=mult.width, w_realised=real.width,
            r=mult.resolution, r_realised=real.resolution, resolution=scaled.resolution, depths=scaled.depths,
            mparams=cost.mparams, gmacs=cost.gmacs,
            ratio=cost.macs / reference.macs,
            ideal=scaled.coefficients.flops_factor ** phi, activations=cost.activations,
            train_memory_mib=cost.train_memory_mib,
        ))
        if progress is not None:
            progress(phi)
    return rows


def plot_table(rows: list[TableRow], path, title: str | None = None) -> None:
    """GMACs and params against phi on log axes, realised beside ideal; writes a PNG."""
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
