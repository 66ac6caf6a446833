"""`timm-compound experiment` and `timm-compound cam`: depth vs width vs resolution vs compound scaling
at equal real cost, trained and reported; class activation maps of a trained model on your own images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from timm_compound.cli.app import DEFAULT_DATA, app, console, errors, fail, parse_coefficients
from timm_compound.errors import CompoundError

STRATEGIES = "depth,width,resolution,compound"   # timm_compound.experiment.inputs.STRATEGIES


@app.command("experiment")
def experiment_command(
    base: Annotated[str, typer.Argument(help="A base covered by a rule (resnet18).")],
    data: Annotated[str, typer.Option(help="builtin:digits, an image folder, torch/<name> or hfds/<name>.")] = DEFAULT_DATA,
    budgets: Annotated[str, typer.Option(help="Multiples of the base's GMACs, each > 1, comma-separated.")] = "2,4",
    strategies: Annotated[str, typer.Option(help="Comma-separated subset of depth,width,resolution,compound.")] = STRATEGIES,
    reference: Annotated[Optional[list[str]], typer.Option(
        help="A timm model or registered variant trained beside the variants (NAME or NAME@PIXELS); repeatable.")] = None,
    epochs: Annotated[int, typer.Option(help="Epochs every model trains.")] = 10,
    out: Annotated[Optional[Path], typer.Option(help="Experiment folder: runs/, table.csv/.md, figures, cam.png, report.html.")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="The base's input size in pixels (default: its rule's).")] = None,
    coefficients: Annotated[Optional[str], typer.Option(help="alpha,beta,gamma of the compound strategy (default: the rule's).")] = None,
    tolerance: Annotated[float, typer.Option(help="How far each variant's real GMACs may be from its budget (0.05 = 5%).")] = 0.05,
    include_base: Annotated[bool, typer.Option("--base/--no-base", help="Train the base itself as the 1x point.")] = True,
    cam_images: Annotated[int, typer.Option(help="Validation images in the class activation maps (0: none).")] = 4,
    cam_stage: Annotated[Optional[int], typer.Option(help="Stage the maps are computed on: 1..N, or -1 for the last (default: the last stage whose feature map is at least 4x4).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step (default: 64).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: timm's 0.1 per 256 images).")] = None,
    opt: Annotated[Optional[str], typer.Option(help="timm optimizer name (default: sgd).")] = None,
    sched: Annotated[Optional[str], typer.Option(help="timm scheduler name (default: cosine).")] = None,
    warmup_epochs: Annotated[Optional[int], typer.Option(help="Linear warmup epochs (default: 0).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay (default: 2e-5).")] = None,
    smoothing: Annotated[Optional[float], typer.Option(help="Label smoothing (default: 0).")] = None,
    mixup: Annotated[Optional[float], typer.Option(help="Mixup alpha (default: 0, off).")] = None,
    ema: Annotated[bool, typer.Option("--ema", help="Keep, evaluate and save an EMA of the weights.")] = False,
    amp: Annotated[Optional[str], typer.Option(help="Mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA).")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="timm's training augmentation (default: on, off for builtin:digits).")] = None,
    train_samples: Annotated[Optional[int], typer.Option(help="Train on a fixed subset of this many images.")] = None,
    val_samples: Annotated[Optional[int], typer.Option(help="Evaluate on a fixed subset of this many images.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every model's weights, data order and augmentation.")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where torch/ and hfds/ datasets live (default ~/.cache/timm-compound/datasets).")] = None,
    download: Annotated[bool, typer.Option("--download", help="Let torch/ datasets download (needs network).")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Data loader processes.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
) -> None:
    """Depth vs width vs resolution vs compound scaling of BASE at equal real GMACs, trained and reported.

    Each variant costs its budget x the base's GMACs within --tolerance, after rounding.

    Every model (and each --reference) trains with the same schedule and seed in OUT/runs/NAME.

    OUT gets table.csv/.md, accuracy and curve figures, cam.png and report.html.

    Re-running the command skips finished runs and resumes an interrupted one.
    """
    from timm_compound.experiment.api import experiment
    from timm_compound.experiment.inputs import parse_budgets

    try:
        if out is None:
            raise CompoundError("give --out DIR, the experiment folder")
        given: dict[str, Any] = dict(
            batch_size=batch_size, lr=lr, opt=opt, sched=sched, warmup_epochs=warmup_epochs, weight_decay=weight_decay,
            smoothing=smoothing, mixup=mixup, amp=amp, augment=augment, train_samples=train_samples,
            val_samples=val_samples, data_dir=None if data_dir is None else str(data_dir), workers=workers, device=device)
        train_arguments = {key: value for key, value in given.items() if value is not None}
        if ema:
            train_arguments["ema"] = True
        if download:
            train_arguments["download"] = True
        result = experiment(
            base, data, budgets=parse_budgets(budgets), strategies=strategies, references=tuple(reference or ()),
            epochs=epochs, out=out, resolution=resolution, coefficients=parse_coefficients(coefficients),
            tolerance=tolerance, include_base=include_base, cam_images=cam_images, cam_stage=cam_stage,
            progress="quiet" if quiet else "auto", console=console, seed=seed, **train_arguments,
        )
    except CompoundError as error:
        raise fail(error) from None
    if quiet:   # the experiment printed its summary already unless quiet
        for budget, strategy in result.best.items():
            console.print(f"{budget:g}x the base's GMACs: best {strategy}", markup=False, highlight=False)
        console.print(f"total compute: {result.compute_macs / 1e12:.4g} TMACs; report: {result.report}",
                      markup=False, highlight=False, soft_wrap=True)


@app.command("cam")
def cam_command(
    name: Annotated[Optional[str], typer.Argument(
        help="A registered variant, a base or a timm model (not needed with --run).")] = None,
    image: Annotated[Optional[list[Path]], typer.Option(help="An image file to explain; repeatable.")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="The trained .safetensors state dict (RUN/best.safetensors).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run", help="A run folder: its model, best weights and resolution.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for IMAGE.cam.png files.")] = Path("cam"),
    resolution: Annotated[Optional[int], typer.Option(help="Input size in pixels (default: the model's or the run's).")] = None,
    target: Annotated[Optional[int], typer.Option(help="Class index to explain (default: each image's prediction).")] = None,
    stage: Annotated[Optional[int], typer.Option(help="Stage of the rule's stage_modules: 1..N, or -1 for the last (default: the last stage whose feature map is at least 4x4).")] = None,
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
        written = class_activation_maps(model, weights, list(image or ()), out, resolution=resolution, target=target,
                                        stage=stage, say=lambda line: errors.print(line, markup=False, highlight=False,
                                                                                   soft_wrap=True))
    except CompoundError as error:
        raise fail(error) from None
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
