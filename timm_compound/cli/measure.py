"""`timm-compound measure`: one model's params, MACs, activations and, with --latency, its timings on
this machine; and the timing options `table` and `fit` share with it."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import Annotated, Optional

import typer
from rich.table import Table

from timm_compound.cli.app import app, console, errors, fail, plan_or_name
from timm_compound.cli.display import NormOption
from timm_compound.errors import CompoundError, CompoundWarning

# the timing options, one definition for every command that times (measure, table --latency, fit --max-latency-ms)
Device = Annotated[str, typer.Option(help="Where to time: cpu, cuda or cuda:N.")]
Threads = Annotated[int, typer.Option(help="torch threads while timing (capped at this machine's cores).")]
Dtype = Annotated[str, typer.Option(help="float32, float16 or bfloat16.")]
Runtime = Annotated[str, typer.Option(help="eager, compile (torch.compile) or onnxruntime (the onnx extra).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Time again instead of reading the latency cache.")]
MaxSeconds = Annotated[
    Optional[float],
    typer.Option(
        help="Time cap of one timing, warm-up included (default: 10 for measure and table, 5 per fit timing)."
    ),
]


@contextlib.contextmanager
def shown_warnings() -> Iterator[None]:
    """timm-compound's warnings (threads capped, a cache folder not writable) as `warning: ...` lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompoundWarning)
        try:
            yield
        finally:
            for warning in caught:
                if issubclass(warning.category, CompoundWarning):
                    errors.print(f"[yellow]warning:[/] {warning.message}", markup=True, highlight=False, soft_wrap=True)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def timing_options(
    device: str, batch_size: int, threads: int, dtype: str, runtime: str, no_cache: bool, max_seconds: float | None
) -> dict:
    """The options as keyword arguments of measure() and fit() (a cap left out is the callee's default)."""
    given = dict(device=device, threads=threads, dtype=dtype, runtime=runtime, cache=not no_cache)
    if max_seconds is not None:
        given["max_seconds"] = max_seconds
    return given


@app.command("measure")
def measure_command(
    name: Annotated[str, typer.Argument(help="A registered variant (resnet18_cs_phi2) or a base (resnet18).")],
    phi: Annotated[Optional[float], typer.Option("--phi", help="Compound coefficient of a base.")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Input size in pixels (default: the plan's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass (MACs, memory and timings).")] = 1,
    train_memory: Annotated[bool, typer.Option("--train-memory", help="Estimate one SGD step's peak memory.")] = False,
    latency: Annotated[bool, typer.Option("--latency", help="Also time the model on this machine.")] = False,
    device: Device = "cpu",
    threads: Threads = 1,
    dtype: Dtype = "float32",
    runtime: Runtime = "eager",
    train: Annotated[bool, typer.Option("--train", help="With --latency: also time a training step.")] = False,
    no_cache: NoCache = False,
    max_seconds: MaxSeconds = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    norm: NormOption = None,
) -> None:
    """Params, GMACs, activations and weight size of one model; with --latency, its median latency, the
    95% interval and throughput, timed here (see docs/latency.md)."""
    from timm_compound.cost.measure import measure

    try:
        with shown_warnings():
            if train and not latency:
                raise CompoundError("--train times a training step: add --latency")
            target = plan_or_name(name, phi)
            options = timing_options(device, batch_size, threads, dtype, runtime, no_cache, max_seconds)
            with console.status(f"timing {name}" if latency else f"counting {name}"):
                cost = measure(
                    target,
                    resolution=resolution,
                    batch_size=batch_size,
                    train_memory=train_memory,
                    norm=norm,
                    **({"latency": True, "train": train, **options} if latency else {}),
                )
    except CompoundError as error:
        raise fail(error) from None
    if as_json:
        print(json.dumps(cost.to_dict(), indent=2))
        return
    console.print(cost_view(name if norm is None else f"{name} ({norm} norm)", cost))


def cost_view(name: str, cost) -> Table:
    """One model's cost as a two-column table; every timing is shown with where and how it was taken."""
    table = Table(title=f"{name} at {cost.resolution} px, batch {cost.batch_size}")
    table.add_column("quantity", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    table.add_row("params", f"{cost.params:,} ({cost.mparams:.2f} M)")
    table.add_row("GMACs", f"{cost.gmacs:.4g} (conv + linear, the whole batch)")
    table.add_row("activations", f"{cost.activations:,}")
    table.add_row("weights", f"{cost.weight_bytes / 2**20:.1f} MiB")
    if cost.train_memory_bytes is not None:
        table.add_row("training step memory", f"{cost.train_memory_mib:.1f} MiB (SGD with momentum)")
    table.add_row("counted by", cost.method)
    for label, timing in (("latency", cost.latency), ("training step", cost.train_latency)):
        if timing is None:
            continue
        low, high = timing.ci_ms
        table.add_row(label, f"{timing.median_ms:.4g} ms (median)")
        table.add_row(
            "  95% interval",
            f"{low:.4g}-{high:.4g} ms"
            + ("" if timing.converged else f" (stopped by the {timing.max_seconds:g} s cap)"),
        )
        table.add_row("  throughput", f"{timing.throughput:.4g} images/s")
        if cost.gmacs and label == "latency":
            table.add_row("  ms per GMAC", f"{timing.median_ms / cost.gmacs:.4g}")
        threads = f"{timing.threads} thread" + ("s" if timing.threads != 1 else "")
        table.add_row(
            "  measured on",
            f"{timing.device} ({timing.device_name}), {threads}, batch {timing.batch_size}, "
            f"{timing.dtype}, {timing.runtime}; {timing.blocks} blocks, {timing.runs} runs"
            + (", from the cache" if timing.cached else ""),
        )
    return table
