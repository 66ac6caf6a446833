"""Workers: processes that take unclaimed (model, seed) runs from the ledger until none is left.

A worker claims a run, trains it in its run folder (resuming it when a killed worker left epochs
behind), beats while it trains, and records it done; when every run left is held by others it waits
and looks again, so it can take over the run of a worker that dies. `--workers N` runs N such
workers on this machine (this process and N - 1 spawned ones, torch threads split between them);
workers on other machines run the same command against the same `--storage` and `--out` (a shared
file system).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.experiment import runner
from timm_compound.experiment.ledger import Ledger
from timm_compound.storage.database import open_engine
from timm_compound.storage.urls import scrub

DEFAULT_HEARTBEAT = 60  # seconds between heartbeats; a run whose worker is silent for twice that is taken over


class ClaimLost(CompoundError):
    """Another worker took this worker's run over (it was silent too long): this one stops training it."""


@dataclass
class Setup:
    """Everything a worker needs; picklable, so `--workers N` hands it to its N - 1 spawned processes."""

    url: str
    jobs: list[runner.Job]
    recipe: runner.Recipe
    train_images: int
    heartbeat: int = DEFAULT_HEARTBEAT
    threads: int | None = None  # torch threads of each worker
    poll: float | None = None  # seconds between looks when every run left is held elsewhere


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Beats for a held run from a thread; `epoch()` counts an epoch and stops training if the run was lost."""

    def __init__(self, ledger: Ledger, run_id: int, worker: str, interval: float):
        self.ledger, self.run_id, self.worker, self.interval = ledger, run_id, worker, interval
        self.lost = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                if not self.ledger.beat(self.run_id, self.worker):
                    self.lost = True
                    return
            except CompoundError:
                pass  # the database is unreachable for a moment: the next beat tries again

    def epoch(self, *_: Any) -> bool:
        if self.lost or not self.ledger.epoch(self.run_id, self.worker):
            self.lost = True
            raise ClaimLost(
                f"run {self.run_id} was taken over by another worker (this one was silent for {2 * self.interval:g}s)"
            )
        return False

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()


def work(setup: Setup, say: Callable[[str], None], console: Console | None = None) -> int:
    """Claim and train runs until none is left (done or failed everywhere); the number this worker trained."""
    ledger = Ledger(open_engine(setup.url), setup.url)
    try:
        return _claim_and_train(ledger, setup, say, console)
    finally:
        ledger.engine.dispose()  # its connections closed, not dropped, when the process ends


def _claim_and_train(ledger: Ledger, setup: Setup, say: Callable[[str], None], console: Console | None) -> int:
    me = worker_name()
    grace = 2 * setup.heartbeat
    poll = setup.poll or min(1.0, float(setup.heartbeat))
    jobs = {job.index: job for job in setup.jobs}
    recipe = setup.recipe
    tracker = runner.Progress(
        setup.jobs, recipe.epochs, setup.train_images, say=say, finished_runs=lambda: _finished(ledger, recipe.epochs)
    )
    trained = 0
    waiting_said = False
    while True:
        claim = ledger.claim(me, grace)
        if claim is None:
            counts = ledger.counts(recipe.epochs)
            if counts.remaining == 0:
                return trained
            if not waiting_said:
                say(
                    f"experiment: {counts.running} run(s) held by other workers; waiting to take over any whose "
                    f"worker stops"
                )
                waiting_said = True
            time.sleep(poll)
            continue
        waiting_said = False
        job = jobs[claim.id]
        if claim.took_over:
            say(f"experiment: took over {job.label} from a worker silent for {grace}s (attempt {claim.claims})")
        if runner.finished(job.run_dir, recipe.epochs):  # trained, but its worker died before saying so
            if not recipe.keep_checkpoints:
                runner.thin(job.run_dir)
            ledger.finish(claim.id, me, "done")
            continue
        try:
            with Heartbeat(ledger, claim.id, me, setup.heartbeat) as beat:
                found = runner.train_job(
                    job, recipe, tracker, False, console or Console(quiet=True), on_epoch=beat.epoch
                )
        except ClaimLost as error:
            say(f"experiment: {job.label}: {error}; leaving it to that worker")
            continue
        except Exception:
            ledger.release(claim.id, me, forgive=False)  # broken here: another worker may try it (MAX_CLAIMS in all)
            raise
        except BaseException:
            ledger.release(claim.id, me)  # interrupted (Ctrl-C): another worker may take it at once
            raise
        ledger.finish(claim.id, me, "done" if found.status == "completed" else "failed", found.message)
        trained += 1


def _finished(ledger: Ledger, epochs: int) -> int:
    counts = ledger.counts(epochs)
    return counts.done + counts.failed


def run_many(setup: Setup, workers: int, say: Callable[[str], None], console: Console | None = None) -> None:
    """`workers` workers on this machine: this process, which has torch loaded already and would
    otherwise wait, and `workers - 1` spawned ones, each running `work`; returns when all are done."""
    from timm_compound.cost.runtimes import torch_threads

    context = multiprocessing.get_context("spawn")  # no fork after torch started its threads
    messages = context.Queue()
    processes = [
        context.Process(target=_worker_main, args=(setup, index, messages), name=f"experiment-worker-{index}")
        for index in range(2, workers + 1)
    ]
    for process in processes:
        process.start()
    problems: list[str] = []
    finished = threading.Event()

    def relay() -> None:  # the spawned workers' lines and errors, while this process trains
        while not finished.is_set() or not messages.empty():
            problems.extend(_drain(messages, say, timeout=0.2))

    relay_thread = threading.Thread(target=relay, name="experiment-worker-lines", daemon=True)
    relay_thread.start()
    try:
        with torch_threads(setup.threads):  # this process trains with a worker's share of the cores
            trained = work(setup, lambda line: say(f"[worker 1] {line}"), console)
        say(f"[worker 1] done: {trained} run(s) trained (pid {os.getpid()})")
    except BaseException:
        for process in processes:
            process.terminate()  # their runs go silent and are taken over by the next worker
        raise
    finally:
        for process in processes:
            process.join()
        finished.set()
        relay_thread.join()
    for process in processes:
        if process.exitcode not in (0, None) and not any(p.startswith(process.name) for p in problems):
            problems.append(f"{process.name} exited with code {process.exitcode}")
    if problems:
        raise CompoundError("; ".join(problems))


def _drain(messages, say: Callable[[str], None], timeout: float) -> list[str]:
    import queue

    try:
        kind, text = messages.get(timeout=timeout)
    except queue.Empty:
        return []
    if kind == "error":
        return [text]
    say(text)
    return []


def _worker_main(setup: Setup, index: int, messages) -> None:
    """A spawned worker: its own torch threads, its lines and its error sent back to the parent. It ends
    with `os._exit` once its lines are sent: the interpreter's teardown of torch and timm takes 1-2 s."""
    import torch

    if setup.threads:
        torch.set_num_threads(setup.threads)
    name = f"experiment-worker-{index}"
    code = 0
    try:
        trained = work(setup, lambda line: messages.put(("line", f"[worker {index}] {line}")))
        messages.put(("line", f"[worker {index}] done: {trained} run(s) trained (pid {os.getpid()})"))
    except CompoundError as error:
        messages.put(("error", f"{name}: {scrub(str(error), setup.url)}"))
        code = 1
    except Exception as error:  # an unexpected failure: its traceback, without the password
        messages.put(("error", f"{name}: {scrub(''.join(traceback.format_exception(error)), setup.url)}"))
        code = 1
    messages.close()
    messages.join_thread()  # every line is in the pipe before the process goes
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
