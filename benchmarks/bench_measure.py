"""By hand: `python benchmarks/bench_measure.py [--fvcore-max-phi 3] [--bases a,b] [--factors 1,2,4] [--skip-measure | --skip-fit]`.

Side by side in one run, over every registered variant at its own resolution:

- the cost model (`measure`, method "model"): cold (every cache cleared first: each family
  proven, each block built and traced once) and warm (families proven, every variant's plan
  counted for the first time; a repeat would only read a cache);
- two floors for a plan never counted before: the cost model *steady* (every block already
  memoised and traced, each variant's skeleton rebuilt by timm's constructor and counted by
  replay) and timm's constructors alone (every variant built on meta, initialisation skipped,
  nothing counted);
- the hand-written baseline: `torch.utils.flop_counter.FlopCounterMode` on
  `timm.create_model(name)` built on the meta device;
- fvcore on a real model (`measure_reference`), up to --fvcore-max-phi (B7-size real models take
  minutes on a laptop CPU);

with every count checked identical, totals and ratios. Then `fit` per shipped base for a sweep of
GMACs, params and training-memory budgets from 1x to 64x the base: wall time and achieved/target.
Times are process CPU seconds (the machine is shared: wall clock would count other work).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import timm_compound  # noqa: F401  (registers the variants)
from timm_compound.cost import model as cost_model
from timm_compound.cost.complexity import resolve_target
from timm_compound.cost.counter import COUNTED_OPS
from timm_compound.cost.fit import fit
from timm_compound.cost.measure import measure
from timm_compound.cost.reference import measure_reference
from timm_compound.scaling.build import build
from timm_compound.scaling.catalog import registered
from timm_compound.scaling.meta_device import fast_meta, gc_paused
from timm_compound.scaling.rulebook import shipped_rules


def timed(fn, *args, **kwargs):
    start = time.process_time()
    value = fn(*args, **kwargs)
    return value, time.process_time() - start


def flop_counter_on_meta(name: str) -> int:
    """The baseline a user would write by hand: build on meta, count with FlopCounterMode."""
    with torch.device("meta"):
        model = timm.create_model(name).eval()
    size = timm.data.resolve_model_data_config(model)["input_size"]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.empty(1, *size, device="meta"))
    counts = counter.get_flop_counts().get("Global", {})
    return sum(counts.get(op, 0) for op in COUNTED_OPS) // 2


def measure_all(fvcore_max_phi: int) -> None:
    variants = list(registered().values())
    cost_model.clear()  # the stage reader's learned block classes too
    gc.collect()  # each pass starts without the garbage of what came before it
    cold = {name: timed(measure, name) for name in variants_names(variants)}
    cost_model.clear()
    gc.collect()
    for base in sorted({v.base for v in variants}):  # prove each family (not timed), then count every plan anew
        measure(base)
    warm = {name: timed(measure, name) for name in variants_names(variants)}
    cost_model.forget_plans()
    gc.collect()
    steady = sum(timed(measure, name)[1] for name in variants_names(variants))
    plans = {name: resolve_target(name, None)[0] for name in variants_names(variants)}
    gc.collect()
    with gc_paused():
        constructors = sum(timed(bare_build, scaled)[1] for scaled in plans.values())
    print(
        f"{'variant':34} {'GMACs':>8} {'method':>6} {'cold ms':>8} {'warm ms':>8} {'FlopCounterMode ms':>18} "
        f"{'fvcore ms':>9}"
    )
    totals = {"cold": 0.0, "warm": 0.0, "baseline": 0.0, "fvcore": 0.0, "warm_where_fvcore": 0.0}
    for variant in variants:
        (cost, cold_s), (_, warm_s) = cold[variant.name], warm[variant.name]
        macs, baseline_s = timed(flop_counter_on_meta, variant.name)
        assert macs == cost.macs, (variant.name, macs, cost.macs)
        fvcore_cell = "-"
        if variant.phi <= fvcore_max_phi:
            reference, fvcore_s = timed(measure_reference, variant.name)
            assert (reference.macs, reference.params, reference.activations) == (
                cost.macs,
                cost.params,
                cost.activations,
            ), variant.name
            totals["fvcore"] += fvcore_s
            totals["warm_where_fvcore"] += warm_s
            fvcore_cell = f"{fvcore_s * 1e3:9.0f}"
        totals["cold"] += cold_s
        totals["warm"] += warm_s
        totals["baseline"] += baseline_s
        print(
            f"{variant.name:34} {cost.gmacs:8.3f} {cost.method:>6} {cold_s * 1e3:8.1f} {warm_s * 1e3:8.1f} "
            f"{baseline_s * 1e3:18.0f} {fvcore_cell:>9}",
            flush=True,
        )
    print(
        f"\n{len(variants)} registered variants, identical MACs on all three paths "
        f"({sum(1 for v in variants if cold[v.name][0].method == 'model')} counted by the cost model, the rest exactly):"
    )
    print(
        f"  cost model cold {totals['cold']:.2f} s, warm {totals['warm']:.2f} s; "
        f"FlopCounterMode on meta {totals['baseline']:.2f} s "
        f"(baseline / warm {totals['baseline'] / totals['warm']:.1f}x, baseline / cold {totals['baseline'] / totals['cold']:.1f}x)"
    )
    print(
        f"  floors for plans never counted: the cost model steady (every block already memoised) {steady:.2f} s "
        f"({totals['baseline'] / steady:.1f}x); timm's constructors alone, nothing counted, {constructors:.2f} s "
        f"({totals['baseline'] / constructors:.1f}x)"
    )
    if totals["fvcore"]:
        print(
            f"  fvcore on real models (phi <= {fvcore_max_phi}) {totals['fvcore']:.1f} s vs the cost model (warm) "
            f"{totals['warm_where_fvcore']:.2f} s on the same variants: {totals['fvcore'] / totals['warm_where_fvcore']:.0f}x"
        )


def bare_build(scaled) -> None:
    """What any count of a new plan built by timm's own constructor must at least do: build it on meta."""
    with fast_meta():
        build(scaled)


