"""What a scaled model costs: parameters, MACs, activations and training memory.

Closed-loop scaling needs the realised cost of a plan after all rounding, not the
ideal ``2**phi``. MACs follow the EfficientNet paper's "FLOPs" and timm's tables:
multiply-adds of convolutions and linear layers only (fvcore's convention, one fused
multiply-add counts once). Three paths give the same numbers, and ``Complexity.method``
says which one did:

- ``"model"``: the cost model (``timm_compound.cost.model``), milliseconds for a plan
  whose blocks it has seen: each distinct block built and traced once, never guessed;
- ``"meta"``: the exact count, ``FlopCounterMode`` on the whole model built on the meta
  device (no weights allocated), the fallback whenever the model is unsure;
- ``"fvcore"``: ``measure_reference`` (``timm_compound.cost.reference``), fvcore on a real
  model, the independent check.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from timm_compound.cost import model as cost_model
from timm_compound.cost import module_match, stage_reader
from timm_compound.cost.complexity import Complexity, check_sizes, resolve_target, with_norm
from timm_compound.cost.counter import COUNTED_OPS, ShapeCounter
from timm_compound.cost.latency import MAX_SECONDS, LatencySettings, time_model, time_plan
from timm_compound.cost.memory import train_step_memory
from timm_compound.cost.meta import in_chans, meta_build, meta_copy, on_meta, sizes
from timm_compound.errors import CompoundError
from timm_compound.scaling.meta_device import gc_paused
from timm_compound.scaling.plan import ScalePlan

log = logging.getLogger(__name__)


class NoTrainingStep(CompoundError):
    """The model cannot take a training step at this batch and input size (batch norm over one value)."""


METHODS = ("auto", "model", "meta")

stage_reader.install()  # derived layouts' read-backs build skeletons of memoised blocks


def exact_counts(model: nn.Module, batch_size: int, resolution: int) -> tuple[int, int]:
    """(MACs, activations) of one forward of a whole model on meta: FlopCounterMode's conv + linear
    FLOPs halved (it counts a multiply-add as two), and the elements those ops output."""
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    flops, outputs = FlopCounterMode(display=False), ShapeCounter()
    with torch.no_grad(), flops, outputs:
        model(x)
    counts = flops.get_flop_counts().get("Global", {})
    return sum(counts.get(op, 0) for op in COUNTED_OPS) // 2, outputs.elements


def _exact(
    scaled: ScalePlan | None, given: nn.Module | None, resolution: int, batch_size: int, train_memory: bool
) -> Complexity:
    if given is None:
        model = meta_build(scaled)
    elif on_meta(given) and not train_memory:
        model = given  # counted in place (a forward on meta changes nothing); train/eval flags restored below
    else:
        model = meta_copy(given)
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        macs, activations = exact_counts(model, batch_size, resolution)
        memory = _train_memory(model, batch_size, resolution) if train_memory else None
    finally:
        for module, training in flags:
            module.training = training
    params, weight_bytes = sizes(model)
    return Complexity(params, macs, activations, weight_bytes, resolution, batch_size, memory, method="meta")


def _train_memory(model: nn.Module, batch_size: int, resolution: int) -> int:
    try:
        return train_step_memory(model, batch_size, resolution)
    except (ValueError, RuntimeError) as error:  # e.g. batch norm on one value per channel: no step exists
        raise NoTrainingStep(
            f"no training step of this model exists at batch {batch_size}, {resolution} px: {error}"
        ) from None


def _modelled(scaled: ScalePlan, resolution: int, batch_size: int, train_memory: bool) -> Complexity:
    params, macs, activations, weight_bytes = cost_model.counts(scaled, batch_size, resolution)
    memory = cost_model.train_memory(scaled, batch_size, resolution) if train_memory else None
    return Complexity(params, macs, activations, weight_bytes, resolution, batch_size, memory, method="model")


def measure(
    target: str | ScalePlan | nn.Module,
    *,
    resolution: int | None = None,
    batch_size: int = 1,
    train_memory: bool = False,
    method: str = "auto",
    latency: bool = False,
    device: str = "cpu",
    threads: int = 1,
    dtype: str = "float32",
    runtime: str = "eager",
    train: bool = False,
    cache: bool = True,
    max_seconds: float = MAX_SECONDS,
    norm: str | None = None,
) -> Complexity:
    """Params, MACs and activations of a variant, base, plan or model, counted on meta (no weights allocated);
    with `latency`, also timed on this machine. `norm` measures a name or plan built with that norm
    (``scaling.norms``; MACs count convolutions and linear layers, so a norm changes params and timings).

    `method`: ``"auto"`` uses the cost model and falls back to the exact count whenever the
    model cannot vouch for a plan (a family it has not proven, a block it cannot key, a
    module that is not exactly what its `compound_plan` builds); ``"model"`` insists on the
    cost model (an error if it is unsure); ``"meta"`` always counts the whole model with
    FlopCounterMode. The result's ``method`` says which path produced it.

    `latency=True` builds the model with random weights and times a forward pass of `batch_size`
    images on `device` with `threads` torch threads (restored after), in `dtype`, run by `runtime`
    (``eager``, ``compile`` for torch.compile, ``onnxruntime`` with the ``[onnx]`` extra): the result's
    ``latency_ms`` (median), ``latency_ci`` (its 95% interval), ``throughput`` (images per second) and
    ``latency`` (all of it, with where it was measured). `train=True` also times a training step
    (``train_throughput``). Each timing stops when its interval is within 3% of the median or after
    `max_seconds`; timings of plans are kept in the user's cache folder (``cost.latency_cache``) per
    device and settings, unless `cache=False`. A module given as such is timed on a copy, never cached.
    """
    if method not in METHODS:
        raise CompoundError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    settings = None
    if latency:
        settings = LatencySettings.check(
            device=device,
            batch_size=batch_size,
            threads=threads,
            dtype=dtype,
            runtime=runtime,
            max_seconds=max_seconds,
            cache=cache,
        )
    elif train:
        raise CompoundError("train=True times a training step: pass latency=True as well")
    target = with_norm(target, norm)
    with gc_paused():
        cost = _measure(target, resolution, batch_size, train_memory, method)
    if settings is None:
        return cost
    return _timed(cost, target, settings, train)


def _timed(cost: Complexity, target, settings: LatencySettings, train: bool) -> Complexity:
    """The cost with its timings: a plan (or a name) built and cached under its identity; a module copied."""
    scaled, given, resolution = resolve_target(target, cost.resolution)
    if given is not None:
        timings = [
            time_model(given, settings, resolution=resolution, train=mode) for mode in (False, True)[: 1 + train]
        ]
    else:
        timings = [
            time_plan(scaled, settings, resolution=resolution, train=mode) for mode in (False, True)[: 1 + train]
        ]
    return replace(cost, latency=timings[0], train_latency=timings[1] if train else None)


def _measure(target, resolution: int | None, batch_size: int, train_memory: bool, method: str) -> Complexity:
    scaled, given, resolution = resolve_target(target, resolution)
    check_sizes(resolution, batch_size)
    if method != "meta":
        try:
            if given is not None:
                scaled = module_match.plan_of(given)  # None unless the module is exactly its plan's model
                if scaled is None:
                    raise cost_model.Unsure("the module is not exactly the model its compound_plan builds")
            return _modelled(scaled, resolution, batch_size, train_memory)
        except cost_model.Unsure as error:
            if method == "model":
                raise CompoundError(f"the cost model cannot measure this exactly: {error}") from None
            log.debug("cost model unsure (%s): counting the whole model", error)
    return _exact(scaled, given, resolution, batch_size, train_memory)
