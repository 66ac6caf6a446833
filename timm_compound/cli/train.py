"""`timm-compound train` and `timm-compound eval`: train a scaled model into a run folder, evaluate weights.

Under `torchrun --nproc_per_node N -m timm_compound train ...` every process runs this command and
trains its shard with DistributedDataParallel; only rank 0 prints and writes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from timm_compound.cli.app import DEFAULT_DATA, app, console, fail
from timm_compound.cli.config_options import ConfigCommand, config_options, flag, given
from timm_compound.cli.display import NormOption
from timm_compound.errors import CompoundError


@app.command("train", cls=ConfigCommand)
@config_options(exclude=("model",))
def train_command(
    name: Annotated[
        Optional[str],
        typer.Argument(
            help="A registered variant (resnet18_cs_phi0) or a base (resnet18); not needed with --config or --resume."
        ),
    ] = None,
    config_file: Annotated[
        Optional[Path],
        typer.Option(
            "--config", help="A YAML file of settings (as --print-config writes); options given here override it."
        ),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved settings as YAML and exit (nothing is trained).")
    ] = False,
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/NAME-TIME).")] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option(
            help="Continue this run folder with every setting from its run.json; only a larger --epochs, "
            "--device, --workers, --data-dir and --download may be given."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    **settings: Any,
) -> None:
    """Train a scaled model; writes run.json, metrics.csv, curves.png, TensorBoard logs and checkpoints to the run folder.

    Every training setting is an option below, or a key of a --config file.
    """
    primary = os.environ.get("RANK", "0") == "0"
    try:
        chosen = given(settings)
        if resume is not None:
            resumed = _resume(resume, name, config_file, print_config, out, chosen, quiet)
            if resumed is None:
                return
            result, label = resumed
        else:
            from timm_compound.train.config import build_config, read_config_file, to_yaml

            from_file = {}
            if config_file is not None:
                from_file = build_config(read_config_file(config_file), where=str(config_file)).given()
            if name is not None:
                chosen["model"] = name
            config = build_config(from_file, where="train options", spell=flag, **chosen)
            if print_config:
                print(to_yaml(config), end="")
                return
            if config.model is None:
                raise CompoundError(
                    "give NAME (a registered variant or a base), a --config file naming a model, or --resume RUN"
                )
            from timm_compound.train.api import train

            if out is None:
                out = Path("runs") / f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
            result = train(config=config, out=out, progress=False if quiet else "auto")
            label = config.model if config.phi is None else f"{config.model} phi={config.phi:g}"
    except CompoundError as error:
        raise fail(error) from None
    if primary:
        best = result.best
        console.print(
            f"{result.status}: {label} on {result.dataset['name']}, "
            f"{len(result.history)} epoch(s): top-1 {result.top1:.2f}% "
            f"(best {best.top1:.2f}% at epoch {best.epoch}; chance {100 / result.num_classes:.1f}%) -> {result.run_dir}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _resume(
    folder: Path,
    name: str | None,
    config_file: Path | None,
    print_config: bool,
    out: Path | None,
    chosen: dict[str, Any],
    quiet: bool,
):
    """`train --resume RUN`: every setting from the run; a flag it may not change is refused, naming it."""
    from timm_compound.train.resume import refused

    extra = [flag(key) for key in refused(chosen)]
    extra += [option for option, value in (("--config", config_file), ("--out", out)) if value is not None]
    if extra:
        raise CompoundError(
            f"--resume takes every setting from {folder / 'run.json'}; {', '.join(extra)} cannot be "
            "given with it (only a larger --epochs, --device, --workers, --data-dir and --download)"
        )
    from timm_compound.train.run import read_record, recorded_config

    record = read_record(folder)
    if name is not None and name != (record.get("config") or {}).get("model", record["model"].get("spec")):
        raise CompoundError(f"{folder} trained {record['model'].get('spec')}, not {name}; leave NAME out to resume it")
    if print_config:
        from timm_compound.train.config import build_config, to_yaml

        print(to_yaml(build_config(recorded_config(record, folder / "run.json"), **chosen)), end="")
        return None
    from timm_compound.train.api import train

    return train(resume=folder, progress=False if quiet else "auto", **chosen), record["model"].get("spec")


@app.command("eval")
def eval_command(
    name: Annotated[
        Optional[str], typer.Argument(help="A registered variant or a base (not needed with --run).")
    ] = None,
    weights: Annotated[
        Optional[Path], typer.Option(help="A .safetensors state dict, e.g. RUN/best.safetensors.")
    ] = None,
    run_dir: Annotated[
        Optional[Path], typer.Option("--run", help="Evaluate a run folder's best weights at its resolution.")
    ] = None,
    data: Annotated[Optional[str], typer.Option(help="Dataset (default: the run's, else builtin:digits).")] = None,
    resolution: Annotated[
        Optional[int], typer.Option(help="Input size in pixels (default: the model's or the run's).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    val_samples: Annotated[Optional[int], typer.Option(help="Evaluate on a fixed subset of this many images.")] = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option(help="Where torch/ and hfds/ datasets live (default ~/.cache/timm-compound/datasets)."),
    ] = None,
    workers: Annotated[Optional[int], typer.Option(help="Data loader processes (default: 0 for builtin data).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    norm: NormOption = None,
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
        result = evaluate(
            model,
            data or DEFAULT_DATA,
            weights=weights,
            resolution=resolution,
            batch_size=batch_size,
            val_samples=val_samples,
            data_dir=data_dir,
            workers=workers,
            device=device,
            norm=norm,
        )
    except CompoundError as error:
        raise fail(error) from None
    if as_json:
        print(json.dumps({**result.to_dict(), "chance": result.chance}, indent=2))
        return
    console.print(
        f"top-1 {result.top1:.2f}% (chance {result.chance:.1f}%), top-5 {result.top5:.2f}%, loss {result.loss:.4f} "
        f"on {result.images} images at {result.resolution} px, {result.images_per_second:.0f} img/s",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
