"""Synchronous successive halving (Jamieson & Talwalkar 2016): the search's default pruner.

Every candidate trains to the first rung (1 epoch); the best third of the distinct models trained
there continue, from their checkpoints, to the next rung (3 epochs), the best third of those to
the next (9), and so on up to `epochs`, which is always the last rung. The rule's current
coefficients continue to every rung as a control (one more model per rung at most), so that the
winner can be tested against them on the final rung; a stopped candidate keeps only its metrics. With 11 distinct models and
9 epochs that is 11 + 4*2 + 2*6 = 31 epochs instead of 99.

Optuna's SuccessiveHalvingPruner (still there as pruner="asha") is the asynchronous variant: it
decides at each rung with the trials that happen to have reached it, so the first trials of a
grid (fewer than 3 competitors) are promoted whenever they are the best so far and train to the
end. A grid is known in advance, so waiting for the whole rung costs nothing and decides with
every candidate's result.

Each rung is an Optuna study of its own ("<study>" for rung 0, "<study>:rung-<k>" after it), so the
worker loop, heartbeats, retries and the settings check work per rung unchanged. The candidates of
rung k+1 are computed from the finished rung k by every worker alike. Checkpoints live in
`runs/<key>/` (training run folders, `timm_compound.train`'s resume); a worker that lacks one (it
was trained on another machine, with another --out) trains that candidate from the start.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

from timm_compound.search.candidates import CandidateTable
from timm_compound.search.study import DUPLICATE, SAME_MODEL, key_of

REDUCTION_FACTOR = 3  # keep the best third at each rung; rungs at 1, 3, 9, ... epochs
EVAL_LOSS = "eval_loss"  # user_attr: validation loss at the rung's last epoch (breaks top-1 ties)
REACHED = "reached"  # user_attr: the epoch a rung trial's value was measured at


def rung_epochs(epochs: int, eta: int = REDUCTION_FACTOR) -> list[int]:
    """The epoch each rung trains to: 1, eta, eta^2, ... below `epochs`, then `epochs` itself."""
    budgets, budget = [], 1
    while budget < epochs:
        budgets.append(budget)
        budget *= eta
    return budgets + [epochs]


def rung_study_name(study_name: str, rung: int) -> str:
    return study_name if rung == 0 else f"{study_name}:rung-{rung}"


def runs_folder(out: Path | None, study_name: str) -> str:
    """Where the checkpoints live: out/runs/<study>/ (without out, a temporary folder of this process,
    which `search` deletes at the end: its local workers continue from it)."""
    if out is None:
        return tempfile.mkdtemp(prefix="timm-compound-search-")
    return str(out.resolve() / "runs" / _file_name(study_name))


def run_folder(runs: str | Path, key: str) -> Path:
    """The training run folder of a candidate: its key with '/' spelt '_' ('1.2_1.1_1.15')."""
    return Path(runs) / _file_name(key)


def _file_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "_", text)


def promoted(
    trials: list[Any], table: CandidateTable, eta: int = REDUCTION_FACTOR, control: str | None = None
) -> list[str]:
    """The candidates that continue after a finished rung, in table order.

    Only trials that trained count (one per distinct model: a twin took its result, a duplicate
    deferred); the best ceil(n / eta) of those n continue, ranked by top-1, then lower validation
    loss (a small validation set ties often), then fewer GMACs, then table order. `control` (the
    rule's current coefficients) continues as well, whatever its rank, so that the winner can be
    tested against it at the final rung (its twin's model when it shared a twin's training).
    """
    from optuna.trial import TrialState

    order = {key: index for index, key in enumerate(table.keys)}
    trained = {}
    for trial in trials:
        key = key_of(trial)
        if (
            trial.state == TrialState.COMPLETE
            and key in order
            and DUPLICATE not in trial.user_attrs
            and SAME_MODEL not in trial.user_attrs
        ):
            trained.setdefault(key, trial)
    ranked = sorted(
        trained,
        key=lambda k: (-trained[k].value, trained[k].user_attrs.get(EVAL_LOSS, math.inf), table[k].macs, order[k]),
    )
    keep = set(ranked[: math.ceil(len(ranked) / eta)])
    if control is not None:
        keep |= {key for key in (control, _trained_for(control, trials)) if key in trained}
    return [key for key in table.keys if key in keep]


def _trained_for(key: str, trials: list[Any]) -> str | None:
    """The candidate whose training `key`'s trial took (same model), if it took one."""
    numbers = {trial.number: trial for trial in trials}
    for trial in trials:
        if key_of(trial) == key and SAME_MODEL in trial.user_attrs:
            twin = numbers.get(trial.user_attrs[SAME_MODEL])
            return None if twin is None else key_of(twin)
    return None


def forget(runs: str | Path | None, keys: list[str]) -> None:
    """Delete the checkpoints and weights of candidates that stop here (only the continuing ones are
    needed); their metrics, run.json and per-image results stay."""
    from timm_compound.train.checkpoint import thin

    if runs is None:
        return
    for key in keys:
        if run_folder(runs, key).is_dir():
            thin(run_folder(runs, key), weights=False)
