"""By hand: `python benchmarks/bench_norm.py [--phi -1] [--epochs 3] [--batch-sizes 2,8,64] [--threads 2]`.
Batch norm against batch-independent norms at small and large batches (issue 25).

Part 1: efficientnet_b0 and resnet18 scaled to `--phi` (default -1, so that a CPU run takes minutes),
at 32 px, trained on builtin:digits with norm batch, group and proxy at each batch size: the same epochs, seed and learning-rate rule (timm's: lr_base 0.1 per
256 images, linear in the batch size), SGD, no augmentation. Prints top-1 at the last epoch and
training images/s (median of the epochs after the first).

Part 2: G16 + Proxy Norm against B0 + batch norm at equal GMACs: efficientnet_b0_g16_evos at the
largest phi whose GMACs (at 32 px) do not exceed efficientnet_b0's, each at batch 8 and 64.

One seed per cell (give --seeds N for more): a single run is an anecdote, and the table says so.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import timm_compound as tc

FAMILIES = ("efficientnet_b0", "resnet18")
NORMS = ("batch", "group", "proxy")
PIXELS = 32


def run(model, norm: str, batch_size: int, epochs: int, seed: int) -> tuple[float, float]:
    """(top-1 at the last epoch, median training images/s after the first epoch); a run whose loss
    became NaN (train stops it) counts as top-1 nan."""
    try:
        result = _train(model, norm, batch_size, epochs, seed)
    except tc.CompoundError as error:
        print(f"  ({norm}, batch {batch_size}, seed {seed}: {str(error).split(';')[0]})", flush=True)
        return math.nan, math.nan
    rates = [row.images_per_second for row in result.history[1:]] or [result.history[0].images_per_second]
    return result.top1, statistics.median(rates)


def _train(model, norm: str, batch_size: int, epochs: int, seed: int):
    return tc.train(
        model,
        "builtin:digits",
        norm=norm,
        epochs=epochs,
        batch_size=batch_size,
        resolution=PIXELS,
        seed=seed,
        progress=False,
    )


def cells(model, label: str, norms, batch_sizes, epochs: int, seeds: int) -> None:
    for batch_size in batch_sizes:
        for norm in norms:
            started = time.perf_counter()
            scores = [run(model, norm, batch_size, epochs, seed) for seed in range(seeds)]
            top1 = [s[0] for s in scores]
            spread = f" ± {statistics.stdev(top1):.1f}" if len(top1) > 1 else ""
            print(
                f"{label:<28} {norm:<6} {batch_size:>5} {statistics.mean(top1):7.1f}%{spread:<7} "
                f"{statistics.median(s[1] for s in scores):8.0f} {time.perf_counter() - started:7.0f}",
                flush=True,
            )


def g16_at_b0_gmacs() -> float:
    """The largest phi (steps of 0.25) at which G16-EfficientNet costs no more GMACs than B0, at 32 px."""
    budget = tc.measure(tc.plan("efficientnet_b0", 0), resolution=PIXELS).macs
    phi = 0.0
    while tc.measure(tc.plan("efficientnet_b0_g16_evos", phi), resolution=PIXELS).macs > budget:
        phi -= 0.25
    return phi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--phi", type=float, default=-1.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-sizes", default="2,8,64")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-g16", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(
        f"builtin:digits, {PIXELS} px, {args.epochs} epochs, SGD with timm's lr rule, {args.seeds} seed(s), "
        f"torch {torch.__version__}, {args.threads} thread(s)"
    )
    if args.seeds == 1:
        print("one seed per cell: differences of a few points are within seed-to-seed noise here")
    print(f"{'model':<28} {'norm':<6} {'batch':>5} {'top-1':>8}{'':<7} {'img/s':>8} {'seconds':>7}")
    for family in FAMILIES:
        cells(tc.plan(family, args.phi), f"{family} phi={args.phi:g}", NORMS, batch_sizes, args.epochs, args.seeds)
    if args.skip_g16:
        return
    phi = g16_at_b0_gmacs()
    b0 = tc.measure(tc.plan("efficientnet_b0", 0), resolution=PIXELS)
    g16_plan = tc.plan("efficientnet_b0_g16_evos", phi)
    g16 = tc.measure(g16_plan, resolution=PIXELS)
    print(
        f"equal GMACs at {PIXELS} px: efficientnet_b0 {b0.gmacs * 1000:.1f} MMACs, "
        f"G16 at phi={phi:g} {g16.gmacs * 1000:.1f} MMACs"
    )
    large = [b for b in batch_sizes if b >= 8] or batch_sizes
    cells("efficientnet_b0_cs_phi0", "B0", ("batch",), large, args.epochs, args.seeds)
    cells(g16_plan, f"G16 phi={phi:g}", ("proxy",), large, args.epochs, args.seeds)


if __name__ == "__main__":
    main()
