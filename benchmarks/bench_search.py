"""By hand: `python benchmarks/bench_search.py [--epochs 9] [--train-samples 64] [--threads 1] ...`.

Successive halving against the exhaustive grid, side by side in one run: the same coefficient
search (`timm_compound.search`: same base, candidates, data, seed and schedule) run twice on the
built-in digits, once with `pruner="none"` (every candidate trained for every epoch) and once with
`pruner="successive_halving"` (synchronous: every candidate to epoch 1, the best third of the
models on to 3 from their checkpoints, the best third of those to 9; `--pruner asha` compares
Optuna's asynchronous SuccessiveHalvingPruner instead), at the same time in two processes (one per core, `--threads` torch threads
each), so both see the same machine load. Printed per candidate and in total: training epochs
spent (goal: successive halving at most a third of the grid's), the winner of each, and where
successive halving's winner ranks in the exhaustive results (goal: the same winner, or within the
exhaustive top 2). Ranks count distinct models: candidates that round to the same model (twins)
are one training with one result, so they share a place. Trainings are deterministic (same seed, same data order), so a pruned trial's
curve (its rungs' epochs together, resumed from checkpoints) must be the first epochs of the same
candidate's exhaustive curve: that is checked too.

The defaults (resnet18, step 0.1 within alpha <= 1.3, beta <= 1.2, gamma <= 1.2: 6 grid points and
the 3 single-dimension references; 9 epochs of 64 training images at a 32 px proxy resolution,
64 validation images, batch 32, lr 0.05, 1 torch thread per process) are sized to finish in about
3 minutes on 2 idle CPU cores (the exhaustive search is the longer of the two). They are far too
small to say which coefficients are good for resnet18: they measure how much successive halving
saves and whether it keeps the winner. Wall and process CPU seconds are printed, and the load
average (on a shared machine the wall clock counts other work too).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import optuna
import torch

from timm_compound.search.api import search
from timm_compound.search.rungs import rung_study_name
from timm_compound.search.storage import default_url
from timm_compound.search.study import DUPLICATE, PARAM, SAME_MODEL


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="resnet18")
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--bounds", default="1.3,1.2,1.2", help="alpha,beta,gamma upper bounds")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--resolution", type=int, default=32, help="the base's proxy input size")
    parser.add_argument("--train-samples", type=int, default=64)
    parser.add_argument("--val-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per search process")
    parser.add_argument(
        "--pruner", default="successive_halving", help="the pruner compared with the grid (asha: Optuna's)"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep both searches' folders here (default: a temp dir)")
    return parser.parse_args()


def curves(out: Path, study: str) -> dict[str, list[float]]:
    """Each trained candidate's validation top-1 per epoch, from the study and its later rungs' studies
    (a candidate's rung trials report the epochs each trained, so together they are its whole curve)."""
    storage = optuna.storages.RDBStorage(default_url(out))
    names = {summary.study_name for summary in storage.get_all_studies()}
    values: dict[str, dict[int, float]] = {}
    for rung in range(len(names)):
        name = rung_study_name(study, rung)
        if name not in names:
            break
        for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
            if PARAM in t.params and DUPLICATE not in t.user_attrs and SAME_MODEL not in t.user_attrs:
                values.setdefault(t.params[PARAM], {}).update(t.intermediate_values)
    return {key: [by_epoch[e] for e in sorted(by_epoch)] for key, by_epoch in values.items()}


def run_search(args, root: Path, pruner: str):
    """One search in its own process: (result, wall s, process CPU s, curves)."""
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = root / pruner
    wall, cpu = time.perf_counter(), time.process_time()
    result = search(
        args.base,
        "builtin:digits",
        step=args.step,
        bounds=tuple(float(b) for b in args.bounds.split(",")),
        epochs=args.epochs,
        pruner=pruner,
        resolution=args.resolution,
        train_samples=args.train_samples,
        val_samples=args.val_samples,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out=out,
        say=lambda line: print(f"  [{pruner}] {line}", flush=True),
    )
    return result, time.perf_counter() - wall, time.process_time() - cpu, curves(out, result.study_name)


def main() -> None:
    args = arguments()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as temp:
        root = args.out or Path(temp)
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            exhaustive = pool.submit(run_search, args, root, "none")
            halving_run = pool.submit(run_search, args, root, args.pruner)
            grid, grid_wall, grid_cpu, grid_curves = exhaustive.result()
            halving, sh_wall, sh_cpu, sh_curves = halving_run.result()

    print(
        f"\n{args.base} on builtin:digits: {len(grid.rows)} candidates (step {args.step:g}, bounds {args.bounds}), "
        f"{args.epochs} epochs each, {args.train_samples} train / {args.val_samples} val images, "
        f"{args.resolution} px proxy, batch {args.batch_size}, lr {args.lr:g}, seed {args.seed}, "
        f"2 processes x {args.threads} torch thread(s)"
    )
    sh_rows = {row.key: row for row in halving.rows}
    print(
        f"{'candidate':<13}{'kind':<11}{'×base':>6}{'grid top-1':>11}{'rank':>5}{'SH epochs':>10}  "
        f"{'SH state':<9}{'SH top-1':>9}"
    )
    for rank, row in enumerate(grid.rows, 1):
        sh = sh_rows[row.key]
        print(
            f"{row.key:<13}{row.kind:<11}{row.ratio:>6.2f}{row.top1:>11.2f}{rank:>5}{sh.epochs_run:>10}  "
            f"{sh.state:<9}{sh.top1:>9.2f}"
        )

    same_prefix = [key for key, values in sh_curves.items() if values == grid_curves.get(key, [])[: len(values)]]
    winner, sh_winner = grid.best, halving.best
    position = next(i for i, row in enumerate(grid.rows, 1) if row.key == sh_winner.key)
    # candidates that round to the same model are one model, one training, one result: rank models
    models = {}
    for row in grid.rows:
        models.setdefault(grid.table[row.key].model_key, row)
    sh_model = grid.table[sh_winner.key].model_key
    above = sum(
        1
        for model, row in models.items()
        if model != sh_model and row.top1 is not None and row.top1 > sh_rows[sh_winner.key].top1 + 1e-9
    )
    print(f"\n{'':<22}{'exhaustive grid':>18}{'succ. halving':>18}{'SH / grid':>11}")
    print(
        f"{'training epochs':<22}{grid.epochs_spent:>18}{halving.epochs_spent:>18}"
        f"{halving.epochs_spent / grid.epochs_spent:>11.3f}"
    )
    print(f"{'wall seconds':<22}{grid_wall:>18.1f}{sh_wall:>18.1f}{sh_wall / grid_wall:>11.3f}")
    print(f"{'process CPU seconds':<22}{grid_cpu:>18.1f}{sh_cpu:>18.1f}{sh_cpu / grid_cpu:>11.3f}")
    print(f"{'winner':<22}{winner.key:>18}{sh_winner.key:>18}")
    print(f"{'winner top-1 %':<22}{winner.top1:>18.2f}{sh_winner.top1:>18.2f}")
    verdict = (
        "the same winner"
        if grid.table[winner.key].model_key == sh_model
        else "within the exhaustive top 2"
        if above < 2
        else "NOT within the exhaustive top 2"
    )
    print(
        f"successive halving's winner {sh_winner.key}: position {position} of {len(grid.rows)} candidates in the "
        f"exhaustive results; {len(models)} distinct models (twins round to one), {above} of them strictly better "
        f"-> {verdict}"
    )
    print(
        f"epochs: successive halving spent {halving.epochs_spent / grid.epochs_spent:.1%} of the grid's "
        f"({'at most' if 3 * halving.epochs_spent <= grid.epochs_spent else 'MORE than'} a third)"
    )
    print(
        f"load average (1 min) before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(
        f"determinism: {len(same_prefix)} of {len(sh_curves)} successive-halving curves equal the first epochs of the "
        f"exhaustive ones"
    )


if __name__ == "__main__":
    main()
