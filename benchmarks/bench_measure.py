"""By hand: `python benchmarks/bench_measure.py`. Fast path vs fvcore on the registered variants, and fit's spread.

Times measure() (meta device) against measure_reference() (fvcore on real tensors) for every
registered variant at its own resolution, side by side, and prints the ratio; then fits a sweep
of GMACs targets from 1x to 64x the base and prints achieved / target.
"""

from __future__ import annotations

import statistics
import sys
import time

from timm_compound.cost.fit import fit
from timm_compound.cost.measure import measure
from timm_compound.cost.reference import measure_reference
from timm_compound.scaling.catalog import registered


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def main(max_phi: int = 7, fvcore_max_phi: int = 3) -> None:
    fast_total = reference_total = 0.0
    print(f"{'variant':32} {'GMACs':>9} {'meta s':>8} {'fvcore s':>9} {'ratio':>7}")
    for name, variant in registered().items():
        if variant.phi > max_phi:
            continue
        fast, fast_s = timed(measure, name)
        if variant.phi <= fvcore_max_phi:   # fvcore on real B7-size tensors takes minutes on a laptop CPU
            reference, reference_s = timed(measure_reference, name)
            assert reference.macs == fast.macs, name
            fast_total, reference_total = fast_total + fast_s, reference_total + reference_s
            print(f"{name:32} {fast.gmacs:9.3f} {fast_s:8.2f} {reference_s:9.2f} {reference_s / fast_s:7.1f}")
        else:
            print(f"{name:32} {fast.gmacs:9.3f} {fast_s:8.2f} {'-':>9} {'-':>7}")
    print(f"total where both ran: meta {fast_total:.1f}s, fvcore {reference_total:.1f}s, "
          f"fvcore/meta {reference_total / fast_total:.1f}x")

    for base in ("resnet18", "efficientnet_b0"):
        unit = measure(base).gmacs
        ratios = []
        for factor in (1, 1.3, 1.7, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64):
            result, seconds = timed(fit, base, max_gmacs=unit * factor)
            ratios.append(result.budgets[0].ratio)
            print(f"fit {base} {factor:>5}x: phi {result.phi:7.4f} {result.plan.resolution} px "
                  f"achieved/target {ratios[-1]:.4f} ({result.evaluations} evaluations, {seconds:.1f}s)")
        print(f"{base}: achieved/target min {min(ratios):.4f} median {statistics.median(ratios):.4f} max {max(ratios):.4f}")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
