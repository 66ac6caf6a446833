"""The Optuna study of a search: created once with its settings, refused when asked for other ones,
and read back as a ledger of which candidate is done, running, waiting or lost.

The study's user_attrs hold the search's settings (base, data, grid, candidates, training recipe,
sampler, pruner): a re-run of the same command resumes the study; a search for another base,
dataset or grid under the same study name is refused, naming what differs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from timm_compound.errors import CompoundError

PARAM = "candidate"  # the one Optuna parameter: a candidate's key, '1.2/1.1/1.15'
SETTINGS_ATTR = "timm_compound.search"
SETTINGS_WAIT = 60.0  # seconds a joining worker waits for the creator to record the settings
DUPLICATE = "duplicate_of"  # user_attr of a trial that did not train: another trial has its candidate
SAME_MODEL = "same_model_as"  # user_attr of a trial that took the result of a candidate rounding to its model


def open_study(storage, name: str, settings: dict[str, Any], *, sampler=None, pruner=None, shown_url: str = ""):
    """Create the study with `settings`, or load it and check that it was created with the same ones."""
    import optuna

    settings = json.loads(json.dumps(settings))  # as the storage will hand it back
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", sampler=sampler, pruner=pruner, load_if_exists=False
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        check_settings(study, settings, name, shown_url)
        return study
    study.set_user_attr(SETTINGS_ATTR, settings)
    return study


def check_settings(study, settings: dict[str, Any], name: str, shown_url: str) -> None:
    """Refuse a study made for another search (or by something else), naming every difference."""
    import optuna

    if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE]:
        raise CompoundError(
            f"study {name!r} in {shown_url} does not maximise one value: it is not a coefficient search"
        )
    deadline = time.monotonic() + SETTINGS_WAIT
    recorded = study.user_attrs.get(SETTINGS_ATTR)
    while recorded is None and study.trials == [] and time.monotonic() < deadline:
        time.sleep(0.5)  # another worker created it a moment ago and is about to record its settings
        recorded = study.user_attrs.get(SETTINGS_ATTR)
    if recorded is None:
        raise CompoundError(
            f"study {name!r} in {shown_url} was not created by `timm-compound search` (no settings "
            "recorded): choose another --study name"
        )
    differences = [
        f"{key}: the study has {recorded.get(key)!r}, this search {settings.get(key)!r}"
        for key in sorted(set(recorded) | set(settings))
        if recorded.get(key) != settings.get(key)
    ]
    if differences:
        shown = "; ".join(_short(line) for line in differences)
        raise CompoundError(
            f"study {name!r} in {shown_url} was created for another search ({shown}); "
            "re-run with the study's settings to resume it, or choose another --study name"
        )


def _short(line: str, limit: int = 300) -> str:
    return line if len(line) <= limit else line[:limit] + "..."


def key_of(trial) -> str | None:
    """The candidate a trial evaluates: its parameter, or for a queued trial the one it was queued with."""
    return trial.params.get(PARAM) or (trial.system_attrs.get("fixed_params") or {}).get(PARAM)


@dataclass
class Ledger:
    """Every trial of a study, by candidate: what is done and what is left.

    `done`: a trial that trained (or took a same-model twin's result) finished, pruned or not;
    `running` / `waiting`: a live trial holds it; `failed`: attempts that died or raised; `lost`:
    failed `max_attempts` times; `orphans`: failed, no live trial, attempts left; `untried`: no trial.
    """

    keys: list[str]
    trials: list[Any]
    max_attempts: int
    done: dict[str, Any] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    failed: dict[str, int] = field(default_factory=dict)
    queued: int = 0  # WAITING trials, with or without a candidate yet (a retry of a trial that died early)

    @classmethod
    def of(cls, study, keys: list[str], max_attempts: int) -> Ledger:
        from optuna.trial import TrialState

        ledger = cls(keys, study.get_trials(deepcopy=False), max_attempts)
        for trial in ledger.trials:
            key = key_of(trial)
            if key is None or DUPLICATE in trial.user_attrs:
                continue
            if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
                ledger.done.setdefault(key, trial)
            elif trial.state == TrialState.RUNNING:
                ledger.running.add(key)
            elif trial.state == TrialState.WAITING:
                ledger.waiting.add(key)
            elif trial.state == TrialState.FAIL:
                ledger.failed[key] = ledger.failed.get(key, 0) + 1
        ledger.queued = sum(trial.state == TrialState.WAITING for trial in ledger.trials)
        return ledger

    @property
    def live(self) -> set[str]:
        return self.running | self.waiting

    @property
    def lost(self) -> list[str]:
        return [
            k
            for k in self.keys
            if k not in self.done and k not in self.live and self.failed.get(k, 0) >= self.max_attempts
        ]

    @property
    def orphans(self) -> list[str]:
        return [
            k
            for k in self.keys
            if k not in self.done and k not in self.live and 0 < self.failed.get(k, 0) < self.max_attempts
        ]

    @property
    def untried(self) -> list[str]:
        tried = set(self.done) | self.live | set(self.failed)
        return [k for k in self.keys if k not in tried]

    @property
    def finished(self) -> bool:
        """Every candidate done or lost, and nothing left waiting."""
        return not self.queued and all(k in self.done for k in self.keys if k not in self.lost)


def duplicate_of(trial, key: str, trials: list[Any]) -> Any:
    """The trial that holds `key` before `trial` does, or None.

    GridSampler hands a running grid point out again once every point has started, and retries and
    re-queued candidates can meet one another; a trial then defers to a finished trial of its
    candidate, or to a live one created before it (lower trial id: a total order every worker sees).
    """
    from optuna.trial import TrialState

    for other in trials:
        if other._trial_id == trial._trial_id or key_of(other) != key or DUPLICATE in other.user_attrs:
            continue
        if other.state in (TrialState.COMPLETE, TrialState.PRUNED):
            return other
        if other.state in (TrialState.RUNNING, TrialState.WAITING) and other._trial_id < trial._trial_id:
            return other
    return None


def trained_twin(keys: list[str], trials: list[Any]) -> Any:
    """A finished trial that trained one of `keys` (candidates rounding to the same model), or None."""
    from optuna.trial import TrialState

    for other in trials:
        if (
            key_of(other) in keys
            and other.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and DUPLICATE not in other.user_attrs
            and SAME_MODEL not in other.user_attrs
        ):
            return other
    return None
