"""`timm-compound publish`: a registered variant to the Hub, or its files to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from timm_compound.cli.app import app, console, fail
from timm_compound.cli.display import NormOption
from timm_compound.errors import CompoundError


@app.command("publish")
def publish(
    name: Annotated[
        Optional[str], typer.Argument(help="A registered variant, e.g. resnet18_cs_phi2 (optional with --run).")
    ] = None,
    repo: Annotated[Optional[str], typer.Option("--repo", help="Hub repo id, org/name.")] = None,
    weights: Annotated[
        Optional[Path], typer.Option("--weights", help="A .safetensors state dict to publish instead of fresh weights.")
    ] = None,
    run_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--run",
            help="A training run folder: publish its best weights, with its accuracy, data and settings in the card.",
        ),
    ] = None,
    to_dir: Annotated[
        Optional[Path],
        typer.Option("--to-dir", help="Write the files to DIR (loadable with local-dir:) and upload nothing."),
    ] = None,
    revision: Annotated[
        Optional[str], typer.Option("--revision", help="Branch to commit to, created if missing (default: main).")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Let --to-dir write into a folder that is not empty (its README.md, config.json and model.safetensors are replaced).",
        ),
    ] = False,
    norm: NormOption = None,
) -> None:
    """Publish a registered variant: model.safetensors, config.json (with the plan) and a model card.

    The token comes from HF_TOKEN or `hf auth login`, as for any huggingface_hub call; it is never printed.
    """
    from timm_compound.hub import publish as hub

    try:
        if to_dir is not None:
            hub.check_output_dir(to_dir, overwrite=overwrite)  # before anything is built or read
        elif repo is not None:
            hub.check_repo_id(repo)
            if revision is not None:
                hub.check_revision(revision)
        model, training = name, None
        if run_dir is not None:
            model, weights, training = _from_run(run_dir, name, weights)
            name = name or (model if isinstance(model, str) else f"{model.base} from {run_dir}")
        elif name is None:
            raise CompoundError("give a registered variant NAME, or --run RUN")
        if to_dir is not None:
            folder = hub.save_to_dir(
                model, to_dir, weights=weights, repo_id=repo, training=training, overwrite=overwrite, norm=norm
            )
            console.print(
                f"wrote {folder}: config.json, model.safetensors, README.md "
                f"(load with timm.create_model('local-dir:{folder.resolve()}', pretrained=True))",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return
        if not repo:
            raise CompoundError("give --repo org/name to publish, or --to-dir DIR to write the files")
        sha = hub.publish(
            model,
            repo,
            weights=weights,
            private=private,
            revision=revision,
            endpoint=endpoint,
            training=training,
            norm=norm,
        )
    except CompoundError as error:
        raise fail(error) from None
    console.print(
        f"published {name} to {repo} at commit {sha} (load with timm.create_model('hf-hub:{repo}', pretrained=True))",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _from_run(run_dir: Path, name: str | None, weights: Path | None):
    """(registered name or plan, RUN/best.safetensors, the card's training summary) of a run folder."""
    from timm_compound.train.recorded import open_run

    if weights is not None:
        raise CompoundError("--run publishes the run's best.safetensors; give either --run or --weights")
    recorded = open_run(run_dir)
    if name is not None and name != recorded.name:
        raise CompoundError(
            f"{run_dir} trained {recorded.record['model']['spec']}"
            f"{'' if recorded.name else ' (not a registered variant at its own plan)'}, not {name}"
        )
    return recorded.model, recorded.weights, recorded.training_summary()
