"""Measured latency and throughput: what a model costs in milliseconds on this machine.

MACs are the theoretical cost; users pay in time, and the two part ways where hardware sits idle
(depthwise convolutions do few MACs per byte moved). So a model is timed for real, with
``torch.utils.benchmark.Timer``: a warm-up (at least WARMUP_RUNS runs and WARMUP_SECONDS, or a
quarter of the cap if that is less) that also sizes the blocks (BLOCK_SECONDS of runs, at least
one), then blocks until the 95% interval of the median block time lies within ``precision`` (3%) of the
median, or ``max_seconds`` has passed (the result then says so: ``converged`` is False). The
interval is the distribution-free one of the median (scipy's ``quantile_test``), so at least
MIN_BLOCKS blocks are timed whatever the cap. torch's threads are set as asked and restored.

Every number travels with where it was measured (`Latency.describe`): device, threads, batch,
dtype, runtime and the interval.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn

from timm_compound.cost import latency_cache, runtimes
from timm_compound.cost.meta import in_chans, on_meta
from timm_compound.errors import CompoundError, CompoundWarning
from timm_compound.scaling.build import build
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.structure import extra_inputs

PRECISION = 0.03  # stop when both ends of the median's 95% interval are within 3% of it
CONFIDENCE = 0.95
MIN_BLOCKS = 6  # the fewest blocks with a 95% interval of the median (1 - 2 / 2**6 = 0.969)
WARMUP_RUNS = 2
WARMUP_SECONDS = 0.25
BLOCK_SECONDS = 0.02  # a block runs the model this long (at least once): the timer's overhead is then negligible
MAX_SECONDS = 10.0  # the default time cap of one measurement (warm-up included)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MODES = ("inference", "train")


@dataclass(frozen=True)
class LatencySettings:
    """Where and how a model is timed; `check` validates and caps them (built once, shared by a table or a fit)."""

    device: str = "cpu"
    batch_size: int = 1
    threads: int = 1
    dtype: str = "float32"
    runtime: str = "eager"
    max_seconds: float = MAX_SECONDS
    precision: float = PRECISION
    cache: bool = True

    @classmethod
    def check(
        cls,
        *,
        device: str = "cpu",
        batch_size: int = 1,
        threads: int = 1,
        dtype: str = "float32",
        runtime: str = "eager",
        max_seconds: float = MAX_SECONDS,
        precision: float = PRECISION,
        cache: bool = True,
    ) -> LatencySettings:
        """Clear errors for bad settings; threads above this machine's cores are warned about and capped."""
        _positive_int("batch_size", batch_size)
        _positive_int("threads", threads)
        for name, value in (("max_seconds", max_seconds), ("precision", precision)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise CompoundError(f"{name} must be a finite number > 0, got {value!r}")
        if dtype not in DTYPES:
            raise CompoundError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        device = check_device(device)
        runtimes.check(runtime, device, dtype)
        cores = available_cores()
        if threads > cores:
            warnings.warn(
                f"threads={threads} is more than this machine's {cores} cores: timing with {cores}",
                CompoundWarning,
                stacklevel=3,
            )
            threads = cores
        return cls(device, batch_size, threads, dtype, runtime, float(max_seconds), float(precision), bool(cache))

    def where(self) -> str:
        """'cpu (AMD EPYC), 1 thread, batch 1, float32, eager': what every shown latency is said with."""
        threads = f"{self.threads} thread" + ("s" if self.threads != 1 else "")
        return f"{self.device} ({device_name(self.device)}), {threads}, batch {self.batch_size}, {self.dtype}, {self.runtime}"


@dataclass(frozen=True)
class Latency:
    """One timing: the median time of a step over blocks of runs, its 95% interval, and where it was taken.

    `mode` is "inference" (a forward pass without gradients) or "train" (forward, backward and an
    SGD step). `converged` is False when the time cap stopped the timing before the interval was
    within `precision` of the median. `times` are the seconds per run of each block (what the
    median and interval come from; a re-measurement pools with them).
    """

    median_ms: float
    ci_ms: tuple[float, float]
    batch_size: int
    device: str
    device_name: str
    threads: int
    dtype: str
    runtime: str
    mode: str
    resolution: int
    blocks: int
    runs: int
    seconds: float
    converged: bool
    max_seconds: float
    precision: float
    cached: bool = False
    times: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @property
    def throughput(self) -> float:
        """Images per second at this batch size."""
        return self.batch_size * 1000.0 / self.median_ms

    @property
    def spread(self) -> float:
        """How far the interval reaches from the median, as a fraction of it (the stopping rule's measure)."""
        low, high = self.ci_ms
        return max(self.median_ms - low, high - self.median_ms) / self.median_ms

    def describe(self) -> str:
        """The median with its interval and everything it depends on, as one line."""
        low, high = self.ci_ms
        threads = f"{self.threads} thread" + ("s" if self.threads != 1 else "")
        what = "training step" if self.mode == "train" else "inference"
        text = (
            f"{self.median_ms:.4g} ms (95% interval {low:.4g}-{high:.4g}) per {what} on {self.device} "
            f"({self.device_name}), {threads}, batch {self.batch_size}, {self.resolution} px, {self.dtype}, "
            f"{self.runtime}"
        )
        if not self.converged:
            text += f"; stopped by the {self.max_seconds:g} s cap at ±{self.spread:.1%}"
        return text

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found.pop("times")
        found["ci_ms"] = list(self.ci_ms)
        found["throughput"] = self.throughput
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any], times: list[float] | None = None) -> Latency:
        fields = {key: data[key] for key in cls.__dataclass_fields__ if key in data and key != "times"}
        fields["ci_ms"] = tuple(fields["ci_ms"])
        return cls(**fields, times=tuple(times or ()))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CompoundError(f"{name} must be a positive int, got {value!r}")
    return value


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_device(device: Any) -> str:
    """'cpu', 'cuda' or 'cuda:N', as a torch device name; a GPU that is not there is a clear error."""
    if not isinstance(device, str):
        raise CompoundError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise CompoundError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type != "cuda":
        raise CompoundError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not torch.cuda.is_available():
        raise CompoundError(
            f"device {device!r}: no CUDA GPU is available here (torch.cuda.is_available() is "
            "False); time on --device cpu"
        )
    index = torch.cuda.current_device() if parsed.index is None else parsed.index
    if index >= torch.cuda.device_count():
        raise CompoundError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return f"cuda:{index}"