def variants_names(variants) -> list[str]:
    return [variant.name for variant in variants]


BUDGETS = {
    "max_gmacs": ("gmacs", {}),
    "max_params": ("mparams", {}),
    "max_train_memory": ("train_memory_mib", {"train_memory": True}),
}


def fit_sweep(bases: list[str], factors: list[float]) -> None:
    print(f"\nfit: budgets from {min(factors):g}x to {max(factors):g}x the base (train memory: batch 1, one SGD step)")
    everything: dict[str, list[float]] = {name: [] for name in BUDGETS}
    seconds: dict[str, list[float]] = {name: [] for name in BUDGETS}
    for base in bases:
        for budget, (attribute, options) in BUDGETS.items():
            unit = getattr(measure(base, **options), attribute)
            ratios, times, failures = [], [], []
            for factor in factors:
                try:
                    result, took = timed(fit, base, **{budget: unit * factor})
                except Exception as error:  # e.g. a cap on resolution: report it, do not hide it
                    failures.append(f"{factor:g}x: {error}")
                    continue
                ratios.append(result.budgets[0].ratio)
                times.append(took)
            everything[budget] += ratios
            seconds[budget] += times
            if ratios:
                print(
                    f"  {base:26} {budget:17} achieved/target min {min(ratios):.4f} median "
                    f"{statistics.median(ratios):.4f} max {max(ratios):.4f}; s per fit median "
                    f"{statistics.median(times):.2f} max {max(times):.2f}",
                    flush=True,
                )
            for failure in failures:
                print(f"  {base:26} {budget:17} failed {failure}")
    print("\nover all bases:")
    for budget, ratios in everything.items():
        if not ratios:
            continue
        within_2 = sum(r >= 0.98 for r in ratios) / len(ratios)
        within_5 = sum(r >= 0.95 for r in ratios) / len(ratios)
        under_1s = sum(t < 1.0 for t in seconds[budget]) / len(seconds[budget])
        print(
            f"  {budget:17} {len(ratios)} fits: achieved/target min {min(ratios):.4f} median "
            f"{statistics.median(ratios):.4f} max {max(ratios):.4f}; within 2% {within_2:.0%}, within 5% "
            f"{within_5:.0%}; s per fit median {statistics.median(seconds[budget]):.2f} max "
            f"{max(seconds[budget]):.2f}, under 1 s {under_1s:.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fvcore-max-phi", type=int, default=3)
    parser.add_argument("--bases", default=",".join(sorted(shipped_rules().rules)))
    parser.add_argument("--factors", default="1,1.5,2,3,4,6,8,12,16,24,32,48,64")
    parser.add_argument("--skip-measure", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    if not args.skip_measure:
        measure_all(args.fvcore_max_phi)
    if not args.skip_fit:
        fit_sweep(args.bases.split(","), [float(f) for f in args.factors.split(",")])


if __name__ == "__main__":
    main()
