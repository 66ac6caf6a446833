"""`timm-compound demo`: the main job end to end on built-in defaults, small enough for a laptop CPU.

1. build registered variants with timm.create_model, print their plans, run a forward pass at each
   variant's own input size;
2. measure one family over phi: realised GMACs beside the ideal (alpha*beta^2*gamma^2)^phi;
3. publish a variant to a folder (the Hub layout: safetensors, config.json, model card) and load it
   back with timm's `local-dir:` scheme, with no network;
4. train the smallest ResNet variant for 3 epochs at 32 px on the built-in offline digits and
   print its validation accuracy beside chance (under a minute on 2 CPU cores).
"""

from __future__ import annotations

import tempfile
import time
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from timm_compound.cli.app import app, fail
from timm_compound.cli.app import console as stdout
from timm_compound.errors import CompoundError, UnknownModelError

DEFAULT_VARIANTS = (
    "resnet18_cs_phi0",
    "resnet18_cs_phi1",
    "resnet18_cs_phi2",
    "mobilenetv2_100_cs_phi1",
    "efficientnet_b0_cs_phi1",
)
TABLE_BASE, TABLE_PHIS = "resnet18", (0, 1, 2, 3)
PUBLISHED = "resnet18_cs_phi1"
TRAINED, TRAIN_EPOCHS, TRAIN_PIXELS = "resnet18_cs_phi0", 3, 32


@app.command()
def demo(
    names: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Registered variants to build and run (default: five resnet18, mobilenetv2 and efficientnet variants)."
        ),
    ] = None,
) -> None:
    """Build registered variants, print their plans and sizes, run a forward pass at each one's resolution.

    Without NAMES this is the whole job end to end: it also prints resnet18's family table (realised cost beside the ideal), publishes a variant to a temporary folder and reloads it, and trains resnet18_cs_phi0 for 3 epochs on the built-in digits (accuracy beside chance). With NAMES it builds and runs only those.
    """
    try:
        run(names or None, stdout)
        if not names:
            train_step(stdout)
    except CompoundError as error:
        raise fail(error) from None


def run(names: list[str] | None, console: Console) -> list[dict]:
    rows = build_and_run(names, console)
    if names is None:
        family(console)
        publish_and_reload(console)
    return rows


def build_and_run(names: list[str] | None, console: Console) -> list[dict]:
    """Build each variant with timm.create_model, show its plan, count parameters, run one forward pass."""
    import timm
    import torch

    from timm_compound.cli.display import plan_table, print_table
    from timm_compound.scaling.catalog import registered

    names = list(names or DEFAULT_VARIANTS)
    unknown = [name for name in names if name not in registered()]
    if unknown:
        import difflib

        close = sorted({m for name in unknown for m in difflib.get_close_matches(name, list(registered()), n=3)})
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"not registered: {', '.join(unknown)}{hint} (see `timm-compound list`)")

    rows = []
    for name in names:
        model = timm.create_model(name, pretrained=False).eval()
        config = timm.data.resolve_model_data_config(model)
        print_table(plan_table(model.compound_plan, title=name), console)
        start = time.perf_counter()
        with torch.inference_mode():
            logits = model(torch.randn(1, *config["input_size"]))
        rows.append(
            dict(
                name=name,
                params=sum(p.numel() for p in model.parameters()),
                input_size=config["input_size"][-1],
                output=tuple(logits.shape),
                seconds=time.perf_counter() - start,
            )
        )

    table = Table(title="forward pass at each variant's own input size (CPU, batch 1)")
    for column in ("variant", "params", "input", "output", "time"):
        table.add_column(column, justify="right" if column != "variant" else "left", overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['params']:,}",
            f"{row['input_size']}px",
            str(row["output"]),
            f"{row['seconds'] * 1000:.0f} ms",
        )
    print_table(table, console)
    return rows


def family(console: Console) -> None:
    """The family table: what compound scaling promised (ideal) and what rounding delivered."""
    from timm_compound.cli.display import family_view, print_table
    from timm_compound.cost.table import family_table

    print_table(family_view(TABLE_BASE, family_table(TABLE_BASE, list(TABLE_PHIS)), compact=True), console)


def publish_and_reload(console: Console) -> bool:
    """Publish a variant to a folder and reload it with `local-dir:`; True when outputs are identical."""
    import timm
    import torch

    from timm_compound.hub.publish import save_to_dir

    with tempfile.TemporaryDirectory() as folder:
        model = timm.create_model(PUBLISHED, num_classes=10).eval()
        path = save_to_dir(model, folder)
        loaded = timm.create_model(f"local-dir:{path}", pretrained=True).eval()
        size = timm.data.resolve_model_data_config(loaded)["input_size"]
        x = torch.randn(1, *size)
        with torch.inference_mode():
            same = torch.equal(model(x), loaded(x))
        files = ", ".join(sorted(p.name for p in path.iterdir()))
    verdict = "[green]identical outputs[/]" if same else "[bold red]outputs differ[/]"
    console.print(f"published {PUBLISHED} to a folder ({files}); reloaded with local-dir: at input {size}: {verdict}")
    return same


def train_step(console: Console, progress: str = "auto"):
    """Train TRAINED on builtin:digits (offline) and print its validation top-1 beside chance."""
    from timm_compound.train.api import train

    console.print(
        f"training {TRAINED} for {TRAIN_EPOCHS} epochs at {TRAIN_PIXELS} px on builtin:digits "
        "(scikit-learn's 8x8 handwritten digits, no download)",
        markup=False,
        highlight=False,
    )
    start = time.perf_counter()
    result = train(
        TRAINED,
        "builtin:digits",
        epochs=TRAIN_EPOCHS,
        resolution=TRAIN_PIXELS,
        seed=0,
        progress=progress,
        console=console,
    )
    data = result.dataset
    console.print(
        f"{TRAINED} after {len(result.history)} epochs: validation top-1 [bold]{result.top1:.1f}%[/] "
        f"(chance {100 / result.num_classes:.1f}%), top-5 {result.last.top5:.1f}%, on {data['val_images']:,} held-out images "
        f"({data['train_images']:,} trained on), {time.perf_counter() - start:.0f} s",
        highlight=False,
    )
    return result