@functools.cache
def device_name(device: str) -> str:
    """The CPU's model or the GPU's name: part of every timing's description and of the cache key."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def fingerprint(settings: LatencySettings, mode: str, model: dict[str, Any]) -> dict[str, Any]:
    """What a timing depends on: the device (its name and this machine's cores), the software, the
    settings and the model (`model`: `plan_identity`'s dict, or any dict that names a network)."""
    import timm

    found = {
        "device": settings.device,
        "device_name": device_name(settings.device),
        "cores": available_cores(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "threads": settings.threads,
        "dtype": settings.dtype,
        "runtime": settings.runtime,
        "batch_size": settings.batch_size,
        "mode": mode,
        "model": model,
    }
    if settings.runtime == "onnxruntime":
        found["onnxruntime"] = runtimes.onnxruntime_version()
    return found


def plan_identity(plan: ScalePlan, resolution: int | None = None, num_classes: int | None = None) -> dict[str, Any]:
    """Everything that decides the network a plan builds and the input it is timed on (not phi or the
    multipliers: plans that round to the same network share a timing)."""
    rule = plan.rule.model_dump(mode="json", exclude={"coefficients", "constraint", "description"})
    return {
        "base": plan.base,
        "rule": rule,
        "depths": list(plan.depths),
        "widths": list(plan.widths),
        "stem": plan.stem,
        "head": plan.head,
        "structure_args": plan.structure_args,
        "constructor_args": plan.constructor_args,
        "extra_inputs": repr(extra_inputs(plan)),
        "resolution": plan.resolution if resolution is None else resolution,
        "num_classes": num_classes,
    }


def time_plan(
    plan: ScalePlan,
    settings: LatencySettings,
    *,
    resolution: int | None = None,
    train: bool = False,
    num_classes: int | None = None,
    pooled_with: Latency | None = None,
    fresh: bool = False,
) -> Latency:
    """The plan's model built with random weights (and `num_classes` when given) and timed; the
    result is read from (unless `fresh`) and written to the cache under the plan's identity."""
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    return time_model(
        lambda: build(plan, **kwargs),
        settings,
        resolution=plan.resolution if resolution is None else resolution,
        train=train,
        identity=plan_identity(plan, resolution, num_classes),
        pooled_with=pooled_with,
        fresh=fresh,
    )


def time_model(
    make: Callable[[], nn.Module] | nn.Module,
    settings: LatencySettings,
    *,
    resolution: int,
    train: bool = False,
    identity: dict[str, Any] | None = None,
    pooled_with: Latency | None = None,
    fresh: bool = False,
) -> Latency:
    """Time a model (`make` builds it, or a module, copied first so the caller's is left as it was).

    With an `identity` and `settings.cache`, a stored timing under the same fingerprint is returned
    (``cached=True``) when it converged or was allowed at least as long; `pooled_with` (an earlier
    timing of the same model) adds new blocks to its own and never reads the cache; nor does `fresh`.
    """
    mode = "train" if train else "inference"
    key = None if identity is None or not settings.cache else fingerprint(settings, mode, identity)
    if key is not None and pooled_with is None and not fresh:
        found = _stored(key)
        if found is not None and (found.converged or found.max_seconds >= settings.max_seconds):
            return replace(found, cached=True)
    module = make() if callable(make) and not isinstance(make, nn.Module) else copy.deepcopy(make)
    measured = _time_module(module, settings, resolution, mode, pooled_with)
    if key is not None:
        latency_cache.store(key, {"result": measured.to_dict(), "times": list(measured.times)})
    return measured


def _stored(key: dict[str, Any]) -> Latency | None:
    """The kept timing under this fingerprint, or None (none kept, or a record this version cannot read)."""
    stored = latency_cache.load(key)
    try:
        return None if stored is None else Latency.from_dict(stored["result"], stored.get("times"))
    except (KeyError, TypeError, ValueError):
        return None


def _time_module(
    model: nn.Module, settings: LatencySettings, resolution: int, mode: str, pooled_with: Latency | None
) -> Latency:
    if on_meta(model) and any(True for _ in model.parameters()):
        raise CompoundError("cannot time a model on the meta device: it has no weights (build it on a real device)")
    started = time.perf_counter()
    with runtimes.torch_threads(settings.threads):
        dtype = DTYPES[settings.dtype]
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(settings.batch_size, in_chans(model), resolution, resolution, generator=generator)
        x = x.to(device=settings.device, dtype=dtype)
        model = model.to(device=settings.device, dtype=dtype)
        try:
            step = (
                runtimes.train_step(model, x, settings.runtime)
                if mode == "train"
                else runtimes.inference_step(model, x, settings.runtime, settings.threads)
            )
            times, runs = _blocks(step, settings, started, pooled_with, train=mode == "train")
        except (RuntimeError, ValueError, NotImplementedError) as error:
            if isinstance(error, CompoundError):
                raise
            raise CompoundError(
                f"cannot time this model ({mode}, {settings.where()}, {resolution} px): "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
            ) from None
    median, low, high = median_interval(times)
    spread = max(median - low, high - median) / median
    previous = 0.0 if pooled_with is None else pooled_with.seconds
    return Latency(
        median_ms=median * 1e3,
        ci_ms=(low * 1e3, high * 1e3),
        batch_size=settings.batch_size,
        device=settings.device,
        device_name=device_name(settings.device),
        threads=settings.threads,
        dtype=settings.dtype,
        runtime=settings.runtime,
        mode=mode,
        resolution=resolution,
        blocks=len(times),
        runs=runs + (0 if pooled_with is None else pooled_with.runs),
        seconds=previous + time.perf_counter() - started,
        converged=spread <= settings.precision,
        max_seconds=settings.max_seconds,
        precision=settings.precision,
        times=tuple(times),
    )


def _blocks(
    step: Callable[[], Any], settings: LatencySettings, started: float, pooled_with: Latency | None, *, train: bool
) -> tuple[list[float], int]:
    """(seconds per run of each block, runs timed): blocks of runs until the median's interval is within
    the precision asked, or the cap has passed and there are at least MIN_BLOCKS blocks."""
    sync = (lambda: torch.cuda.synchronize(settings.device)) if settings.device.startswith("cuda") else (lambda: None)
    times = list(pooled_with.times) if pooled_with is not None else []
    runs = 0
    with torch.enable_grad() if train else torch.no_grad():
        warm, seconds = time.perf_counter(), []
        while len(seconds) < WARMUP_RUNS or time.perf_counter() - warm < min(WARMUP_SECONDS, settings.max_seconds / 4):
            begun = time.perf_counter()
            step()
            sync()
            seconds.append(time.perf_counter() - begun)
        per_run = sorted(seconds[1:])[len(seconds[1:]) // 2]  # the first run pays for lazy set-up
        number = max(1, math.ceil(BLOCK_SECONDS / max(per_run, 1e-9)))
        timer = _timer_class()(stmt="step()", globals={"step": step}, num_threads=settings.threads)
        deadline = started + settings.max_seconds
        while True:
            times.append(_block(timer, number))
            runs += number
            if len(times) >= MIN_BLOCKS:
                median, low, high = median_interval(times)
                if max(median - low, high - median) <= settings.precision * median or time.perf_counter() >= deadline:
                    break
    return times, runs


def _block(timer, number: int) -> float:
    """Seconds per run of one block of `number` runs, timed by the Timer (which synchronises a GPU).

    ``Timer.timeit`` would first run max(number // 100, 2) runs as a warm-up of its own (three times
    the cost of a one-run block), and ``blocked_autorange`` sizes its blocks anew on every call: the
    block loop both use, ``_timeit``, is called directly where this torch has it."""
    block_loop = getattr(timer, "_timeit", None)
    if block_loop is None:
        return timer.timeit(number).times[0]
    return block_loop(number) / number


def _timer_class():
    """torch.utils.benchmark.Timer, imported without the warning its C++ helpers log on a machine that has
    CUDA_HOME set but no GPU (nothing here compiles C++)."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        logger.setLevel(level)
    return Timer


def median_interval(times: list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    """(median, low, high): the sample median and its distribution-free 95% interval (the order
    statistics a binomial distribution puts around it: scipy.stats.quantile_test)."""
    import numpy as np
    from scipy.stats import quantile_test

    values = np.asarray(times, dtype=float)
    if len(values) < MIN_BLOCKS:
        raise CompoundError(f"a 95% interval of the median needs at least {MIN_BLOCKS} blocks, got {len(values)}")
    median = float(np.median(values))
    interval = quantile_test(values, q=median, p=0.5).confidence_interval(CONFIDENCE)
    return median, float(interval.low), float(interval.high)
