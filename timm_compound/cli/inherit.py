"""`timm-compound inherit`: grow a base's weights into a scaled variant and write it as a publishable folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from timm_compound.cli.app import app, console, fail, plan_or_name
from timm_compound.errors import CompoundError


def _source(text: str):
    """(what to grow from, how to name it, how it was trained): a training run folder becomes its model
    with its best weights and its training summary; anything else goes to inherit as is (which names it)."""
    path = Path(text)
    if not (path.is_dir() and (path / "run.json").is_file()):
        return text, None, None
    from timm_compound.hub.publish import resolve
    from timm_compound.train.recorded import open_run

    recorded = open_run(path)
    resolved = resolve(recorded.model, recorded.weights)  # (model, plan, name, state dict, origin)
    model, state = resolved[0], resolved[3]
    model.load_state_dict(state)
    return model, f"the run {path} ({recorded.weights.name})", recorded.training_summary()


@app.command("inherit")
def inherit_command(
    name: Annotated[
        str,
        typer.Argument(help="The variant to grow into: a registered variant (resnet18_cs_phi1), or a base with --phi."),
    ],
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="The base's weights: a .safetensors file, a training run folder, a published folder (or local-dir:DIR), or a Hub repo (org/name, hf-hub:org/name or hf-hub:org/name@REVISION; timm's own repos too).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to write model.safetensors, config.json and README.md to (loadable with local-dir:)."
        ),
    ],
    phi: Annotated[Optional[float], typer.Option(help="Grow a base NAME to this phi.")] = None,
    noise: Annotated[
        float,
        typer.Option(
            help="Perturb the copied units by this much (relative to each weight's std) to break their symmetry; 0 keeps the base's outputs exactly."
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the copied channels, the new blocks' weights and the noise.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into an --out folder that is not empty.")
    ] = False,
) -> None:
    """Grow a base's weights into a scaled variant that starts with the base's function (Net2Net).

    Widened layers copy the base's units and split their outgoing weights; new blocks start as the
    identity. The result is checked against the base on a random input before it is written.
    """
    from timm_compound.hub.publish import check_output_dir, save_to_dir
    from timm_compound.inherit.api import TOLERANCE, inherit

    try:
        check_output_dir(out, overwrite=overwrite)  # before any weights are read
        base, described, trained = _source(source)
        model = inherit(base, plan_or_name(name, phi), noise=noise, seed=seed, name=name if phi is None else None)
        if described is not None:  # the card names the run, and how and at what size it was trained
            model.inherit_report.source = described
            model.inherit_report.source_training = trained
        folder = save_to_dir(model, out, overwrite=overwrite)
    except CompoundError as error:
        raise fail(error) from None
    report = model.inherit_report
    agreement = (
        f"outputs equal the base's to {report.deviation:.1e} (relative; checked below {TOLERANCE:g})"
        if not report.noise
        else f"outputs within {report.deviation:.1e} of the base's (noise {report.noise:g})"
    )
    console.print(
        f"grew {described or report.source} into {model.pretrained_cfg.get('architecture')}: {len(report.new_blocks)} new "
        f"block(s) starting as the identity, {report.widened} channel set(s) widened; {agreement}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"wrote {folder}: config.json, model.safetensors, README.md "
        f"(load with timm.create_model('local-dir:{folder.resolve()}', pretrained=True))",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
