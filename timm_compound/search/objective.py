"""One trial: a proxy training of one candidate through the training engine.

Every trial trains with the same seed, data and schedule; it reports validation top-1 after each
epoch (`trial.report`) so the pruner can stop a weak candidate early (`trial.should_prune`), and
returns the last epoch's top-1. A trial whose candidate another trial holds does not train (see
`study.duplicate_of`); one whose candidate rounds to the same model as a finished trial takes its
result (same model, seed, data and schedule: the same training). Under successive halving a trial
trains one rung: from the candidate's checkpoint (if this worker has it) to the rung's epoch.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timm_compound.search.candidates import CandidateTable
from timm_compound.search.confidence import CORRECT, encode
from timm_compound.search.rungs import EVAL_LOSS, REACHED, run_folder
from timm_compound.search.study import DUPLICATE, PARAM, SAME_MODEL, duplicate_of, trained_twin


@dataclass
class Recipe:
    """What every trial trains with: data, epochs and the other `timm_compound.train` arguments."""

    data: str
    epochs: int
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    stop_after: int | None = None  # successive halving: the rung's epoch (the schedule stays `epochs` long)
    runs: str | None = None  # successive halving: where each candidate's run folder (checkpoint) lives


class Objective:
    """Callable for `study.optimize`; `say(line)` reports each trial's outcome."""

    def __init__(self, table: CandidateTable, recipe: Recipe, say: Callable[[str], None] | None = None):
        self.table, self.recipe, self.say = table, recipe, say or (lambda line: None)
        self.last_duplicate = False  # whether the last trial found its candidate held by another

    def __call__(self, trial) -> float:
        import optuna

        key = trial.suggest_categorical(PARAM, self.table.keys)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trials = trial.study.get_trials(deepcopy=False)
        holder = duplicate_of(trial, key, trials)
        self.last_duplicate = holder is not None
        if holder is not None:
            trial.set_user_attr(DUPLICATE, holder.number)
            self.say(f"trial {trial.number} {key}: already held by trial {holder.number}, not trained")
            raise optuna.TrialPruned(f"candidate {key} is held by trial {holder.number}")
        twin = trained_twin(self.table.twins(key), trials)
        if twin is not None:
            return self._share(trial, key, twin)
        return self._train(trial, key)

    def _share(self, trial, key: str, twin) -> float:
        import optuna

        trial.set_user_attr(SAME_MODEL, twin.number)
        self.say(
            f"trial {trial.number} {key}: rounds to the model of trial {twin.number} "
            f"({twin.params[PARAM]}), its result taken"
        )
        if twin.state == optuna.trial.TrialState.PRUNED:
            raise optuna.TrialPruned(f"the same model as trial {twin.number}, which was pruned")
        return twin.value

    def _train(self, trial, key: str) -> float:
        import optuna

        from timm_compound.train.api import train

        candidate = self.table[key]
        trial.set_user_attr("plan", candidate.attrs())  # one write: each is a commit (25 ms on SQLite)
        stop = self.recipe.stop_after
        folder = None if self.recipe.runs is None else run_folder(self.recipe.runs, key)
        saved = _saved_epoch(folder, stop)
        if saved is not None:  # a worker died after saving the rung's last epoch, before the trial ended
            return self._reached(trial, key, saved, trained=False, images=_saved_images(folder, saved.epoch))

        def report(epoch: int, metrics) -> bool:
            trial.report(metrics.top1, epoch)
            if stop is not None and epoch >= stop:
                return True
            if trial.should_prune():
                self.say(f"trial {trial.number} {key}: pruned after epoch {epoch} (top-1 {metrics.top1:.2f}%)")
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")
            return False

        result = train(
            candidate.plan,
            self.recipe.data,
            epochs=self.recipe.epochs,
            resolution=candidate.train_resolution,
            progress=False,
            on_epoch=report,
            out=folder,
            resume=True if folder is not None else None,
            **self.recipe.train_kwargs,
        )
        trial.set_user_attr("seconds", result.seconds)
        images = (
            result.images
            if result.images is not None and result.images.epoch == result.history[-1].epoch
            else _saved_images(folder, result.history[-1].epoch)
        )
        return self._reached(trial, key, result.history[-1], trained=True, images=images)

    def _reached(self, trial, key: str, metrics, *, trained: bool, images=None) -> float:
        candidate = self.table[key]
        trial.set_user_attr(REACHED, metrics.epoch)
        trial.set_user_attr(EVAL_LOSS, metrics.eval_loss)
        if images is not None:  # per-image results, so the winner can be tested against others image by image
            trial.set_user_attr(CORRECT, encode(images))
        how = "" if trained else " (saved by an earlier attempt)"
        self.say(
            f"trial {trial.number} {key}: top-1 {metrics.top1:.2f}% after epoch {metrics.epoch}{how}, "
            f"{candidate.macs / 1e9:.3f} GMACs at {candidate.train_resolution} px ({candidate.ratio:.2f}x)"
        )
        return metrics.top1


def _saved_epoch(folder: Path | None, stop: int | None):
    """The metrics of epoch `stop` when `folder` already holds that many epochs (else None)."""
    from timm_compound.train.run import METRICS, read_metrics

    if folder is None or stop is None or not (folder / METRICS).is_file():
        return None
    history = read_metrics(folder)
    return history[stop - 1] if len(history) >= stop else None


def _saved_images(folder: Path | None, epoch: int):
    """The run folder's per-image results when they are those of `epoch` (else None)."""
    from timm_compound.train import predictions

    if folder is None or not predictions.exists(folder):
        return None
    found = predictions.read(folder)
    return found if found.epoch == epoch else None
