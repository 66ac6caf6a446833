"""By hand: `python benchmarks/bench_latency.py [--full] [--models a,b] [--batch 32] [--fit-bases a,b] [--skip-fit]`.

Practical efficiency on this machine, side by side in one run (the G16-EfficientNet question: are
depthwise convolutions as cheap in time as in FLOPs?):

- per model: GMACs, measured batch-1 one-thread latency (median, 95% interval), ms per GMAC,
  throughput at --batch (one thread unless --threads) and ms per GMAC there;
- the rank correlation (Spearman) between GMACs and latency across the models, and the median ms
  per GMAC of each family beside ResNet's (dense convolutions) - where FLOPs mislead;
- `fit(max_latency_ms=...)` per base for budgets of 2x and 4x the base's measured latency:
  achieved median / target, whether the fit was sure, timings taken and wall seconds (measurements
  included, nothing read from the latency cache).

The default runs in a few minutes on a 2-core machine: eight models, throughput at batch 8, one
fit base. --full runs the issue's sweep: EfficientNet-B0..B3, G16 at phi 0..3, ResNet-18/34/50 at
phi 0 and 1, MobileNetV2 at phi 0..3, throughput at batch 32, and fits of three bases.
Times are wall clock (latency is wall clock); the load average is printed before and after, since
other work on a shared machine slows every timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch
from scipy.stats import spearmanr

import timm_compound
from timm_compound.cost.fit import fit
from timm_compound.cost.latency import LatencySettings, available_cores, device_name, time_plan
from timm_compound.cost.measure import measure
from timm_compound.scaling.catalog import lookup

# EfficientNet-B1..B3 as explicit plans of B0's rule (depth, width, pixels from the paper's table):
# the rule rebuilds timm's efficientnet_b1..b3 structures, and plans are cached by their network
EFFICIENTNETS = {
    "efficientnet_b0": (1.0, 1.0, 224),
    "efficientnet_b1": (1.1, 1.0, 240),
    "efficientnet_b2": (1.2, 1.1, 260),
    "efficientnet_b3": (1.4, 1.2, 300),
}
FAMILIES = {
    "efficientnet_b0_g16": "G16 (group conv)",
    "efficientnet_b": "EfficientNet (depthwise)",
    "mobilenetv2": "MobileNetV2 (depthwise)",
    "resnet": "ResNet (dense)",
}
FULL = [
    *EFFICIENTNETS,
    *(f"efficientnet_b0_g16_evos_cs_phi{phi}" for phi in range(4)),
    *(f"resnet{depth}_cs_phi{phi}" for depth in (18, 34, 50) for phi in (0, 1)),
    *(f"mobilenetv2_100_cs_phi{phi}" for phi in range(4)),
]
QUICK = [
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b0_g16_evos_cs_phi0",
    "efficientnet_b0_g16_evos_cs_phi1",
    "resnet18_cs_phi0",
    "resnet50_cs_phi0",
    "mobilenetv2_100_cs_phi0",
    "mobilenetv2_100_cs_phi1",
]


def plan_of(name: str):
    if name in EFFICIENTNETS:
        d, w, pixels = EFFICIENTNETS[name]
        return timm_compound.plan("efficientnet_b0", d=d, w=w, resolution=pixels)
    base, phi = lookup(name)
    return timm_compound.plan(base, phi)


def family(name: str) -> str:
    return next(label for prefix, label in FAMILIES.items() if name.startswith(prefix))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {available_cores()} cores"


def models_table(names: list[str], batch: int, threads: int, seconds: float) -> None:
    single = LatencySettings.check(batch_size=1, threads=1, max_seconds=seconds, cache=False)
    batched = LatencySettings.check(batch_size=batch, threads=threads, max_seconds=seconds, cache=False)
    print(f"\nbatch-1 latency: {single.where()}; throughput: {batched.where()}; each timing capped at {seconds:g} s")
    header = (
        f"{'model':<34} {'px':>4} {'GMACs':>7} {'ms b1':>8} {'95% interval':>17} {'ms/GMAC':>8} "
        f"{f'img/s b{batch}':>10} {f'ms/GMAC b{batch}':>12} {'capped':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name in names:
        scaled = plan_of(name)
        gmacs = measure(scaled).gmacs
        one = time_plan(scaled, single)
        many = time_plan(scaled, batched)
        per_image_ms = many.median_ms / batch
        capped = "".join(("1" if not one.converged else "", "B" if not many.converged else "")) or "-"
        rows.append((name, gmacs, one.median_ms, per_image_ms))
        print(
            f"{name:<34} {scaled.resolution:>4} {gmacs:>7.3f} {one.median_ms:>8.2f} "
            f"{f'{one.ci_ms[0]:.2f}-{one.ci_ms[1]:.2f}':>17} {one.median_ms / gmacs:>8.1f} {many.throughput:>10.2f} "
            f"{per_image_ms / gmacs:>12.1f} {capped:>7}",
            flush=True,
        )
    print("capped: 1 = the batch-1 timing, B = the batched one stopped at the cap before its interval was within 3%")
    gmacs = [row[1] for row in rows]
    rho_one = spearmanr(gmacs, [row[2] for row in rows]).statistic
    rho_many = spearmanr(gmacs, [row[3] for row in rows]).statistic
    print(
        f"\nSpearman rank correlation of GMACs with latency across {len(rows)} models: batch 1 {rho_one:.3f}, "
        f"batch {batch} (time per image) {rho_many:.3f}"
    )
    by_family: dict[str, list[tuple[float, float]]] = {}
    for name, g, one_ms, image_ms in rows:
        by_family.setdefault(family(name), []).append((one_ms / g, image_ms / g))
    dense = by_family.get(FAMILIES["resnet"])
    print(f"median ms per GMAC by family{' (x ResNet)' if dense else ''}:")
    for label, values in by_family.items():
        one = statistics.median(v[0] for v in values)
        many = statistics.median(v[1] for v in values)
        against = (
            ""
            if not dense
            else (
                f" ({one / statistics.median(v[0] for v in dense):.2f}x, "
                f"{many / statistics.median(v[1] for v in dense):.2f}x)"
            )
        )
        print(f"  {label:<26} batch 1 {one:7.1f}   batch {batch} {many:7.1f}{against}")


def fit_sweep(bases: list[str], factors: list[float], seconds: float) -> None:
    print(f"\nfit(max_latency_ms=...): batch 1, 1 thread, each timing capped at {seconds:g} s, nothing from the cache")
    header = (
        f"{'base':<18} {'x':>3} {'base ms':>8} {'target ms':>9} {'achieved':>9} {'95% interval':>17} "
        f"{'ratio':>6} {'phi':>7} {'px':>4} {'sure':>5} {'timings':>7} {'wall s':>7}"
    )
    print(header)
    print("-" * len(header))
    for base in bases:
        settings = LatencySettings.check(max_seconds=seconds, cache=False)
        base_ms = time_plan(timm_compound.plan(base, 0), settings).median_ms
        for factor in factors:
            started = time.perf_counter()
            result = fit(base, max_latency_ms=factor * base_ms, max_seconds=seconds, cache=False)
            wall = time.perf_counter() - started
            budget = result.budgets[-1]
            print(
                f"{base:<18} {factor:>3g} {base_ms:>8.2f} {budget.target:>9.2f} {budget.achieved:>9.2f} "
                f"{f'{budget.interval[0]:.2f}-{budget.interval[1]:.2f}':>17} {budget.ratio:>6.3f} {result.phi:>7.3f} "
                f"{result.plan.resolution:>4} {result.sure!s:>5} {result.timings:>7} {wall:>7.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's whole sweep (long: tens of minutes)")
    parser.add_argument("--models", help="comma-separated names (registered variants or efficientnet_b0..b3)")
    parser.add_argument("--batch", type=int, help="throughput batch [default: 8, 32 with --full]")
    parser.add_argument("--threads", type=int, default=1, help="threads of the throughput timings")
    parser.add_argument("--seconds", type=float, default=3.0, help="time cap of each timing in the table")
    parser.add_argument(
        "--fit-bases", help="[default: mobilenetv2_100; with --full resnet18,mobilenetv2_100,efficientnet_b0]"
    )
    parser.add_argument("--fit-factors", default="2,4")
    parser.add_argument("--fit-seconds", type=float, default=2.0, help="time cap of each timing a fit takes")
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TIMM_COMPOUND_CACHE_DIR", tempfile.mkdtemp(prefix="bench-latency-"))  # never the user's
    names = args.models.split(",") if args.models else FULL if args.full else QUICK
    batch = args.batch or (32 if args.full else 8)
    bases = (
        args.fit_bases.split(",")
        if args.fit_bases
        else ["resnet18", "mobilenetv2_100", "efficientnet_b0"]
        if args.full
        else ["mobilenetv2_100"]
    )
    print(
        f"torch {torch.__version__}, timm-compound {timm_compound.__version__}, {platform.python_version()}; "
        f"cpu: {device_name('cpu')}"
    )
    print(f"start: {load()}")
    started = time.perf_counter()
    if not args.skip_table:
        models_table(names, batch, args.threads, args.seconds)
    if not args.skip_fit:
        fit_sweep(bases, [float(f) for f in args.fit_factors.split(",")], args.fit_seconds)
    print(f"\nend: {load()}; {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
