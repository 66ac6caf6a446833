"""`search()`: the paper's grid search for alpha, beta, gamma, as an Optuna study of proxy trainings.

Everything is checked, planned and measured before the study is opened; the study is created with
its settings or, when it exists, resumed only if it was created with the same ones. Then 1 worker
(this process) or N spawned ones run trials until every candidate is done, and the results are
read back from the study, so a search finished by workers on other machines reports the same.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.search import grid as grid_module
from timm_compound.search.candidates import CandidateTable, plan_candidates, rule_of
from timm_compound.search.confidence import assess
from timm_compound.search.grid import Grid, current_key, search_points
from timm_compound.search.objective import Recipe
from timm_compound.search.plots import write_plots
from timm_compound.search.results import SearchResult, collect, write_files
from timm_compound.search.rungs import rung_study_name, runs_folder
from timm_compound.search.storage import DEFAULT_HEARTBEAT, default_url, open_storage, redact, scrub
from timm_compound.search.workers import PRUNERS, SAMPLERS, Job, QuietOptuna, complete, connect, run_many, run_search
from timm_compound.train.config import TrainConfig, build_config

SETTINGS_VERSION = 4  # 2: successive_halving is synchronous (rung studies), Optuna's pruner is "asha"; 3: TrainConfig;
# 4: the rule's current coefficients are a candidate, per-image results in every trial
# TrainConfig settings a search sets itself, per trial or for the whole search
_OWN = {"model", "phi", "data", "epochs", "resolution", "workers"}


def search(
    base: str,
    data: str = "builtin:digits",
    *,
    phi: float = 1.0,
    flops_factor: float = grid_module.DEFAULT_FLOPS_FACTOR,
    tolerance: float = grid_module.DEFAULT_TOLERANCE,
    step: float = grid_module.DEFAULT_STEP,
    bounds: Any = None,
    epochs: int = 5,
    sampler: str = "grid",
    pruner: str = "successive_halving",
    trials: int | None = None,
    match_cost: bool = False,
    resolution: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    out: str | Path | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    say: Callable[[str], None] | None = None,
    loader_workers: int | None = None,
    keep_checkpoints: bool = False,
    **train_kwargs: Any,
) -> SearchResult:
    """Search alpha, beta, gamma for `base` on `data` by proxy trainings; resumable, spread over workers.

    Candidates: every point of the `step` grid from 1 to `bounds` (alpha, beta, gamma upper bounds;
    default (1.4, 1.3, 1.3)) with alpha*beta^2*gamma^2 within `tolerance` of `flops_factor`, plus the
    depth-only, width-only and resolution-only references, and the rule's current coefficients; each
    planned at `phi` and measured after rounding (`match_cost`: each fitted to the nominal cost). Each trial trains its candidate for
    `epochs` (same seed, data, schedule: `train_kwargs` such as batch_size, lr, train_samples,
    val_samples, seed go to `timm_compound.train`; `loader_workers` is its `workers`) at `resolution`
    times the candidate's resolution multiplier (default: the rule's own sizes).

    `sampler`: "grid" (every candidate; Optuna's GridSampler) or "tpe" (`trials` of them, default half).
    `pruner`: "successive_halving" (synchronous: every candidate to epoch 1, the best third of the
    models on from their checkpoints to 3, then 9, ... `epochs`; see `search.rungs`), "asha" (Optuna's
    asynchronous SuccessiveHalvingPruner), "hyperband" or "none". `storage`: an SQLAlchemy URL
    (default an SQLite file in `out`); `study`: its name (default "<base>-coefficients"); `workers`:
    local worker processes. `out` receives trials.csv, search.json, plane.png and gmacs.png (and
    study.db; under successive halving runs/<study>/<candidate>/, the finalists' training runs).
    Returns the rows best first; `.best` and `.coefficients` are the winner, and `.confidence` says
    whether it is above chance and significantly better than the runner-up and the rule's current
    coefficients (paired tests on the validation images at the final rung; under successive halving
    the current coefficients continue to every rung). Candidates stopped at a rung keep only their
    metrics unless `keep_checkpoints`.
    """
    say = say or (lambda line: None)
    grid = Grid.checked(step=step, bounds=bounds, flops_factor=flops_factor, tolerance=tolerance)
    _check_choices(sampler, pruner, workers, epochs, phi)
    if storage is None and out is None:
        raise CompoundError("give out (the output folder, which holds the default SQLite storage) or storage")
    current = _check_base(base)
    train_kwargs = _train_kwargs(train_kwargs, loader_workers)
    _check_data(data, train_kwargs)
    points = search_points(grid, current)
    if sampler == "grid" and trials is not None:
        raise CompoundError("trials sets the TPE sampler's budget; the grid sampler trains every candidate")
    budget = _budget(trials, len(points)) if sampler == "tpe" else None

    table = plan_candidates(base, points, phi=float(phi), resolution=resolution, match_cost=match_cost)
    settings = _settings(base, data, phi, grid, table, epochs, match_cost, sampler, pruner, budget, train_kwargs)
    settings["current"] = list(current)
    out_dir = Path(out) if out is not None else None
    created = _make_out(out_dir)
    url = storage or default_url(out_dir)
    name = study or f"{base}-coefficients"
    runs = runs_folder(out_dir, name) if pruner == "successive_halving" else None
    recipe = Recipe(data, epochs, train_kwargs, runs=runs)
    job = Job(
        url=url,
        study_name=name,
        settings=settings,
        table=table,
        recipe=recipe,
        sampler=sampler,
        pruner=pruner,
        budget=budget,
        seed=train_kwargs.get("seed", 0),
        epochs=epochs,
        heartbeat=heartbeat,
        threads=max(1, (os.cpu_count() or 1) // workers),
        control=current_key(current) if pruner == "successive_halving" else None,
        keep_checkpoints=bool(keep_checkpoints),
    )
    quiet = QuietOptuna()
    try:
        try:
            optuna_study = connect(job)  # created, or checked against its settings, before any worker starts
        except CompoundError:
            if created:  # refused before any trial: leave no trace
                shutil.rmtree(out_dir, ignore_errors=True)
            raise
        say(f"study {name!r} in {redact(url)}: {len(points)} candidates, {len(optuna_study.trials)} trial(s) so far")
        if workers == 1:
            run_search(job, say, optuna_study)
        else:
            run_many(job, workers, say)
        return _result(job, optuna_study, table, out_dir, base, data, phi)
    except CompoundError as error:
        raise CompoundError(scrub(str(error), url)) from None
    finally:
        quiet.restore()
        if out_dir is None and recipe.runs is not None:  # this process's temporary checkpoints
            shutil.rmtree(recipe.runs, ignore_errors=True)


def candidates(
    base: str,
    *,
    phi: float = 1.0,
    flops_factor: float = grid_module.DEFAULT_FLOPS_FACTOR,
    tolerance: float = grid_module.DEFAULT_TOLERANCE,
    step: float = grid_module.DEFAULT_STEP,
    bounds: Any = None,
    match_cost: bool = False,
    resolution: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> CandidateTable:
    """The candidates a search would train, planned and measured (no training, no study)."""
    grid = Grid.checked(step=step, bounds=bounds, flops_factor=flops_factor, tolerance=tolerance)
    _check_choices("grid", "none", 1, 1, phi)
    current = _check_base(base)
    return plan_candidates(
        base,
        search_points(grid, current),
        phi=float(phi),
        resolution=resolution,
        match_cost=match_cost,
        progress=progress,
    )


def _make_out(out: Path | None) -> bool:
    """Create the output folder; True when this call created it (so a refusal can remove it again)."""
    if out is None:
        return False
    if out.exists() and not out.is_dir():
        raise CompoundError(f"out {out} exists and is not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CompoundError(f"cannot create the output folder {out}: {error.strerror or error}") from None
    return created


def check_workers(workers: Any) -> None:
    """Local worker processes: a whole number >= 1 (the dry run checks it too, so it is refused alike)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CompoundError(f"workers must be a whole number >= 1, got {workers!r}")


def _check_choices(sampler: str, pruner: str, workers: Any, epochs: Any, phi: Any) -> None:
    if sampler not in SAMPLERS:
        raise CompoundError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise CompoundError(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    check_workers(workers)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise CompoundError(f"epochs must be a whole number >= 1, got {epochs!r}")
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi) or phi <= 0:
        raise CompoundError(f"phi must be a number > 0 (the search scales up from the base), got {phi!r}")


def _check_base(base: str) -> tuple[float, float, float]:
    """A base a rule covers (not a registered variant, not an unknown name); its rule's current coefficients."""
    if not isinstance(base, str):
        raise CompoundError(f"base must be a model name, got {base!r}")
    try:
        rule, _ = rule_of(base)
    except UnknownModelError as error:
        raise UnknownModelError(f"search scales a base a rule covers: {error}") from None
    return rule.coefficients.alpha, rule.coefficients.beta, rule.coefficients.gamma


def _train_kwargs(given: dict[str, Any], loader_workers: int | None) -> dict[str, Any]:
    """The training settings every trial shares, checked as train() checks them (TrainConfig)."""
    allowed = set(TrainConfig.model_fields) - _OWN
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise CompoundError(
            f"search() got unknown training argument(s) {', '.join(unknown)}; it passes on "
            f"{', '.join(sorted(allowed))} (and loader_workers as train's workers)"
        )
    kwargs = dict(given)
    if loader_workers is not None:
        kwargs["workers"] = loader_workers
    build_config(where="search training settings", **kwargs)
    return kwargs


def _recipe(train_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every training setting a trial's result depends on, defaults filled in (so leaving one out and
    giving its default are the same search); where the trainer runs (device, loader processes) is not one."""
    computed = build_config(where="search training settings", **train_kwargs).computed()
    return {key: value for key, value in sorted(computed.items()) if key not in _OWN}


def _check_data(data: str, train_kwargs: dict[str, Any]) -> None:
    """Open the data once here: a bad dataset is an error before the study exists, not in every trial."""
    from timm_compound.train.data import load_data

    load_data(
        data,
        data_dir=train_kwargs.get("data_dir"),
        download=train_kwargs.get("download", False),
        train_samples=train_kwargs.get("train_samples"),
        val_samples=train_kwargs.get("val_samples"),
        num_classes=train_kwargs.get("num_classes"),
    )


def _budget(trials: Any, count: int) -> int:
    if trials is None:
        return max(1, math.ceil(count / 2))
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise CompoundError(f"trials must be a whole number >= 1, got {trials!r}")
    return min(trials, count)


def _settings(
    base, data, phi, grid: Grid, table: CandidateTable, epochs, match_cost, sampler, pruner, budget, train_kwargs
) -> dict[str, Any]:
    """What makes two searches the same search: a study is resumed only with exactly these."""
    return {
        "version": SETTINGS_VERSION,
        "base": base,
        "rule_file": table.rule_file,
        "data": data,
        "phi": float(phi),
        "grid": grid.to_dict(),
        "candidates": table.keys,
        "match_cost": bool(match_cost),
        "train_resolution": table.train_resolution,
        "epochs": epochs,
        "sampler": sampler,
        "pruner": pruner,
        "budget": budget,
        "train": _recipe(train_kwargs),
    }


def _rung_studies(job: Job, study) -> list[Any]:
    """The search's study, then each later rung's study that has been created so far."""
    import optuna

    studies = [study]
    if len(job.rungs) > 1:
        storage = open_storage(job.url, heartbeat=job.heartbeat)
        for index in range(1, len(job.rungs)):
            try:
                studies.append(optuna.load_study(study_name=rung_study_name(job.study_name, index), storage=storage))
            except KeyError:  # not created yet: the rung before it is still running
                break
    return studies


def _result(job: Job, study, table: CandidateTable, out: Path | None, base: str, data: str, phi: float) -> SearchResult:
    studies = _rung_studies(job, study)
    rows, ledger, spent = collect(studies, table, job.max_attempts, rungs=len(job.rungs))
    last = job.rung(len(studies) - 1, ledger.keys) if len(job.rungs) > 1 else job
    finished = len(studies) == len(job.rungs) and complete(last, ledger)
    result = SearchResult(
        base=base,
        data=data,
        phi=float(phi),
        study_name=job.study_name,
        storage=redact(job.url),
        rows=rows,
        complete=finished,
        epochs_spent=spent,
        trials=sum(len(s.get_trials(deepcopy=False)) for s in studies),
        settings=job.settings,
        table=table,
        confidence=assess(rows, studies, current_key(job.settings.get("current"))),
    )
    if out is not None:
        result.files = {**write_files(result, out), **write_plots(result, out)}
        if job.url == default_url(out):
            result.files["study"] = out / "study.db"
    return result
