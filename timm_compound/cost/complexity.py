"""What a measurement returns (`Complexity`), and what it can be asked to measure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch.nn as nn

from timm_compound.cost.latency import Latency
from timm_compound.errors import CompoundError
from timm_compound.scaling import norms
from timm_compound.scaling.catalog import lookup
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.plan import plan as make_plan


@dataclass(frozen=True)
class Complexity:
    """The measured cost of one model at one input size and batch size."""

    params: int
    macs: int  # conv + linear multiply-adds for the whole batch (forward)
    activations: int  # elements output by conv + linear ops (fvcore's ActivationCountAnalysis)
    weight_bytes: int  # parameters + buffers, as a state_dict holds them
    resolution: int
    batch_size: int
    train_memory_bytes: int | None = None  # peak of one SGD-momentum training step (cost.memory's timeline)
    # which path counted: "model" (the cost model), "meta" (FlopCounterMode on the whole model built on
    # meta) or "fvcore" (measure_reference, a real model); the numbers agree, so equality ignores it
    method: str = field(default="meta", compare=False)
    per_stage: dict[str, int] | None = field(default=None, compare=False)
    # measured on this machine (measure(latency=True)): a forward pass, and with train=True a training step
    latency: Latency | None = field(default=None, compare=False)
    train_latency: Latency | None = field(default=None, compare=False)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6

    @property
    def train_memory_mib(self) -> float | None:
        return None if self.train_memory_bytes is None else self.train_memory_bytes / 2**20

    @property
    def latency_ms(self) -> float | None:
        """Median milliseconds of a forward pass of the whole batch (`latency` says where and how)."""
        return None if self.latency is None else self.latency.median_ms

    @property
    def latency_ci(self) -> tuple[float, float] | None:
        """The 95% interval of that median, in milliseconds."""
        return None if self.latency is None else self.latency.ci_ms

    @property
    def throughput(self) -> float | None:
        """Images per second of inference at the timed batch size."""
        return None if self.latency is None else self.latency.throughput

    @property
    def train_throughput(self) -> float | None:
        """Images per second of training (forward, backward, SGD step) at the timed batch size."""
        return None if self.train_latency is None else self.train_latency.throughput

    def to_dict(self) -> dict[str, Any]:
        found = {**asdict(self), "gmacs": self.gmacs, "mparams": self.mparams}
        for name in ("latency", "train_latency"):
            timing = getattr(self, name)
            found[name] = None if timing is None else timing.to_dict()
        found.update(latency_ms=self.latency_ms, throughput=self.throughput, train_throughput=self.train_throughput)
        return found


def resolve_target(
    target: str | ScalePlan | nn.Module, resolution: int | None
) -> tuple[ScalePlan | None, nn.Module | None, int]:
    """(plan, model, resolution) from a variant name, a base name, a plan or a built model."""
    if isinstance(target, str):
        base, phi = lookup(target)
        target = make_plan(base, 0 if phi is None else phi)
    if isinstance(target, ScalePlan):
        return target, None, target.resolution if resolution is None else resolution
    if isinstance(target, nn.Module):
        scaled = getattr(target, "compound_plan", None)
        if resolution is None and scaled is not None:
            resolution = scaled.resolution
        if resolution is None:
            size = (getattr(target, "pretrained_cfg", None) or {}).get("input_size")
            resolution = size[-1] if size else None
        if resolution is None:
            raise CompoundError("cannot tell this model's input size: pass resolution=")
        return None, target, resolution
    raise CompoundError(
        f"measure() takes a variant or base name, a ScalePlan or an nn.Module, got {type(target).__name__}"
    )


def with_norm(target: str | ScalePlan | nn.Module, norm: str | None) -> str | ScalePlan | nn.Module:
    """`target` built with `norm` (None: as it is): a name or plan is re-planned; a built model must have it."""
    if norm is None:
        return target
    if isinstance(target, str):
        base, phi = lookup(target)
        return make_plan(base, 0 if phi is None else phi, norm=norm)
    if isinstance(target, ScalePlan):
        return norms.with_norm(target, norm)
    built = getattr(getattr(target, "compound_plan", None), "norm", "batch")
    if norm != built:
        raise CompoundError(f"norm={norm!r}: this model is already built, with {built} norm")
    return target


def check_sizes(resolution: int, batch_size: int) -> None:
    for name, value in (("resolution", resolution), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CompoundError(f"{name} must be a positive int, got {value!r}")
