"""Workers: the loop that runs trials until the study is complete, in this process or in N local ones.

A worker runs one trial at a time (`study.optimize(n_trials=1)`, so the sampler, pruner, heartbeat
and stale-trial retry all work as Optuna means them to) and between trials reads the ledger:

- done when every candidate is done (or lost: failed 1 + MAX_RETRY times); for TPE, when the
  trial budget is spent;
- a candidate that failed without a retry queued (the trial raised) is queued again;
- when everything left is running elsewhere it waits and looks again: if that worker dies, its
  trial goes stale, is failed by the next look and comes back as a retry this worker picks up.

Under successive halving (`rungs`) a worker runs this loop once per rung, each rung its own study,
and computes which candidates continue from the finished rung, as every other worker does.

Workers on other machines run the same command against the same `--storage` and `--study`.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import random
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.search.candidates import CandidateTable
from timm_compound.search.objective import Objective, Recipe
from timm_compound.search.rungs import REDUCTION_FACTOR, forget, promoted, rung_epochs, rung_study_name
from timm_compound.search.storage import MAX_RETRY, open_storage, redact, scrub
from timm_compound.search.study import PARAM, Ledger, open_study

SAMPLERS = ("grid", "tpe")
PRUNERS = ("successive_halving", "asha", "hyperband", "none")
# trials that raise one of these are recorded as failed and queued again (1 + MAX_RETRY attempts);
# anything else (a CompoundError: bad input every trial would meet) stops the search
RETRIED_ERRORS = (RuntimeError, MemoryError, FloatingPointError)


@dataclass
class Job:
    """Everything one worker needs; picklable, so `--workers N` hands it to N spawned processes."""

    url: str
    study_name: str
    settings: dict[str, Any]
    table: CandidateTable
    recipe: Recipe
    sampler: str = "grid"
    pruner: str = "successive_halving"
    budget: int | None = None  # TPE: trials to train
    seed: int = 0
    epochs: int = 1
    heartbeat: int = 60
    threads: int | None = None  # torch threads in a spawned worker
    control: str | None = None  # successive halving: the candidate that always continues (the rule's current)
    keep_checkpoints: bool = False  # keep the checkpoints of candidates that stop at a rung

    @property
    def max_attempts(self) -> int:
        return 1 + MAX_RETRY

    @property
    def rungs(self) -> list[int]:
        """The epoch each rung trains to: successive halving's rungs, else one rung of `epochs`."""
        return rung_epochs(self.epochs) if self.pruner == "successive_halving" else [self.epochs]

    def rung(self, index: int, keys: list[str]) -> Job:
        """The job of one successive-halving rung: its own study of `keys`, each trained to the rung's epoch.
        Rung 0 keeps the search's study, settings and sampler; later rungs grid over the continuing keys."""
        recipe = replace(self.recipe, stop_after=self.rungs[index])
        if index == 0:
            return replace(self, recipe=recipe)
        table = replace(self.table, candidates={key: self.table[key] for key in keys})
        settings = {**self.settings, "rung": index, "rung_epochs": self.rungs[index], "candidates": keys}
        return replace(
            self,
            study_name=rung_study_name(self.study_name, index),
            settings=settings,
            table=table,
            recipe=recipe,
            sampler="grid",
            budget=None,
        )


def make_sampler(name: str, keys: list[str], seed: int):
    import optuna

    if name == "grid":
        # every worker shuffles the grid with the same seed, so grid ids mean the same point everywhere
        return _grid_sampler()({PARAM: keys}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


@functools.cache
def _grid_sampler():
    """GridSampler, except that a queued trial (a candidate queued again after its trial raised) may end.

    Optuna's GridSampler gives a queued trial no grid id, and its after_trial reads one when a single
    grid point is left unvisited: a KeyError('grid_id') that ended the search (seen when a full disk
    failed two trials in a row). Such a trial has nothing to tell the grid; the worker loop, not
    `study.stop()`, decides when a search is done, so it is skipped.
    """
    import optuna

    class QueuedTrialSafeGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:
            if "grid_id" in trial.system_attrs:
                super().after_trial(study, trial, state, values)

    return QueuedTrialSafeGridSampler


def make_pruner(name: str, epochs: int):
    import optuna

    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=REDUCTION_FACTOR)
    return optuna.pruners.NopPruner()  # "none", and "successive_halving", whose rungs stop trials themselves


def connect(job: Job):
    """The job's study, checked against its settings."""
    storage = open_storage(job.url, heartbeat=job.heartbeat)
    sampler = make_sampler(job.sampler, job.table.keys, job.seed)
    return open_study(
        storage,
        job.study_name,
        job.settings,
        sampler=sampler,
        pruner=make_pruner(job.pruner, job.epochs),
        shown_url=redact(job.url),
    )


