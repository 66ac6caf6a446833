"""By hand: `python benchmarks/bench_experiment.py [--seeds 2] [--epochs 3] [--train-samples 1024] ...`.

One worker against two, side by side in one run: the same experiment (`timm_compound.experiment`:
same base, budgets, strategies, seeds, data and schedule) run four times on the built-in digits, in
the order 1, 2, 2, 1 workers (the machine's speed drifts; the order lets a drift weigh on both),
each into its own folder and SQLite ledger: with `workers=1` this process takes every run from the
ledger, with `workers=2` this process and one spawned worker share it; torch at one thread per
worker; no latency timings (they are serial planning, and the first experiment would fill the timing
cache the others read). First, the machine's own ceiling: the base trained alone, two copies at
once, alone again, each in its own process timed after its imports; 2 x mean alone / the slower copy
is the most two workers could gain here.

Printed: wall seconds of each experiment and the ratio of the 1-worker sum to the 2-worker sum
(goal: 2 workers at least 1.8 times faster on 2 cores), the runs each worker trained, the runs done
twice (a run claimed more than once or an epoch trained twice: must be 0), and whether all four
experiments measured the same top-1 for every run (trainings are deterministic, so where a run is
trained must not change what it measures).

The defaults (convnext_atto at 32 px, one budget (2x), the four strategies and the base, 2 seeds: 10
runs; 3 epochs of 1,024 training digits, 128 validation digits, batch 64, no class activation maps)
take about 15 s per run and finish in about 10 minutes on 2 idle CPU cores. The 2-worker side pays
for starting a process (torch, timm and this package imported again: about 5 s of a core), the first
run's imports in it, and a last run that leaves the other worker idle; runs of seconds make those
the measurement, runs of minutes amortise them. The load average is printed before and after: on a
shared machine the wall clock counts other work too.
"""

from __future__ import annotations

import argparse
import multiprocessing
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


def _timed_training(args: argparse.Namespace, folder: Path, results) -> None:
    """One training of the base as an experiment's run trains it, timed from after the imports."""
    from timm_compound import train

    torch.set_num_threads(1)
    start = time.perf_counter()
    train(
        args.base,
        "builtin:digits",
        epochs=args.epochs,
        resolution=args.resolution,
        train_samples=args.train_samples,
        val_samples=args.val_samples,
        batch_size=args.batch_size,
        out=folder,
        progress=False,
        console=Console(file=open(os.devnull, "w")),
    )
    results.put(time.perf_counter() - start)


def ceiling(args: argparse.Namespace, folder: Path) -> tuple[list[float], list[float]]:
    """What this machine allows: the same training alone, two copies at once, alone again (the machine's
    speed drifts), each in a spawned process timed after its imports (no ledger, no experiment).
    2 x mean alone / the slower copy is the most a 2-worker experiment of such runs could gain here."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()

    def together(count: int, tag: str) -> list[float]:
        processes = [
            context.Process(target=_timed_training, args=(args, folder / f"{tag}-{index}", results))
            for index in range(count)
        ]
        for process in processes:
            process.start()
        times = [results.get() for _ in processes]
        for process in processes:
            process.join()
        return times

    first, pair, last = together(1, "a"), together(2, "pair"), together(1, "b")
    return first + last, pair


ORDER = ((1, "a"), (2, "a"), (2, "b"), (1, "b"))  # 1, 2, 2, 1: a drift in the machine's speed weighs on both


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)  # the 1-worker side; with 2 workers each (this process too) gets cores // 2 = 1 on 2 cores
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-experiment-"))
    load_before = os.getloadavg()[0]
    print(
        f"{args.base} on builtin:digits: budgets {args.budgets}, strategies {args.strategies}, {args.seeds} seeds, "
        f"{args.epochs} epochs of {args.train_samples} train / {args.val_samples} val images at {args.resolution} px, "
        f"batch {args.batch_size}; {os.cpu_count()} cores, torch {torch.__version__}, 1 thread per worker; "
        "run in the order 1, 2, 2, 1 workers",
        flush=True,
    )
    alone, pair = ceiling(args, root / "ceiling")
    done = [run(args, root / f"{workers}-workers-{tag}", workers) for workers, tag in ORDER]
    load_after = os.getloadavg()[0]
    heads = [f"{workers} worker{'s' if workers > 1 else ''} ({tag})" for workers, tag in ORDER]
    print(f"\n{'':28}" + "".join(f"{head:>16}" for head in heads))
    for label, key, form in (
        ("runs (model x seed)", "runs", "d"),
        ("wall seconds", "seconds", ".1f"),
        ("this process CPU seconds", "cpu", ".1f"),
        ("runs done", "done", "d"),
        ("runs done twice", "twice", "d"),
    ):
        print(f"{label:28}" + "".join(f"{result[key]:>16{form}}" for result in done))
    for (workers, tag), result in zip(ORDER, done):
        if workers == 2:
            shares = ", ".join(f"{n} ({w})" for w, n in sorted(result["by_worker"].items()))
            print(f"runs per worker, 2 workers ({tag}): {shares}")
    one = sum(result["seconds"] for (workers, _), result in zip(ORDER, done) if workers == 1)
    two = sum(result["seconds"] for (workers, _), result in zip(ORDER, done) if workers == 2)
    print(f"wall-time ratio 1 worker / 2 workers (sums of a and b): {one / two:.2f} (goal: at least 1.8)")
    print(
        f"this machine's ceiling: {args.base} trained alone {alone[0]:.1f} s and {alone[1]:.1f} s, two copies at "
        f"once {pair[0]:.1f} s and {pair[1]:.1f} s (imports excluded): 2 x mean alone / slower = "
        f"{sum(alone) / max(pair):.2f}"
    )
    reference = done[0]["top1"]
    same = sum(all(result["top1"].get(key) == top1 for result in done[1:]) for key, top1 in reference.items())
    print(f"determinism: {same} of {len(reference)} runs measured the same top-1 in all four experiments")
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores")
    for line in done[1]["verdict"]:
        print(f"verdict: {line}")


if __name__ == "__main__":
    main()
