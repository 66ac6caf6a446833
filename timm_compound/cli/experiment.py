"""`timm-compound experiment` and `timm-compound cam`: depth vs width vs resolution vs compound scaling
at equal real cost, trained and reported; class activation maps of a trained model on your own images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from timm_compound.cli.app import DEFAULT_DATA, app, console, errors, fail, parse_coefficients
from timm_compound.cli.config_options import ConfigCommand, config_options, given
from timm_compound.cli.display import NormOption
from timm_compound.cli.measure import shown_warnings
from timm_compound.errors import CompoundError

STRATEGIES = "depth,width,resolution,compound"  # timm_compound.experiment.inputs.STRATEGIES (dWr: on request)
OWN_SETTINGS = ("model", "phi", "data", "epochs", "resolution", "num_classes", "workers")  # ...inputs.OWN_SETTINGS
REPORT = "report"  # `experiment report --out DIR`: BASE "report" rewrites an experiment's report


@app.command("experiment", cls=ConfigCommand)
@config_options(exclude=OWN_SETTINGS)
def experiment_command(
    base: Annotated[
        str,
        typer.Argument(
            help="A base covered by a rule (resnet18), or 'report' to rewrite the report "
            "of the experiment in --out from its finished runs."
        ),
    ],
    data: Annotated[
        str, typer.Option(help="builtin:digits, an image folder, torch/<name> or hfds/<name>.")
    ] = DEFAULT_DATA,
    budgets: Annotated[
        Optional[str],
        typer.Option(
            help="Multiples of the base's GMACs (or of its measured latency with --cost latency), each > 1, "
            "comma-separated (default: 2,4).",
            show_default=False,
        ),
    ] = None,
    strategies: Annotated[
        Optional[str],
        typer.Option(help=f"Comma-separated subset of {STRATEGIES},dWr (default: {STRATEGIES}).", show_default=False),
    ] = None,
    reference: Annotated[
        Optional[list[str]],
        typer.Option(
            help="A timm model or registered variant trained beside the variants (NAME or NAME@PIXELS); repeatable."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs every model trains.")] = 10,
    out: Annotated[
        Optional[Path], typer.Option(help="Experiment folder: runs/, table.csv/.md, figures, cam.png, report.html.")
    ] = None,
    resolution: Annotated[
        Optional[int], typer.Option(help="The base's input size in pixels (default: its rule's).")
    ] = None,
    coefficients: Annotated[
        Optional[str], typer.Option(help="alpha,beta,gamma of the compound strategy (default: the rule's).")
    ] = None,
    dwr_alpha: Annotated[
        Optional[float], typer.Option(help="dWr: the share of the FLOPs growth given to width (default: 0.8).")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="How far each variant's real GMACs may be from its budget (0.05 = 5%).")
    ] = 0.05,
    cost: Annotated[
        str, typer.Option(help="What a budget multiplies: gmacs, or latency (the base's median latency, timed here).")
    ] = "gmacs",
    latency_device: Annotated[str, typer.Option(help="Where every model is timed: cpu, cuda or cuda:N.")] = "cpu",
    latency_threads: Annotated[int, typer.Option(help="torch threads while timing.")] = 1,
    latency_batch_size: Annotated[int, typer.Option(help="Images per timed forward pass.")] = 1,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Time nothing (not with --cost latency).")] = False,
    include_base: Annotated[
        Optional[bool],
        typer.Option(
            "--base/--no-base",
            help="Train the base itself as the 1x point (default: yes; no with --versus).",
            show_default=False,
        ),
    ] = None,
    cam_images: Annotated[int, typer.Option(help="Validation images in the class activation maps (0: none).")] = 4,
    cam_stage: Annotated[
        Optional[int],
        typer.Option(
            help="Stage the maps are computed on: 1..N, or -1 for the last (default: the last stage whose feature map is at least 4x4)."
        ),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(
            help="Seeds per model: seed, seed+1, ... (--seed is the first); the same for "
            "every model, so comparisons are paired. 1 gives no error bars."
        ),
    ] = 1,
    versus: Annotated[
        Optional[str],
        typer.Option(
            help="A timm model: train only the compound-scaled BASE at its real cost beside it and say which is better."
        ),
    ] = None,
    storage: Annotated[
        Optional[str],
        typer.Option(
            help="Database URL of the run ledger (sqlite:///FILE or postgresql://...): every process given the same "
            "URL and --out takes unclaimed runs."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Local worker processes sharing the runs (ledger: --storage, else OUT/experiment.db).")
    ] = 1,
    heartbeat: Annotated[
        int,
        typer.Option(
            help="Seconds between a worker's heartbeats; a run whose worker is silent for twice that is taken over."
        ),
    ] = 60,
    keep_checkpoints: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoints",
            help="Keep each finished run's optimizer and scheduler state (default: deleted, weights and metrics kept).",
        ),
    ] = False,
    loader_workers: Annotated[Optional[int], typer.Option(help="Data loader processes per run.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
    **settings: Any,
) -> None:
    """Depth vs width vs resolution vs compound scaling of BASE at equal real GMACs, trained and reported.

    Each variant costs its budget x the base's GMACs within --tolerance, after rounding (with --cost latency:
    its budget x the base's median latency, timed here).

    Every model is timed as trained (--latency-device, --latency-threads, --latency-batch-size): the table
    gains ms, its 95% interval and img/s, the report an accuracy-against-latency figure.

    Every model (and each --reference) trains with the same schedule and seeds in OUT/runs/NAME (OUT/runs/NAME/seed-K with several --seeds).

    OUT gets table.csv/.md, results.json (statistics and a verdict per budget), accuracy and curve figures, cam.png and report.html.

    Re-running the command skips finished runs and resumes an interrupted one. With --storage or --workers, any number of processes share the runs; `experiment report --out DIR` rewrites the report from what has finished.
    """
    from timm_compound.experiment.api import experiment, report

    try:
        if out is None:
            raise CompoundError("give --out DIR, the experiment folder")
        if base == REPORT:
            result = report(out, progress="quiet" if quiet else "auto", console=console)
        else:
            with shown_warnings():
                result = experiment(
                    base,
                    data,
                    budgets=_budgets(budgets),
                    strategies=strategies,
                    references=tuple(reference or ()),
                    epochs=epochs,
                    out=out,
                    resolution=resolution,
                    coefficients=parse_coefficients(coefficients),
                    dwr_alpha=dwr_alpha,
                    tolerance=tolerance,
                    include_base=include_base,
                    cam_images=cam_images,
                    cam_stage=cam_stage,
                    cost=cost,
                    latency=False
                    if no_latency
                    else dict(device=latency_device, threads=latency_threads, batch_size=latency_batch_size),
                    seeds=seeds,
                    versus=versus,
                    storage=storage,
                    workers=workers,
                    heartbeat=heartbeat,
                    keep_checkpoints=keep_checkpoints,
                    loader_workers=loader_workers,
                    progress="quiet" if quiet else "auto",
                    console=console,
                    **given(settings),
                )
    except CompoundError as error:
        raise fail(error) from None
    if quiet:  # the experiment printed its summary already unless quiet
        unit = "latency" if cost == "latency" else "GMACs"
        for budget, strategy in result.best.items():
            console.print(f"{budget:g}x the base's {unit}: best {strategy}", markup=False, highlight=False)
        for line in result.verdicts.values():
            console.print(f"verdict at {line}", markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"total compute: {result.compute_macs / 1e12:.4g} TMACs; report: {result.report}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _budgets(text: str | None):
    """None: the default budgets (or the one --versus sets); else '2,4,8' checked."""
    from timm_compound.experiment.inputs import parse_budgets

    return None if text is None else parse_budgets(text)


@app.command("cam")
def cam_command(
    name: Annotated[
        Optional[str], typer.Argument(help="A registered variant, a base or a timm model (not needed with --run).")
    ] = None,
    image: Annotated[Optional[list[Path]], typer.Option(help="An image file to explain; repeatable.")] = None,
    weights: Annotated[
        Optional[Path], typer.Option(help="The trained .safetensors state dict (RUN/best.safetensors).")
    ] = None,
    run_dir: Annotated[
        Optional[Path], typer.Option("--run", help="A run folder: its model, best weights and resolution.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for IMAGE.cam.png files.")] = Path("cam"),
    resolution: Annotated[
        Optional[int], typer.Option(help="Input size in pixels (default: the model's or the run's).")
    ] = None,
    target: Annotated[
        Optional[int], typer.Option(help="Class index to explain (default: each image's prediction).")
    ] = None,
    stage: Annotated[
        Optional[int],
        typer.Option(
            help="Stage of the rule's stage_modules: 1..N, or -1 for the last (default: the last stage whose feature map is at least 4x4)."
        ),
    ] = None,
    norm: NormOption = None,
) -> None:
    """Grad-CAM class activation maps of a trained model on your own images: one IMAGE.cam.png each."""
    from timm_compound.experiment.cam import class_activation_maps

    try:
        if run_dir is not None:
            from timm_compound.train.recorded import open_run

            if weights is not None:
                raise CompoundError("--run uses the run's best.safetensors; give either --run or --weights")
            recorded = open_run(run_dir)
            model, weights, resolution = recorded.model, recorded.weights, resolution or recorded.resolution
        elif name is None or weights is None:
            raise CompoundError("give NAME --weights FILE, or --run RUN")
        else:
            model = name
        written = class_activation_maps(
            model,
            weights,
            list(image or ()),
            out,
            resolution=resolution,
            target=target,
            stage=stage,
            say=lambda line: errors.print(line, markup=False, highlight=False, soft_wrap=True),
            norm=norm,
        )
    except CompoundError as error:
        raise fail(error) from None
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
