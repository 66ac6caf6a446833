"""`experiment()`: the public entry point (the CLI's `experiment` calls it).

Every argument is checked, the data opened and every model planned and measured before anything is
written; then each model is trained in its run folder, and the table, figures, maps and report are
written from what the run folders hold (so a re-run that skips finished runs writes the same).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from timm_compound.errors import CompoundError
from timm_compound.experiment import (
    cam,
    inputs,
    plots,
    references,
    report,
    runner,
    strategies,
    table,
)
from timm_compound.experiment.results import ExperimentResult, Row, Variant
from timm_compound.scaling.plan import base_resolution, resolve_coefficients
from timm_compound.train.data import DEFAULT_DATA, DataSplits, load_data
from timm_compound.train.progress import Mode
from timm_compound.train.settings import positive_int


def experiment(
    base: str,
    data: str = DEFAULT_DATA,
    *,
    budgets: Any = (2, 4),
    strategies: Any = inputs.STRATEGIES,
    references: Any = (),
    epochs: int = 10,
    out: str | Path | None = None,
    resolution: int | None = None,
    coefficients: Any = None,
    tolerance: float = 0.05,
    include_base: bool = True,
    cam_images: int = 4,
    cam_stage: int | None = None,
    progress: Mode | bool = "auto",
    console: Console | None = None,
    **train_arguments: Any,
) -> ExperimentResult:
    """Scale `base` by depth only, width only, resolution only and compound to each budget (a multiple
    of the base's GMACs, matched in real cost within `tolerance` after rounding), train every model
    and the `references` (timm names; `NAME@PIXELS` sets one's input size) on `data` with the same
    schedule and seed, and write the table, figures, class activation maps and report.html to `out`.

    `resolution` is the base's input size (default: its rule's); resolution scaling grows from it.
    `coefficients` (alpha, beta, gamma) replace the rule's for the compound strategy. The base itself
    is trained as the 1x point unless `include_base=False`. `train_arguments` go to every run
    (batch_size, lr, opt, sched, seed, train_samples, ...; see `timm_compound.train`).
    Re-running with the same `out` and settings skips finished runs and resumes an interrupted one;
    a folder holding another experiment is refused and nothing in it is changed.
    """
    started = time.perf_counter()
    console = console or Console()
    settings, splits, costing, compound = _check(base, data, locals())
    out = Path(out)
    resuming = runner.prepare(out, settings)
    origin, variants = _plan(base, splits, costing, compound, settings)
    runner.write_record(out, settings, variants, resuming=resuming)
    quiet = progress is False or progress == "quiet"
    say = (lambda text: None) if quiet else (lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True))
    train_images = len(splits.train)
    for line in _plan_lines(origin, variants, costing, train_images, epochs):
        say(line)

    rows = runner.run_all(out, variants, data=data, epochs=epochs, train_arguments=settings["train"],
                          num_classes=splits.num_classes, train_images=train_images, progress=progress, console=console)
    budgets = tuple(settings["budgets"])
    best = _best(rows, budgets)
    title = f"{base} on {data}: depth, width, resolution and compound scaling"
    files = {**table.write(rows, out), **plots.write(rows, out, base)}
    cam_path, cam_note = _cams(rows, splits, out, cam_images, cam_stage, splits.num_classes)
    if cam_path is not None:
        files["cam"] = cam_path
    compute = sum(train_images * epochs * row.variant.cost.macs for row in rows)
    summary = runner.summary_lines(rows, budgets, best) + [
        _compute_line(compute, len(rows), train_images, epochs),
        f"{len(rows)} models, {sum(row.train_seconds for row in rows) / 60:.1f} minutes of training in all "
        f"(this session: {(time.perf_counter() - started) / 60:.1f} minutes)",
    ]
    files["report"] = report.write(out / "report.html", title=title, summary=summary, settings=settings, rows=rows,
                                   figures=files, cam=cam_path, cam_note=cam_note)
    result = ExperimentResult(out, settings, origin.cost.macs, rows, best, compute, time.perf_counter() - started, files)
    files["results"] = out / "results.json"
    files["results"].write_text(json.dumps({"settings": settings, "best": {f"{b:g}": s for b, s in best.items()},
                                            "compute_macs": compute, "rows": [row.to_dict() for row in rows]},
                                           indent=2) + "\n", encoding="utf-8")
    for line in ["", *summary, f"report: {files['report']}"]:
        say(line)
    return result


def _check(base: str, data: str, given: dict[str, Any]):
    budgets = inputs.check_budgets(given["budgets"])
    chosen = inputs.check_strategies(given["strategies"])
    named = references.check_names(given["references"])
    epochs = positive_int("epochs", given["epochs"])
    tolerance = inputs.check_tolerance(given["tolerance"])
    positive_int("cam_images", given["cam_images"], minimum=0)
    stage = given["cam_stage"]
    if stage is not None and (isinstance(stage, bool) or not isinstance(stage, int) or stage == 0):
        raise CompoundError(f"cam_stage must be a stage number 1..N, or -1 for the last (None: the last stage at "
                            f"least 4x4), got {stage!r}")
    if given["out"] is None:
        raise CompoundError("give out: the experiment folder (run folders, table, figures and report.html go there)")
    arguments = inputs.check_train_arguments(given["train_arguments"])
    rule = strategies.check_base(base)
    splits = load_data(data, data_dir=arguments.get("data_dir"), download=bool(arguments.get("download")),
                       train_samples=arguments.get("train_samples"), val_samples=arguments.get("val_samples"))
    costing = strategies.Costing(base, splits.num_classes, given["resolution"])
    compound = None
    if given["coefficients"] is not None:
        compound = resolve_coefficients(rule, given["coefficients"], f"{base}'s rule")
    settings = inputs.fingerprint({
        "base": base, "data": data, "budgets": list(budgets), "strategies": list(chosen), "references": list(named),
        "epochs": epochs, "resolution": costing.resolution, "coefficients": None if compound is None else
        [compound.alpha, compound.beta, compound.gamma], "tolerance": tolerance, "include_base": bool(given["include_base"]),
        "cam_images": given["cam_images"], "cam_stage": given["cam_stage"], "train": arguments,
    })
    return settings, splits, costing, compound


def _plan(base: str, splits: DataSplits, costing: strategies.Costing, compound,
          settings: dict[str, Any]) -> tuple[Variant, list[Variant]]:
    """(the base, every model to train in order: the base, each budget's strategies, the references)."""
    origin = strategies.base_variant(costing)
    native = base_resolution(costing.rule, base)
    others = [references.reference_variant(   # first: a bad reference fails before the longer search below
        reference, base=base, experiment_resolution=costing.resolution, native_base=native,
        num_classes=splits.num_classes, base_macs=origin.cost.macs) for reference in settings["references"]]
    planned = [origin] if settings["include_base"] else []
    for budget in settings["budgets"]:
        for strategy in settings["strategies"]:
            planned.append(strategies.equal_cost(costing, strategy, budget, origin, tolerance=settings["tolerance"],
                                                 compound=compound))
    planned += others
    names = [variant.name for variant in planned]
    clash = sorted({name for name in names if names.count(name) > 1})
    if clash:
        raise CompoundError(f"two models would share the run folder {', '.join(clash)}: give each reference once")
    return origin, planned


def _plan_lines(origin: Variant, variants: list[Variant], costing: strategies.Costing, train_images: int,
                epochs: int) -> list[str]:
    lines = [f"experiment: {len(variants)} models of {costing.base} from {costing.resolution} px "
             f"(the base: {origin.cost.gmacs:.4g} GMACs as trained)"]
    for variant in variants:
        asked = "" if variant.budget in (None, 1.0) else f" (budget {variant.budget:g}x)"
        depths = "" if variant.depths is None else f", depths {variant.depths}"
        lines.append(f"  {variant.name:<20} {variant.cost.gmacs:10.4g} GMACs = {variant.ratio:6.3f}x the base{asked}, "
                     f"{variant.cost.params / 1e6:.2f} M params, {variant.resolution} px{depths}")
    compute = sum(train_images * epochs * variant.cost.macs for variant in variants)
    lines.append("planned " + _compute_line(compute, len(variants), train_images, epochs))
    return lines


def _compute_line(compute: float, models: int, train_images: int, epochs: int) -> str:
    return (f"total compute: {compute / 1e12:.4g} TMACs = sum over {models} models of {train_images} training images "
            f"x {epochs} epochs x GMACs (forward passes; a training step costs about 3x that)")


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
        if row.status != "completed" or not row.history:
            continue
        model = runner.load_final(row.variant, row.run_dir, num_classes)
        maps = cam.compute(model, images, resolution=row.variant.resolution, targets=labels, crop_pct=splits.crop_pct,
                           stage=stage)
        chosen = maps.stage
        grid_rows.append(cam.GridRow(f"{row.variant.label}\nstage {chosen.number}/{chosen.count}, top-1 {row.top1:.1f}%",
                                     maps))
        if chosen.note:
            remarks.append(f"{row.variant.label}: {chosen.note}.")
        flat = [reason for reason in maps.flat or [] if reason]
        if flat:
            remarks.append(f"{row.variant.label}: {len(flat)} of {len(images)} maps are flat (constant): {flat[0]}.")
    if not grid_rows:
        return None, "No model finished training, so there are no maps."
    where = ("the last stage at least 4x4 at each model's input size" if stage is None
             else f"stage {stage}" if stage > 0 else "the last stage" if stage == -1 else f"stage {stage} from the end")
    path = cam.grid(grid_rows, out / "cam.png", column_titles=[f"class {names[label]}" for label in labels],
                    class_names=names, title=f"Grad-CAM on {where} (rule stage_modules) for the true class")
    note = (f"Grad-CAM (pytorch-grad-cam) on {where} of each model (its row says which, stages numbered from 1), for "
            f"the true class of {len(images)} fixed validation images (the first of each class in split order); the "
            "title over each map is the model's prediction (green: right, red: wrong). "
            + (" ".join(remarks) if remarks else "No map is flat."))
    return path, note


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
