"""What a search found: one row per candidate, the best coefficients, and the files in the output folder.

Rows come from the study itself (any worker's trials, on any machine) joined with the candidate
table: coefficients, nominal factor, realised GMACs and params, epochs run, pruned or not, top-1.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from timm_compound.search.candidates import CandidateTable
from timm_compound.search.rungs import REACHED
from timm_compound.search.study import DUPLICATE, SAME_MODEL, SETTINGS_ATTR, Ledger, key_of

CSV_FILE, JSON_FILE = "trials.csv", "search.json"


@dataclass(frozen=True)
class Row:
    """One candidate: its plan's numbers and its trial's outcome (`state`: complete, pruned, running,
    waiting, failed, lost or not started). `top1` is the validation top-1 (percent) after `epochs_run`;
    `shared_with` names the candidate whose training it took (both round to the same model)."""

    key: str
    kind: str
    alpha: float
    beta: float
    gamma: float
    nominal: float
    planned_by: str
    phi: float
    depths: list[int]
    widths: list[int]
    resolution: int
    gmacs_native: float
    ratio_native: float
    train_resolution: int
    gmacs: float
    ratio: float
    params: int
    state: str
    epochs_run: int
    top1: float | None
    trial: int | None
    attempts: int
    shared_with: str | None = None
    rung: int = 0  # successive halving: the highest rung the candidate trained in

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return self.alpha, self.beta, self.gamma

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    """A search's rows (best first), its best row, the epochs it spent and where its files are."""

    base: str
    data: str
    phi: float
    study_name: str
    storage: str  # the storage URL without its password
    rows: list[Row]
    complete: bool  # every candidate done or lost (TPE: the budget spent)
    epochs_spent: int  # training epochs completed by every trial, killed and pruned ones too
    trials: int  # Optuna trials in the study, duplicates and retries included
    settings: dict[str, Any]
    table: CandidateTable = field(repr=False)
    files: dict[str, Path] = field(default_factory=dict)
    confidence: Any = None  # search.confidence.Confidence: the winner against chance, runner-up, current

    @property
    def best(self) -> Row | None:
        """The complete candidate with the highest top-1 (ties: fewer GMACs, then one that trained)."""
        complete = [row for row in self.rows if row.state == "complete" and row.top1 is not None]
        return complete[0] if complete else None

    @property
    def coefficients(self) -> tuple[float, float, float] | None:
        best = self.best
        return None if best is None else best.coefficients

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "base": self.base,
            "data": self.data,
            "phi": self.phi,
            "study": self.study_name,
            "storage": self.storage,
            "complete": self.complete,
            "epochs_spent": self.epochs_spent,
            "trials": self.trials,
            "best": None
            if best is None
            else {
                "alpha": best.alpha,
                "beta": best.beta,
                "gamma": best.gamma,
                "top1": best.top1,
                "key": best.key,
                "trial": best.trial,
            },
            "rule_file": self.table.rule_file,
            "base_resolution": self.table.base_resolution,
            "train_resolution": self.table.train_resolution,
            "base_gmacs": self.table.base_macs / 1e9,
            "base_gmacs_native": self.table.base_macs_native / 1e9,
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
            "settings": self.settings,
            "rows": [row.to_dict() for row in self.rows],
        }


