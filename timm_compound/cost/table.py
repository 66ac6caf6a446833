"""A family table: what each phi of a base really costs next to the ideal (alpha*beta^2*gamma^2)**phi."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from timm_compound.cost.latency import Latency, LatencySettings, time_plan
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
    ratio: float  # GMACs / GMACs at phi = 0
    ideal: float  # (alpha * beta**2 * gamma**2) ** phi
    activations: int
    train_memory_mib: float | None = None
    # timed on this machine (family_table(latency=...)): the median, its 95% interval, and where
    latency_ms: float | None = None
    latency_low_ms: float | None = None
    latency_high_ms: float | None = None
    throughput: float | None = None  # images per second at the timed batch
    ms_per_gmac: float | None = None  # where FLOPs mislead: equal MACs, unequal time
    latency_converged: bool | None = None  # False: the time cap stopped the timing before 3%
    device: str | None = None  # 'cpu (AMD EPYC)'
    threads: int | None = None
    latency_batch_size: int | None = None
    dtype: str | None = None
    runtime: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field; the timing fields only when the row was timed (a table of counts stays as it was)."""
        found = asdict(self)
        if self.latency_ms is None:
            for key in TIMING_FIELDS:
                found.pop(key)
        return found


TIMING_FIELDS = (
    "latency_ms",
    "latency_low_ms",
    "latency_high_ms",
    "throughput",
    "ms_per_gmac",
    "latency_converged",
    "device",
    "threads",
    "latency_batch_size",
    "dtype",
    "runtime",
)


def _timing(latency: Latency, gmacs: float) -> dict[str, Any]:
    low, high = latency.ci_ms
    return dict(
        latency_ms=latency.median_ms,
        latency_low_ms=low,
        latency_high_ms=high,
        throughput=latency.throughput,
        ms_per_gmac=latency.median_ms / gmacs if gmacs else None,
        latency_converged=latency.converged,
        device=f"{latency.device} ({latency.device_name})",
        threads=latency.threads,
        latency_batch_size=latency.batch_size,
        dtype=latency.dtype,
        runtime=latency.runtime,
    )


def family_table(
    base: str,
    phis: Iterable[float] = range(8),
    *,
    coefficients: Any = None,
    batch_size: int = 1,
    train_memory: bool = False,
    latency: LatencySettings | None = None,
    progress: Callable[[float], None] | None = None,
    allow_oversize: bool = False,
    norm: str | None = None,
) -> list[TableRow]:
    """One row per phi, each measured at its own resolution (``measure``); with `latency` (checked
    settings, whose batch size must be `batch_size`), each row's model is also timed (``cost.latency``).

    Every phi is planned before anything is measured, so a range that reaches a plan above the size
    limits (``scaling.limits``) is refused at once, naming that phi's size, unless `allow_oversize`
    (measuring counts on the meta device: nothing is allocated, but a huge plan takes long).
    `norm` builds every row with that norm (``scaling.norms``).
    """
    phis = list(phis)
    if latency is not None and latency.batch_size != batch_size:
        raise ValueError(f"the timing's batch size ({latency.batch_size}) must be the table's ({batch_size})")
    zero = make_plan(base, 0, coefficients=coefficients, norm=norm)
    plans = [
        zero if phi == 0 else make_plan(base, phi, coefficients=coefficients, allow_oversize=allow_oversize, norm=norm)
        for phi in phis
    ]
    # phi = 0 is the reference for every ratio; when it is also a row, it is measured once for both
    reference = measure(zero, batch_size=batch_size, train_memory=train_memory and 0 in phis)
    rows = []
    for phi, scaled in zip(phis, plans):
        cost = reference if phi == 0 else measure(scaled, batch_size=batch_size, train_memory=train_memory)
        mult, real = scaled.multipliers, scaled.realised
        rows.append(
            TableRow(
                phi=float(phi),
                d=mult.depth,
                d_realised=real.depth,
                w=mult.width,
                w_realised=real.width,
                r=mult.resolution,
                r_realised=real.resolution,
                resolution=scaled.resolution,
                depths=scaled.depths,
                mparams=cost.mparams,
                gmacs=cost.gmacs,
                ratio=cost.macs / reference.macs,
                ideal=scaled.coefficients.flops_factor**phi,
                activations=cost.activations,
                train_memory_mib=cost.train_memory_mib,
                **({} if latency is None else _timing(time_plan(scaled, latency), cost.gmacs)),
            )
        )
        if progress is not None:
            progress(phi)
    return rows