def run_search(job: Job, say: Callable[[str], None], study=None) -> int:
    """Run the whole search (every rung under successive halving); the number of trials this worker ran."""
    if job.pruner != "successive_halving":
        return run(job, say, study)
    keys, ran = job.table.keys, 0
    for index, epoch in enumerate(job.rungs):
        rung = job.rung(index, keys)
        if index:
            say(f"rung {index}: {len(keys)} candidate(s) continue to epoch {epoch}: {', '.join(keys)}")
        rung_study = study if index == 0 and study is not None else connect(rung)
        ran += run(rung, say, rung_study)
        if index + 1 < len(job.rungs):
            keys = promoted(rung_study.get_trials(deepcopy=False), rung.table, control=job.control)
            if not job.keep_checkpoints:
                forget(job.recipe.runs, [key for key in rung.table.keys if key not in keys])
            if not keys:
                break  # every candidate of this rung failed: nothing continues (the result says incomplete)
    return ran


def run(job: Job, say: Callable[[str], None], study=None, poll: float | None = None) -> int:
    """Run trials until the study is complete (`study`: the job's, already connected); the number this worker ran."""
    import optuna

    study = study if study is not None else connect(job)
    objective = Objective(job.table, job.recipe, say)
    poll = poll or min(5.0, float(job.heartbeat))
    chooser = random.Random(f"{job.seed}-{os.getpid()}")
    ran = 0
    while True:
        with warnings.catch_warnings():  # "experimental" since optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, its retry queued
        ledger = Ledger.of(study, job.table.keys, job.max_attempts)
        if complete(job, ledger):
            return ran
        for key in ledger.orphans:  # failed by raising: no retry was queued for it
            study.enqueue_trial({PARAM: key})
        if job.sampler == "tpe" and objective.last_duplicate and ledger.untried and _can_start(job, ledger):
            # TPE proposed a candidate another trial holds: an untried one instead, so the budget buys new points
            study.enqueue_trial({PARAM: chooser.choice(ledger.untried)})
        if ledger.orphans or ledger.queued or _can_start(job, ledger):
            study.optimize(objective, n_trials=1, catch=RETRIED_ERRORS)
            ran += 1
        else:
            time.sleep(poll)  # the rest is running elsewhere


def complete(job: Job, ledger: Ledger) -> bool:
    if job.sampler == "tpe" and len(ledger.done) >= job.budget and not ledger.queued:
        return True
    return ledger.finished


def _can_start(job: Job, ledger: Ledger) -> bool:
    """Whether asking the sampler for a new trial can find work."""
    if job.sampler == "tpe":
        return len(ledger.done) + len(ledger.running) < job.budget and bool(ledger.untried)
    return bool(ledger.untried)


def run_many(job: Job, workers: int, say: Callable[[str], None]) -> None:
    """`workers` spawned processes on this machine, each running `run`; waits for all of them."""
    context = multiprocessing.get_context("spawn")  # no fork after torch started its threads
    messages = context.Queue()
    processes = [
        context.Process(target=_worker_main, args=(job, index, messages), name=f"search-worker-{index}")
        for index in range(1, workers + 1)
    ]
    for process in processes:
        process.start()
    problems: list[str] = []
    try:
        while any(process.is_alive() for process in processes) or not messages.empty():
            problems += _drain(messages, say, timeout=0.5)
    except BaseException:
        for process in processes:
            process.terminate()  # their running trials go stale and are retried by the next run
        raise
    finally:
        for process in processes:
            process.join()
    for process in processes:
        if process.exitcode not in (0, None) and not any(p.startswith(process.name) for p in problems):
            problems.append(f"{process.name} exited with code {process.exitcode}")
    if problems:
        raise CompoundError("; ".join(problems))


def _drain(messages, say: Callable[[str], None], timeout: float) -> list[str]:
    import queue

    problems = []
    try:
        kind, text = messages.get(timeout=timeout)
    except queue.Empty:
        return problems
    (problems.append if kind == "error" else say)(text)
    return problems


def _worker_main(job: Job, index: int, messages) -> None:
    """A spawned worker: its own torch threads, its lines and its error sent back to the parent."""
    import torch

    if job.threads:
        torch.set_num_threads(job.threads)
    QuietOptuna()
    name = f"search-worker-{index}"
    try:
        ran = run_search(job, lambda line: messages.put(("line", f"[worker {index}] {line}")))
        messages.put(("line", f"[worker {index}] done: {ran} trial(s) run (pid {os.getpid()})"))
    except CompoundError as error:
        messages.put(("error", f"{name}: {scrub(str(error), job.url)}"))
        raise SystemExit(1) from None
    except Exception as error:  # an unexpected failure: its traceback, without the password
        messages.put(("error", f"{name}: {scrub(''.join(traceback.format_exception(error)), job.url)}"))
        raise SystemExit(1) from None


class QuietOptuna:
    """Optuna's per-trial INFO lines repeat what `say` reports (warnings still show); `restore()` undoes it."""

    def __init__(self):
        import optuna

        self.previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    def restore(self) -> None:
        import optuna

        optuna.logging.set_verbosity(self.previous)
