"""A family table: what each phi of a base really costs next to the ideal (alpha*beta^2*gamma^2)**phi."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from timm_compound.cost.measure import measure
from timm_compound.scaling.plan import plan as make_plan


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
    allow_oversize: bool = False,
) -> list[TableRow]:
    """One row per phi, each measured at its own resolution (``measure``).

    Every phi is planned before anything is measured, so a range that reaches a plan above the size
    limits (``scaling.limits``) is refused at once, naming that phi's size, unless `allow_oversize`
    (measuring counts on the meta device: nothing is allocated, but a huge plan takes long).
    """
    phis = list(phis)
    zero = make_plan(base, 0, coefficients=coefficients)
    plans = [zero if phi == 0 else make_plan(base, phi, coefficients=coefficients, allow_oversize=allow_oversize)
             for phi in phis]
    # phi = 0 is the reference for every ratio; when it is also a row, it is measured once for both
    reference = measure(zero, batch_size=batch_size, train_memory=train_memory and 0 in phis)
    rows = []
    for phi, scaled in zip(phis, plans):
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
