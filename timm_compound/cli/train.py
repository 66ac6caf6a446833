"""`timm-compound train` and `timm-compound eval`: train a scaled model into a run folder, evaluate weights.

Under `torchrun --nproc_per_node N -m timm_compound train ...` every process runs this command and
trains its shard with DistributedDataParallel; only rank 0 prints and writes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from timm_compound.cli.app import DEFAULT_DATA, app, console, fail, plan_or_name
from timm_compound.errors import CompoundError


def parse_train_resolution(text: str | None) -> int | float | None:
    """'160' -> 160 px; '0.5' -> half the evaluation resolution."""
    if text is None:
        return None
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise CompoundError(f"--train-resolution must be pixels (160) or a fraction (0.5), got {text!r}") from None


@app.command("train")
def train_command(
    name: Annotated[str, typer.Argument(help="A registered variant (resnet18_cs_phi0) or a base (resnet18).")],
    data: Annotated[str, typer.Option(help="builtin:digits, an image folder, torch/<name> or hfds/<name>.")] = DEFAULT_DATA,
    epochs: Annotated[int, typer.Option(help="Epochs to train.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per step and process.")] = 64,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: timm's 0.1 per 256 images).")] = None,
    opt: Annotated[str, typer.Option(help="timm optimizer name (sgd, adamw, lamb, ...).")] = "sgd",
    sched: Annotated[str, typer.Option(help="timm scheduler name (cosine, step, poly, none, ...).")] = "cosine",
    warmup_epochs: Annotated[int, typer.Option(help="Linear warmup epochs.")] = 0,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 2e-5,
    momentum: Annotated[float, typer.Option(help="SGD momentum.")] = 0.9,
    smoothing: Annotated[float, typer.Option(help="Label smoothing.")] = 0.0,
    mixup: Annotated[float, typer.Option(help="Mixup alpha (0: off).")] = 0.0,
    ema: Annotated[bool, typer.Option("--ema", help="Keep, evaluate and save an EMA of the weights.")] = False,
    amp: Annotated[Optional[str], typer.Option(help="Mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA).")] = None,
    phi: Annotated[Optional[float], typer.Option(help="Scale a base NAME by this phi.")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Evaluation input size in pixels (default: the plan's).")] = None,
    train_resolution: Annotated[Optional[str], typer.Option(help="Train at these pixels (160) or this fraction (0.5) of the resolution.")] = None,
    num_classes: Annotated[Optional[int], typer.Option(help="Expected class count (checked against the data).")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="timm's training augmentation (default: on, off for builtin:digits).")] = None,
    train_samples: Annotated[Optional[int], typer.Option(help="Train on a fixed subset of this many images.")] = None,
    val_samples: Annotated[Optional[int], typer.Option(help="Evaluate on a fixed subset of this many images.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weights, the data order and augmentation.")] = 0,
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/NAME-TIME).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder after its last completed epoch.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where torch/ and hfds/ datasets live (default ~/.cache/timm-compound/datasets).")] = None,
    download: Annotated[bool, typer.Option("--download", help="Let torch/ datasets download (needs network).")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Data loader processes (default: 0 for builtin data).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Train a scaled model; writes run.json, metrics.csv, curves.png and checkpoints to the run folder."""
    from timm_compound.train.api import train

    primary = os.environ.get("RANK", "0") == "0"
    try:
        spec = plan_or_name(name, phi)
        if out is None and resume is None:
            out = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = train(
            spec, data, epochs=epochs, batch_size=batch_size, lr=lr, opt=opt, sched=sched, warmup_epochs=warmup_epochs,
            weight_decay=weight_decay, momentum=momentum, smoothing=smoothing, mixup=mixup, ema=ema, amp=amp,
            resolution=resolution, train_resolution=parse_train_resolution(train_resolution), num_classes=num_classes,
            augment=augment, train_samples=train_samples, val_samples=val_samples, seed=seed, out=out, resume=resume,
            data_dir=data_dir, download=download, workers=workers, device=device, progress=False if quiet else "auto",
        )
    except CompoundError as error:
        raise fail(error) from None
    if primary:
        best = result.best
        console.print(
            f"{result.status}: {name} on {result.dataset['name']}, {len(result.history)} epoch(s): top-1 {result.top1:.2f}% "
            f"(best {best.top1:.2f}% at epoch {best.epoch}; chance {100 / result.num_classes:.1f}%) -> {result.run_dir}",
            markup=False, highlight=False, soft_wrap=True,
        )


@app.command("eval")
def eval_command(
    name: Annotated[Optional[str], typer.Argument(help="A registered variant or a base (not needed with --run).")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="A .safetensors state dict, e.g. RUN/best.safetensors.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run", help="Evaluate a run folder's best weights at its resolution.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Dataset (default: the run's, else builtin:digits).")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Input size in pixels (default: the model's or the run's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    val_samples: Annotated[Optional[int], typer.Option(help="Evaluate on a fixed subset of this many images.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where torch/ and hfds/ datasets live (default ~/.cache/timm-compound/datasets).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Data loader processes (default: 0 for builtin data).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Evaluate weights on a validation split: top-1, top-5, loss and images/s."""
    from timm_compound.train.api import evaluate

    try:
        if run_dir is not None:
            from timm_compound.train.recorded import open_run

            recorded = open_run(run_dir)
            if weights is not None:
                raise CompoundError("--run evaluates the run's best.safetensors; give either --run or --weights")
            if name is not None and name != recorded.record["model"]["spec"]:
                raise CompoundError(f"{run_dir} trained {recorded.record['model']['spec']}, not {name}")
            model, weights = recorded.model, recorded.weights
            data = data or recorded.record["dataset"]["name"]
            resolution = resolution or recorded.resolution
        elif name is None or weights is None:
            raise CompoundError("give NAME --weights FILE, or --run RUN")
        else:
            model = name
        result = evaluate(model, data or DEFAULT_DATA, weights=weights, resolution=resolution, batch_size=batch_size,
                          val_samples=val_samples, data_dir=data_dir, workers=workers, device=device)
    except CompoundError as error:
        raise fail(error) from None
    if as_json:
        print(json.dumps({**result.to_dict(), "chance": result.chance}, indent=2))
        return
    console.print(
        f"top-1 {result.top1:.2f}% (chance {result.chance:.1f}%), top-5 {result.top5:.2f}%, loss {result.loss:.4f} "
        f"on {result.images} images at {result.resolution} px, {result.images_per_second:.0f} img/s",
        markup=False, highlight=False, soft_wrap=True,
    )
