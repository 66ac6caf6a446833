"""By hand: `python benchmarks/bench_experiment.py [--seeds 2] [--epochs 2] [--train-samples 256] ...`.

One worker against two, side by side in one run: the same experiment (`timm_compound.experiment`:
same base, budgets, strategies, seeds, data and schedule) run twice on the built-in digits, first
with `workers=1` (this process takes every run from the ledger), then with `workers=2` (this process
and one spawned worker share the ledger), each into its own folder and SQLite ledger, torch at one
thread per worker, no latency timings (the experiment's timings are serial planning, and the first
side would fill the timing cache that the second reads). Printed: wall seconds of each and their ratio (goal: 2 workers at least 1.8 times
faster on 2 cores), the runs each worker trained, the runs done twice (a run claimed more than once
or an epoch trained twice: must be 0), and whether both experiments measured the same top-1 for
every run (trainings are deterministic, so where a run is trained must not change what it measures).

The defaults (convnext_atto at 32 px, one budget (2x), the four strategies and the base, 2 seeds:
10 runs; 3 epochs of 1,024 training digits, 128 validation digits, batch 64, no class activation
maps) take about 20 s per run and finish in about 6 minutes on 2 idle CPU cores. The 2-worker side
pays for starting a process (torch, timm and this package imported again: about 5 s of a core), the
first run's imports in it, and a last run that leaves the other worker idle; runs of seconds make
those the measurement, runs of minutes amortise them. The load average is
printed before and after: on a shared machine the wall clock counts other work too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from timm_compound.experiment.api import experiment
from timm_compound.experiment.ledger import Ledger
from timm_compound.storage.database import open_engine


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="convnext_atto")
    parser.add_argument("--budgets", default="2")
    parser.add_argument("--strategies", default="depth,width,resolution,compound")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--train-samples", type=int, default=1024)
    parser.add_argument("--val-samples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--out", type=Path, default=None, help="keep both experiments' folders here (default: a temp dir)"
    )
    return parser.parse_args()


def run(args: argparse.Namespace, folder: Path, workers: int) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'ledger.db'}"
    lines: list[str] = []
    console = Console(file=open(os.devnull, "w"))
    console.print = lambda text="", **_: lines.append(str(text))
    cpu = time.process_time()
    start = time.perf_counter()
    result = experiment(
        args.base,
        budgets=tuple(float(b) for b in args.budgets.split(",")),
        strategies=args.strategies,
        seeds=args.seeds,
        epochs=args.epochs,
        resolution=args.resolution,
        train_samples=args.train_samples,
        val_samples=args.val_samples,
        batch_size=args.batch_size,
        cam_images=0,
        latency=False,
        storage=url,
        workers=workers,
        out=folder / "exp",
        console=console,
    )
    seconds = time.perf_counter() - start
    rows = Ledger(open_engine(url), url).rows()
    by_worker: dict[str, int] = {}
    for row in rows:
        by_worker[row["worker"]] = by_worker.get(row["worker"], 0) + 1
    twice = sum(row["claims"] > 1 or row["epochs_trained"] > args.epochs for row in rows)
    top1 = {(row.variant.name, run.seed): run.top1 for row in result.rows for run in row.runs}
    return {
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "runs": len(rows),
        "by_worker": by_worker,
        "twice": twice,
        "top1": top1,
        "done": sum(row["state"] == "done" for row in rows),
        "verdict": list(result.verdicts.values()),
    }


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)  # the 1-worker side; with 2 workers each (this process too) gets cores // 2 = 1 on 2 cores
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-experiment-"))
    load_before = os.getloadavg()[0]
    print(
        f"{args.base} on builtin:digits: budgets {args.budgets}, strategies {args.strategies}, {args.seeds} seeds, "
        f"{args.epochs} epochs of {args.train_samples} train / {args.val_samples} val images at {args.resolution} px, "
        f"batch {args.batch_size}; {os.cpu_count()} cores, torch {torch.__version__}, 1 thread per worker",
        flush=True,
    )
    one = run(args, root / "one-worker", 1)
    two = run(args, root / "two-workers", 2)
    load_after = os.getloadavg()[0]
    print(f"\n{'':28}{'1 worker':>14}{'2 workers':>14}")
    print(f"{'runs (model x seed)':28}{one['runs']:>14}{two['runs']:>14}")
    print(f"{'wall seconds':28}{one['seconds']:>14.1f}{two['seconds']:>14.1f}")
    print(f"{'this process CPU seconds':28}{one['cpu']:>14.1f}{two['cpu']:>14.1f}")
    print(f"{'runs done':28}{one['done']:>14}{two['done']:>14}")
    print(f"{'runs done twice':28}{one['twice']:>14}{two['twice']:>14}")
    print(f"runs per worker, 2 workers: {', '.join(f'{n} ({w})' for w, n in sorted(two['by_worker'].items()))}")
    print(f"wall-time ratio 1 worker / 2 workers: {one['seconds'] / two['seconds']:.2f} (goal: at least 1.8)")
    same = sum(one["top1"][key] == two["top1"].get(key) for key in one["top1"])
    print(f"determinism: {same} of {len(one['top1'])} runs measured the same top-1 with 1 and with 2 workers")
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores")
    for line in two["verdict"]:
        print(f"verdict (2 workers): {line}")


if __name__ == "__main__":
    main()
