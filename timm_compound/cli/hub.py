"""`timm-compound publish`: a registered variant to the Hub, or its files to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from timm_compound.cli.app import app, console, fail
from timm_compound.errors import CompoundError


@app.command("publish")
def publish(
    name: Annotated[str, typer.Argument(help="A registered variant, e.g. resnet18_cs_phi2.")],
    repo: Annotated[Optional[str], typer.Option("--repo", help="Hub repo id, org/name.")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="A .safetensors state dict to publish instead of fresh weights.")] = None,
    to_dir: Annotated[Optional[Path], typer.Option("--to-dir", help="Write the files to DIR (loadable with local-dir:) and upload nothing.")] = None,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to commit to (created if missing).")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co).")] = None,
) -> None:
    """Publish a registered variant: model.safetensors, config.json (with the plan) and a model card.

    The token comes from HF_TOKEN or `hf auth login`, as for any huggingface_hub call; it is never printed.
    """
    from timm_compound.hub import publish as hub

    try:
        if to_dir is not None:
            folder = hub.save_to_dir(name, to_dir, weights=weights, repo_id=repo)
            console.print(f"wrote {folder}: config.json, model.safetensors, README.md "
                          f"(load with timm.create_model('local-dir:{folder.resolve()}', pretrained=True))",
                          markup=False, highlight=False, soft_wrap=True)
            return
        if not repo:
            raise CompoundError("give --repo org/name to publish, or --to-dir DIR to write the files")
        sha = hub.publish(name, repo, weights=weights, private=private, revision=revision, endpoint=endpoint)
    except CompoundError as error:
        raise fail(error) from None
    console.print(f"published {name} to {repo} at commit {sha} "
                  f"(load with timm.create_model('hf-hub:{repo}', pretrained=True))", markup=False, highlight=False, soft_wrap=True)