def collect(
    studies: list[Any], table: CandidateTable, max_attempts: int, rungs: int = 1
) -> tuple[list[Row], Ledger, int]:
    """(rows best first, the last study's ledger, epochs spent) from the studies' trials.

    `studies`: the search's study, or under successive halving each rung's study that exists so far
    (`rungs` of them in all). A candidate's row shows its highest rung: "pruned" when it did not
    continue after it, "waiting" when its rung is done but the next has not started.
    """
    ledgers = [
        Ledger.of(study, (study.user_attrs.get(SETTINGS_ATTR) or {}).get("candidates", table.keys), max_attempts)
        for study in studies
    ]
    outcomes = {key: _outcome(key, ledgers, rungs) for key in table.keys}
    by_number = [{trial.number: trial for trial in ledger.trials} for ledger in ledgers]
    rows = []
    for index, key in enumerate(table.keys):
        candidate = table[key]
        rung, ledger, trial, state = outcomes[key]
        shared = None
        source = trial
        if trial is not None and SAME_MODEL in trial.user_attrs:
            twin = by_number[rung].get(trial.user_attrs[SAME_MODEL], trial)
            shared = key_of(twin)
            if shared in outcomes and outcomes[shared][0] > rung:  # the twin went on: so did this model
                rung, _, source, state = outcomes[shared]
            else:
                source = twin
        rows.append(
            (
                index,
                Row(
                    key=key,
                    kind=candidate.point.kind,
                    alpha=candidate.point.alpha,
                    beta=candidate.point.beta,
                    gamma=candidate.point.gamma,
                    nominal=candidate.nominal,
                    planned_by=candidate.planned_by,
                    phi=candidate.phi,
                    depths=list(candidate.plan.depths),
                    widths=list(candidate.plan.widths),
                    resolution=candidate.plan.resolution,
                    gmacs_native=candidate.macs_native / 1e9,
                    ratio_native=candidate.ratio_native,
                    train_resolution=candidate.train_resolution,
                    gmacs=candidate.macs / 1e9,
                    ratio=candidate.ratio,
                    params=candidate.params,
                    state=state,
                    epochs_run=_reached(source) if shared is None else 0,
                    top1=_top1(source),
                    trial=None if trial is None else trial.number,
                    attempts=sum(1 for t in ledger.trials if key_of(t) == key and DUPLICATE not in t.user_attrs),
                    shared_with=shared,
                    rung=rung,
                ),
            )
        )
    spent = sum(
        _epochs(t)
        for ledger in ledgers
        for t in ledger.trials
        if DUPLICATE not in t.user_attrs and SAME_MODEL not in t.user_attrs
    )
    return [row for _, row in sorted(rows, key=_rank)], ledgers[-1], spent


def _outcome(key: str, ledgers: list[Ledger], rungs: int) -> tuple[int, Ledger, Any, str]:
    """(rung, its ledger, the trial, state) of a candidate at the highest rung it entered."""
    rung = max(index for index, ledger in enumerate(ledgers) if index == 0 or key in ledger.keys)
    ledger = ledgers[rung]
    trial = ledger.done.get(key)
    state = _state(key, trial, ledger)
    if trial is not None and rung + 1 < rungs and state == "complete":
        state = "pruned" if rung + 1 < len(ledgers) else "waiting"  # stopped at this rung, or the next is not open
    return rung, ledger, trial, state


def _state(key: str, trial, ledger: Ledger) -> str:
    if trial is not None:
        return trial.state.name.lower()
    if key in ledger.running:
        return "running"
    if key in ledger.waiting:
        return "waiting"
    if key in ledger.lost:
        return "lost"
    return "failed" if key in ledger.failed else "not started"


def _epochs(trial) -> int:
    """Epochs a trial trained: one reported value each (a rung trial reports only the epochs it trained)."""
    return 0 if trial is None else len(trial.intermediate_values)


def _reached(trial) -> int:
    """The epoch a trial's candidate was trained to (a rung trial continues from earlier rungs' epochs)."""
    if trial is None:
        return 0
    steps = list(trial.intermediate_values)
    return int(trial.user_attrs.get(REACHED, max(steps) if steps else 0))


def _top1(trial) -> float | None:
    if trial is None:
        return None
    if trial.value is not None:
        return float(trial.value)
    values = trial.intermediate_values
    return float(values[max(values)]) if values else None


_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "failed": 4, "lost": 5, "not started": 6}


def _rank(item: tuple[int, Row]):
    index, row = item
    top1 = -(row.top1 if row.top1 is not None else -1.0)
    return (
        _ORDER[row.state],
        -row.epochs_run if row.state == "pruned" else 0,
        top1,
        row.gmacs,
        row.shared_with is not None,
        index,
    )


def write_files(result: SearchResult, out: Path) -> dict[str, Path]:
    """trials.csv and search.json in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / CSV_FILE, out / JSON_FILE
    rows = [row.to_dict() for row in result.rows]
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return {"csv": csv_path, "json": json_path}
