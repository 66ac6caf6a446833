"""`experiment()`: the public entry point (the CLI's `experiment` calls it), and `report()`, which
rewrites an experiment's table, figures and report from what its run folders hold.

Every argument is checked, the data opened and every model planned and measured before anything is
written; then each model is trained with each seed in its run folder (here in order, or by workers
sharing a ledger in a database), and the table, figures, maps, statistics and report are written
from what the run folders hold (so a re-run that skips finished runs writes the same).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.experiment import (
    cam,
    inputs,
    plots,
    references,
    runner,
    strategies,
    table,
    verdicts,
)
from timm_compound.experiment import (
    report as report_page,
)
from timm_compound.experiment import (
    workers as worker_pool,
)
from timm_compound.experiment.ledger import Ledger
from timm_compound.experiment.results import ExperimentResult, Row, Variant
from timm_compound.scaling.plan import base_resolution, resolve_coefficients
from timm_compound.storage.database import open_engine
from timm_compound.storage.urls import redact, scrub
from timm_compound.train.data import DEFAULT_DATA, DataSplits, load_data
from timm_compound.train.progress import Mode
from timm_compound.train.settings import positive_int

DEFAULT_BUDGETS = (2, 4)
LEDGER_FILE = "experiment.db"  # the ledger of `workers` > 1 without a storage: an SQLite file in the folder


def experiment(
    base: str,
    data: str = DEFAULT_DATA,
    *,
    budgets: Any = None,
    strategies: Any = None,
    references: Any = (),
    epochs: int = 10,
    out: str | Path | None = None,
    resolution: int | None = None,
    coefficients: Any = None,
    dwr_alpha: float | None = None,
    tolerance: float = 0.05,
    cost: str = "gmacs",
    latency: Any = None,
    include_base: bool | None = None,
    cam_images: int = 4,
    cam_stage: int | None = None,
    seeds: int = 1,
    versus: str | None = None,
    storage: str | None = None,
    workers: int = 1,
    heartbeat: int = worker_pool.DEFAULT_HEARTBEAT,
    keep_checkpoints: bool = False,
    loader_workers: int | None = None,
    progress: Mode | bool = "auto",
    console: Console | None = None,
    **train_arguments: Any,
) -> ExperimentResult:
    """Scale `base` by depth only, width only, resolution only and compound to each budget (a multiple
    of the base's GMACs, default (2, 4), matched in real cost within `tolerance` after rounding), train
    every model and the `references` (timm names; `NAME@PIXELS` sets one's input size) on `data` with
    the same schedule, `seeds` times each (seeds seed, seed+1, ...: the training setting `seed` is the
    first; every model gets the same seeds, so comparisons are paired), and write the table, figures,
    class activation maps, statistics and report.html to `out`.

    Every model is also timed on this machine as trained (``latency``: None for cpu, batch 1, one
    thread and a 3 s cap per timing; a dict of ``measure``'s timing arguments; False for none): the
    table gains latency and throughput, the report an accuracy-against-latency figure.
    ``cost="latency"`` makes each budget a multiple of the base's measured latency instead of its
    GMACs, the variants matched in measured milliseconds within `tolerance`.

    `resolution` is the base's input size (default: its rule's); resolution scaling grows from it.
    `coefficients` (alpha, beta, gamma) replace the rule's for the compound strategy; `dwr_alpha` is the
    share of the FLOPs growth the 'dWr' strategy gives width (default 0.8, or the rule's). The base itself
    is trained as the 1x point unless `include_base=False`. `versus="resnet34"` trains only the
    compound-scaled base at that model's real cost beside it (no base unless `include_base=True`).
    `train_arguments` go to every run (batch_size, lr, opt, sched, seed, train_samples, ...; see
    `timm_compound.train`). Re-running with the same `out` and settings skips finished runs and
    resumes an interrupted one; a folder holding another experiment is refused and nothing in it is
    changed. `storage` (an SQLAlchemy URL: SQLite file or PostgreSQL) holds a ledger of the runs that
    any number of processes running the same call share (each takes unclaimed runs; a silent worker's
    run is taken over after 2 x `heartbeat` seconds); `workers` trains in this process and
    `workers - 1` spawned ones (their ledger: OUT/experiment.db unless `storage`). A finished run
    keeps its final weights and metrics, not its optimizer state, unless `keep_checkpoints`.
    `loader_workers` is each run's data loader processes (train's `workers`).
    """
    started = time.perf_counter()
    console = console or Console()
    quiet = progress is False or progress == "quiet"
    say = runner.printer(console, quiet)
    settings, splits, costing, compound = _check(base, data, locals())
    out = Path(out)
    url = storage if storage is not None else (_default_ledger(out) if workers > 1 else None)
    resuming = runner.prepare(out, settings, shared=url is not None)
    ledger = None
    if storage is not None:  # reachable, a database, and not holding another experiment: checked before planning
        ledger = Ledger(open_engine(storage), storage)
        ledger.check(settings)
    origin, variants = _plan(base, splits, costing, compound, settings, cost)
    seed_list = runner.seed_list(settings)
    jobs = runner.jobs_of(out, variants, seed_list)
    if url is not None:
        if ledger is None:  # the default ledger lives in the folder
            out.mkdir(parents=True, exist_ok=True)
            ledger = Ledger(open_engine(url), url)
        ledger.register(settings, jobs)  # refuses a storage holding another experiment, before anything is written
    runner.write_record(out, settings, variants, resuming=resuming)
    train_images = len(splits.train)
    for line in _plan_lines(origin, variants, costing, train_images, epochs, seed_list, cost):
        say(line)
    if len(seed_list) == 1:
        say(ONE_SEED_WARNING)
    recipe = runner.Recipe(data, epochs, settings["train"], splits.num_classes, keep_checkpoints=keep_checkpoints)
    if ledger is None:
        runs = runner.run_all(jobs, recipe, train_images=train_images, progress=progress, console=console)
    else:
        say(f"ledger: {redact(url)}: {len(jobs)} runs shared by every worker of this experiment")
        setup = worker_pool.Setup(
            url, jobs, recipe, train_images, heartbeat=heartbeat, threads=max(1, (os.cpu_count() or 1) // workers)
        )
        try:
            if workers == 1:
                worker_pool.work(setup, say, console)
            else:
                worker_pool.run_many(setup, workers, say, console)
        except CompoundError as error:
            raise CompoundError(scrub(str(error), url)) from None
        counts = ledger.counts(epochs)
        say(f"ledger: {counts.done} run(s) done, {counts.failed} failed, {counts.trained_twice} trained twice")
        runs = [runner.read_run(job, epochs) for job in jobs]
    return _publish(out, settings, origin, variants, jobs, runs, splits, started=started, say=say)


ONE_SEED_WARNING = (
    "warning: one seed per model, so no error bars and no seed-to-seed spread: the statistics cover "
    "only the choice of validation images (--seeds 3 gives error bars)"
)


def report(out: str | Path, *, progress: Mode | bool = "auto", console: Console | None = None) -> ExperimentResult:
    """Rewrite OUT's table, figures, statistics and report.html from the runs that have finished so far
    (while workers still train the rest, or after an interruption); nothing is trained."""
    started = time.perf_counter()
    console = console or Console()
    say = runner.printer(console, progress is False or progress == "quiet")
    out = Path(out)
    record = runner.read_record(out)
    settings = record["settings"]
    cost = settings.get("cost", "gmacs")
    timing = inputs.check_latency(settings.get("latency"), cost)  # a GMACs experiment's: the default timing
    splits, costing, compound = _open(
        settings["base"], settings["data"], settings["train"], settings["resolution"], settings["coefficients"], timing
    )
    origin, variants = _plan(settings["base"], splits, costing, compound, settings, cost)
    planned = [(model.get("name"), model.get("macs")) for model in record.get("models", [])]
    if planned != [(variant.name, variant.cost.macs) for variant in variants]:
        raise CompoundError(
            f"{out / runner.EXPERIMENT_JSON}: its models are not what its settings plan today (a rule "
            "changed since it was written): the report would describe other models"
        )
    jobs = runner.jobs_of(out, variants, runner.seed_list(settings))
    runs = [runner.read_run(job, settings["epochs"]) for job in jobs]
    done = sum(found.status == "completed" for found in runs)
    say(f"experiment report: {done} of {len(runs)} runs finished in {out}")
    return _publish(out, settings, origin, variants, jobs, runs, splits, started=started, say=say)


def _default_ledger(out: Path) -> str:
    return f"sqlite:///{(Path(out).resolve() / LEDGER_FILE).as_posix()}"


def _check(base: str, data: str, given: dict[str, Any]):
    named = references.check_names(given["references"])
    versus = given["versus"]
    if versus is not None:
        if given["budgets"] is not None or given["strategies"] is not None:
            raise CompoundError(
                "versus sets the budget (the other model's cost) and the strategy (compound): "
                "give it without budgets and strategies"
            )
        if not isinstance(versus, str) or not versus.strip():
            raise CompoundError(f"versus must be a timm model name, got {versus!r}")
        named = references.check_names((versus, *named))
    budgets = inputs.check_budgets(DEFAULT_BUDGETS if given["budgets"] is None else given["budgets"])
    chosen = inputs.check_strategies(inputs.STRATEGIES if given["strategies"] is None else given["strategies"])
    epochs = positive_int("epochs", given["epochs"])
    tolerance = inputs.check_tolerance(given["tolerance"])
    cost = inputs.check_cost(given["cost"])
    timing = inputs.check_latency(given["latency"], cost)
    seeds = inputs.check_seeds(given["seeds"])
    positive_int("cam_images", given["cam_images"], minimum=0)
    stage = given["cam_stage"]
    if stage is not None and (isinstance(stage, bool) or not isinstance(stage, int) or stage == 0):
        raise CompoundError(
            f"cam_stage must be a stage number 1..N, or -1 for the last (None: the last stage at "
            f"least 4x4), got {stage!r}"
        )
    if given["out"] is None:
        raise CompoundError("give out: the experiment folder (run folders, table, figures and report.html go there)")
    positive_int("workers", given["workers"])
    positive_int("heartbeat", given["heartbeat"])
    if given["storage"] is not None and (not isinstance(given["storage"], str) or "://" not in given["storage"]):
        raise CompoundError(
            f"storage must be a database URL such as sqlite:///runs/exp.db or "
            f"postgresql://user@host/db, got {redact(str(given['storage']))!r}"
        )
    given_arguments = dict(given["train_arguments"])
    if given["loader_workers"] is not None:
        given_arguments["workers"] = given["loader_workers"]
    arguments = inputs.check_train_arguments(given_arguments)
    rule = strategies.check_base(base)
    splits, costing, compound = _open(base, data, arguments, given["resolution"], given["coefficients"], timing)
    dwr = {}
    if "dWr" in chosen:
        dwr = {"dwr_alpha": strategies.strategy_of("dWr", rule, given["dwr_alpha"]).share}
    elif given["dwr_alpha"] is not None:
        raise CompoundError("dwr_alpha is the dWr strategy's share of growth to width: add dWr to the strategies")
    include_base = given["include_base"]
    if versus is not None:
        origin = strategies.base_variant(costing)
        other = references.reference_variant(
            named[0],
            base=base,
            experiment_resolution=costing.resolution,
            native_base=base_resolution(costing.rule, base),
            num_classes=splits.num_classes,
            base_macs=origin.cost.macs,
            norm=costing.norm,
        )
        budgets, chosen = (references.versus_budget(base, other),), ("compound",)
        include_base = False if include_base is None else include_base
    settings = inputs.fingerprint(
        {
            "base": base,
            "data": data,
            "budgets": list(budgets),
            "strategies": list(chosen),
            "references": list(named),
            "epochs": epochs,
            "resolution": costing.resolution,
            "coefficients": None if compound is None else [compound.alpha, compound.beta, compound.gamma],
            "tolerance": tolerance,
            "include_base": True if include_base is None else bool(include_base),
            "cam_images": given["cam_images"],
            "cam_stage": given["cam_stage"],
            "train": arguments,
            "seeds": seeds,
            "versus": versus,
            **dwr,
            # a GMACs experiment's timings only report: where they run is not a setting (older folders resume)
            **({"cost": cost, "latency": inputs.timing_record(timing)} if cost == "latency" else {}),
        }
    )
    return settings, splits, costing, compound


def _open(base: str, data: str, arguments: dict[str, Any], resolution: int | None, coefficients: Any, timing=None):
    """(the data's splits, the costing (and timing) of plans from the base resolution, the compound
    coefficients or None)."""
    rule = strategies.check_base(base)
    splits = load_data(
        data,
        data_dir=arguments.get("data_dir"),
        download=bool(arguments.get("download")),
        train_samples=arguments.get("train_samples"),
        val_samples=arguments.get("val_samples"),
    )
    costing = strategies.Costing(base, splits.num_classes, resolution, timing, norm=arguments.get("norm"))
    compound = None if coefficients is None else resolve_coefficients(rule, coefficients, f"{base}'s rule")
    return splits, costing, compound


def _plan(
    base: str, splits: DataSplits, costing: strategies.Costing, compound, settings: dict[str, Any], cost: str = "gmacs"
) -> tuple[Variant, list[Variant]]:
    """(the base, every model to train in order: the base, each budget's strategies, the references),
    each timed when the experiment times."""
    origin = strategies.base_variant(costing)
    if costing.timing is not None:
        origin = replace(origin, latency=costing.time(origin.plan))
    match = strategies.equal_latency if cost == "latency" else strategies.equal_cost
    native = base_resolution(costing.rule, base)
    others = [
        references.reference_variant(  # first: a bad reference fails before the longer search below
            reference,
            base=base,
            experiment_resolution=costing.resolution,
            native_base=native,
            num_classes=splits.num_classes,
            base_macs=origin.cost.macs,
            norm=costing.norm,
        )
        for reference in settings["references"]
    ]
    planned = [origin] if settings["include_base"] else []
    for budget in settings["budgets"]:
        for strategy in settings["strategies"]:
            planned.append(
                match(
                    costing,
                    strategy,
                    budget,
                    origin,
                    tolerance=settings["tolerance"],
                    compound=compound,
                    dwr_alpha=settings.get("dwr_alpha"),
                )
            )
    names = [variant.name for variant in planned + others]
    clash = sorted({name for name in names if names.count(name) > 1})
    if clash:
        raise CompoundError(f"two models would share the run folder {', '.join(clash)}: give each reference once")
    if costing.timing is not None:  # each model timed as trained (the base, and matched variants, already are)
        planned = [
            variant if variant.latency is not None else replace(variant, latency=costing.time(variant.plan))
            for variant in planned
        ]
        others = [references.timed(reference, costing.timing, splits.num_classes) for reference in others]
    return origin, planned + others


def _plan_lines(
    origin: Variant,
    variants: list[Variant],
    costing: strategies.Costing,
    train_images: int,
    epochs: int,
    seeds: list[int],
    cost: str = "gmacs",
) -> list[str]:
    lines = [
        f"experiment: {len(variants)} models of {costing.base} from {costing.resolution} px "
        f"(the base: {origin.cost.gmacs:.4g} GMACs as trained)"
        + ("" if len(seeds) == 1 else f", each trained with seeds {_seeds_text(seeds)}")
    ]
    if costing.timing is not None:
        lines.append(
            f"timed on {costing.timing.where()} (median ms, 95% interval)"
            + ("; budgets are multiples of the base's latency" if cost == "latency" else "")
        )
    for variant in variants:
        asked = "" if variant.budget in (None, 1.0) else f" (budget {variant.budget:g}x)"
        depths = "" if variant.depths is None else f", depths {variant.depths}"
        timed = (
            ""
            if variant.latency is None
            else (
                f", {variant.latency.median_ms:.4g} ms ({variant.latency.ci_ms[0]:.4g}-{variant.latency.ci_ms[1]:.4g})"
                + ("" if origin.latency is None else f" = {variant.latency.median_ms / origin.latency.median_ms:.3f}x")
            )
        )
        lines.append(
            f"  {variant.name:<20} {variant.cost.gmacs:10.4g} GMACs = {variant.ratio:6.3f}x the base{asked}, "
            f"{variant.cost.params / 1e6:.2f} M params, {variant.resolution} px{depths}{timed}"
        )
    compute = len(seeds) * sum(train_images * epochs * variant.cost.macs for variant in variants)
    lines.append("planned " + _compute_line(compute, len(variants), train_images, epochs, len(seeds)))
    return lines


def _seeds_text(seeds: list[int]) -> str:
    return ", ".join(str(seed) for seed in seeds)


def _compute_line(compute: float, models: int, train_images: int, epochs: int, seeds: int = 1) -> str:
    runs = f"{models} models" if seeds == 1 else f"{models} models x {seeds} seeds"
    return (
        f"total compute: {compute / 1e12:.4g} TMACs = sum over {runs} of {train_images} training images "
        f"x {epochs} epochs x GMACs (forward passes; a training step costs about 3x that)"
    )


def _best(rows: list[Row], budgets: tuple[float, ...]) -> dict[float, str]:
    best = {}
    for budget in budgets:
        column = [row for row in rows if row.variant.budget == budget and row.top1 is not None]
        if column:
            top = max(row.top1 for row in column)
            best[budget] = " = ".join(row.variant.strategy for row in column if math.isclose(row.top1, top))
    return best


def _cams(rows: list[Row], splits: DataSplits, out: Path, count: int, stage: int | None, num_classes: int):
    if count == 0:
        return None, "Class activation maps were not asked for (cam_images=0)."
    images, labels = _fixed_images(splits, count)
    names = _class_names(splits, num_classes)
    grid_rows, remarks = [], []
    for row in rows:
        if row.runs[0].status != "completed" or not row.history:
            continue  # the maps show each model's first seed
        model = runner.load_final(row.variant, row.run_dir, num_classes)
        maps = cam.compute(
            model, images, resolution=row.variant.resolution, targets=labels, crop_pct=splits.crop_pct, stage=stage
        )
        chosen = maps.stage
        grid_rows.append(
            cam.GridRow(
                f"{row.variant.label}\nstage {chosen.number}/{chosen.count}, top-1 {row.runs[0].top1:.1f}%", maps
            )
        )
        if chosen.note:
            remarks.append(f"{row.variant.label}: {chosen.note}.")
        flat = [reason for reason in maps.flat or [] if reason]
        if flat:
            remarks.append(f"{row.variant.label}: {len(flat)} of {len(images)} maps are flat (constant): {flat[0]}.")
    if not grid_rows:
        return None, "No model finished training, so there are no maps."
    where = (
        "the last stage at least 4x4 at each model's input size"
        if stage is None
        else f"stage {stage}"
        if stage > 0
        else "the last stage"
        if stage == -1
        else f"stage {stage} from the end"
    )
    path = cam.grid(
        grid_rows,
        out / "cam.png",
        column_titles=[f"class {names[label]}" for label in labels],
        class_names=names,
        title=f"Grad-CAM on {where} (rule stage_modules) for the true class",
    )
    seeds = "" if len(rows[0].runs) == 1 else " (its first seed's run)"
    note = (
        f"Grad-CAM (pytorch-grad-cam) on {where} of each model{seeds} (its row says which, stages numbered from 1), "
        f"for the true class of {len(images)} fixed validation images (the first of each class in split order); "
        "the title over each map is the model's prediction (green: right, red: wrong). "
        + (" ".join(remarks) if remarks else "No map is flat.")
    )
    return path, note


def _publish(
    out: Path,
    settings: dict[str, Any],
    origin: Variant,
    variants: list[Variant],
    jobs: list[runner.Job],
    runs: list,
    splits: DataSplits,
    *,
    started: float,
    say,
) -> ExperimentResult:
    """Statistics, table, figures, maps, results.json and report.html from the runs as their folders hold them.

    Everything is written into a private folder first and renamed into OUT file by file, so workers
    finishing together, or `experiment report` during a run, never leave half a file."""
    rows = runner.rows_of(variants, jobs, runs)
    verdicts.set_spreads(rows)
    comparisons = verdicts.compare(rows)
    verdict = verdicts.verdicts(rows, comparisons)
    chance = verdicts.chance(rows)
    if chance is None:
        chance = 100.0 / splits.num_classes
    budgets = tuple(settings["budgets"])
    best = _best(rows, budgets)
    seeds = runner.seed_list(settings)
    base, data = settings["base"], settings["data"]
    title = (
        f"{base} on {data}: compound-scaled {base} against {settings['versus']}"
        if settings.get("versus")
        else f"{base} on {data}: depth, width, resolution and compound scaling"
    )
    train_images, epochs = len(splits.train), settings["epochs"]
    staging = out / f".publishing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        cost = settings.get("cost", "gmacs")
        files = {
            **table.write(rows, staging, comparisons, verdict),
            **plots.write(rows, staging, base, cost=cost, chance=chance),
        }
        cam_path, cam_note = _cams(
            rows, splits, staging, settings["cam_images"], settings["cam_stage"], splits.num_classes
        )
        if cam_path is not None:
            files["cam"] = cam_path
        compute = sum(train_images * epochs * job.variant.cost.macs for job in jobs)
        disk = runner.disk_used(out / runner.RUNS)
        finished = sum(found.status == "completed" for found in runs)
        summary = runner.summary_lines(rows, budgets, best, "latency" if cost == "latency" else "GMACs") + [
            *(f"verdict at {line}" for line in verdict.values()),
            _seeds_line(seeds),
            _compute_line(compute, len(variants), train_images, epochs, len(seeds)),
            f"{len(variants)} models x {len(seeds)} seed(s) = {len(runs)} runs ({finished} finished), "
            f"{sum(row.train_seconds for row in rows) / 60:.1f} minutes of training in all "
            f"(this session: {(time.perf_counter() - started) / 60:.1f} minutes)",
            f"disk: {runner.size_text(disk)} in {out / runner.RUNS} (each finished run keeps its final weights, metrics "
            "and per-image results; its optimizer state is deleted unless --keep-checkpoints)",
        ]
        unfitted = plots.unfitted(rows)
        files["report"] = report_page.write(
            staging / "report.html",
            title=title,
            summary=summary,
            settings=inputs.every_setting(settings),
            rows=rows,
            figures=files,
            cam=cam_path,
            cam_note=cam_note,
            verdicts=list(verdict.values()),
            comparisons=comparisons,
            statistics_note=_statistics_note(seeds, comparisons),
            gmacs_caption=_gmacs_caption(seeds, chance, unfitted),
            curves_caption=_curves_caption(seeds),
        )
        files["results"] = staging / "results.json"
        files["results"].write_text(
            json.dumps(
                {
                    "settings": settings,
                    "seeds": seeds,
                    "best": {f"{b:g}": s for b, s in best.items()},
                    "verdict": {f"{b:g}": line for b, line in verdict.items()},
                    "comparisons": [comparison.to_dict() for comparison in comparisons],
                    "chance_top1": chance,
                    "compute_macs": compute,
                    "disk_bytes": disk,
                    "rows": [row.to_dict() for row in rows],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        for key, path in list(files.items()):
            os.replace(path, out / path.name)
            files[key] = out / path.name
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for line in ["", *summary, f"report: {files['report']}"]:
        say(line)
    return ExperimentResult(
        out,
        settings,
        origin.cost.macs,
        rows,
        best,
        compute,
        time.perf_counter() - started,
        files,
        comparisons=comparisons,
        verdicts=verdict,
        seeds=seeds,
        disk_bytes=disk,
        chance=chance,
    )


def _seeds_line(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}: one seed per model ({ONE_SEED_WARNING.removeprefix('warning: one seed per model, ')})"
    return (
        f"seeds {_seeds_text(seeds)}: every model trained with each (so the comparisons are paired); top-1 is "
        "their mean with a 95% t-interval"
    )


def _statistics_note(seeds: list[int], comparisons: list) -> str:
    test = (
        "McNemar's exact test on the images the two models disagree on"
        if len(seeds) == 1
        else "a paired bootstrap over the validation images (resampled together for both models and every seed), "
        "the p-value the share of centred resampled differences at least as large as the observed one"
    )
    return (
        f"Each comparison is a minus b in top-1 points on the same validation images and seeds; the interval is "
        f"a 95% paired bootstrap over the images, the test {test}. p-values are Holm-corrected over the "
        f"{sum(c.result is not None for c in comparisons)} comparisons together; significant means corrected "
        "p < 0.05. The interval covers the choice of validation images given these trainings; the seed-to-seed "
        "spread says how much a training's seed moves each model."
    )


def _gmacs_caption(seeds: list[int], chance: float, unfitted: list[str]) -> str:
    bars = (
        "error bars: the seeds' standard deviation; each strategy's curve is a fitted saturating curve "
        "(top1 = A - B (x/x0)^-c) through every seed's point, its band a bootstrap over seeds"
        if len(seeds) > 1
        else "one seed, so no error bars; each strategy's curve is a fitted saturating curve "
        "(top1 = A - B (x/x0)^-c) through its points, without a band"
    )
    lines = (
        f" {', '.join(unfitted)}: drawn as lines through the means (no saturating curve fits them)." if unfitted else ""
    )
    return (
        f"Mean top-1 over the seeds against the real GMACs of each model as trained (log scale); {bars}. Dotted "
        f"lines mark the budgets; every strategy starts at the base; references are labelled stars (one far off "
        f"the strategies' range is drawn at the edge with its value); the dashed line is chance level, "
        f"{chance:.1f}% (always the most frequent validation class).{lines}"
    )


def _curves_caption(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return "Training loss and validation top-1 of every model after each epoch."
    return (
        "Training loss and validation top-1 of every model after each epoch: the mean over its seeds, the band "
        "from the lowest to the highest seed."
    )


def _fixed_images(splits: DataSplits, count: int) -> tuple[list, list[int]]:
    """The first validation image of each class, in split order, until `count` classes (fewer if the split has fewer)."""
    images, labels = [], []
    for index in splits.val.indices:
        image, label = splits.val.dataset[index]
        if int(label) not in labels:
            images.append(image)
            labels.append(int(label))
            if len(images) == count:
                break
    return images, labels


def _class_names(splits: DataSplits, num_classes: int) -> list[str]:
    dataset = splits.val.dataset
    names = getattr(dataset, "classes", None)
    if names is None:
        mapping = getattr(getattr(dataset, "reader", None), "class_to_idx", None)
        if mapping:
            names = [name for name, _ in sorted(mapping.items(), key=lambda item: item[1])]
    names = [str(name) for name in names] if names is not None and len(names) == num_classes else None
    return names or [str(k) for k in range(num_classes)]


__all__ = ["experiment"]
