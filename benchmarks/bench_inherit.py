"""By hand: `python benchmarks/bench_inherit.py [--base resnet18] [--base-epochs 3] [--epochs 4] [--noise 0.01]`.

Does growing from the base's weights (timm_compound.inherit) pay? On builtin:digits (1,438 training
and 359 validation images, offline), it

1. trains the base (`--base`, default resnet18) for `--base-epochs`;
2. grows it into `<base>_cs_phi1` with `timm_compound.inherit` (Net2Net: widths copied, new blocks
   the identity, `--noise` to break the copies' symmetry) and evaluates it before any training;
3. trains that phi=1 model from the inherited weights and a phi=1 model from scratch with the same
   settings and seed for `--epochs` each, and prints their validation top-1 per epoch side by side,
   and how many epochs the scratch run needs to reach the inherited run's first-epoch top-1.

Every model trains and is evaluated at `--pixels` (32 by default: digits are 8x8 images, and the
planned phi=1 resolution would only cost time). Growth preserves the function at any resolution of
a global-pool convnet, so the comparison is the same one at the planned size. Defaults take about
2-4 minutes on 2 CPU cores. `--threads` sets torch's CPU threads.
"""

from __future__ import annotations

import argparse
import time

import torch

from timm_compound.inherit.api import inherit
from timm_compound.train.api import evaluate, train

DATA = "builtin:digits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="resnet18")
    parser.add_argument("--base-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--pixels", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    common = dict(resolution=args.pixels, batch_size=args.batch_size, progress=False)
    target = f"{args.base}_cs_phi1"
    start = time.perf_counter()
    print(
        f"{DATA}, {args.pixels} px, batch {args.batch_size}, SGD + cosine (timm's defaults), "
        f"torch threads {torch.get_num_threads()}"
    )

    base = train(args.base, DATA, epochs=args.base_epochs, seed=args.seed, **common)
    print(f"base {args.base}: top-1 per epoch " + ", ".join(f"{row.top1:.1f}%" for row in base.history))

    grown = inherit(base.model, target, noise=args.noise, seed=args.seed)
    before = evaluate(grown, DATA, resolution=args.pixels, batch_size=args.batch_size).top1
    base_top1 = evaluate(base.model, DATA, resolution=args.pixels, batch_size=args.batch_size).top1
    print(
        f"{target} grown from it (noise {args.noise:g}): top-1 {before:.1f}% before training "
        f"(the base: {base_top1:.1f}%; output deviation {grown.inherit_report.deviation:.1e} relative)"
    )

    inherited = train(grown, DATA, epochs=args.epochs, seed=args.seed + 1, **common)
    scratch = train(target, DATA, epochs=args.epochs, seed=args.seed + 1, **common)

    print(f"\n{target}: validation top-1 per epoch")
    print(f"{'epoch':>5} {'inherited':>10} {'scratch':>9} {'epoch s (inh/scr)':>18}")
    print(f"{0:>5} {before:9.1f}% {'-':>9}")
    for ours, theirs in zip(inherited.history, scratch.history):
        print(f"{ours.epoch:>5} {ours.top1:9.1f}% {theirs.top1:8.1f}% {ours.seconds:9.1f} /{theirs.seconds:6.1f}")
    first = inherited.history[0].top1
    reached = next((row.epoch for row in scratch.history if row.top1 >= first), None)
    print(
        f"scratch reaches the inherited run's epoch-1 top-1 ({first:.1f}%) "
        + (f"at epoch {reached}" if reached else f"in none of its {args.epochs} epochs")
    )
    print(
        f"best: inherited {max(r.top1 for r in inherited.history):.1f}%, scratch "
        f"{max(r.top1 for r in scratch.history):.1f}%; {time.perf_counter() - start:.0f} s in all"
    )


if __name__ == "__main__":
    main()
