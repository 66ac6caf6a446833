"""How big a plan is, and the sizes past which building, measuring or loading it is refused.

Rounding makes even absurd multipliers into valid-looking plans: `plan("resnet18", d=1e9)` asks for
two billion blocks a stage, `phi=100` for 165 million. Such a plan is refused before anything is
built or allocated, with an error that states its size; `allow_oversize=True` is the explicit
override for a caller who means it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from timm_compound.errors import CompoundError

MAX_BLOCKS_PER_STAGE = 10_000
MAX_RESOLUTION = 8_192


@dataclass(frozen=True)
class PlanSize:
    """What a plan asks for: the deepest stage, all blocks, the widest stage, the input size, and a
    lower bound on its parameters (every block holds at least a quarter of width² weights)."""

    max_stage_blocks: int
    total_blocks: int
    widest: int
    resolution: int
    min_params: int

    def __str__(self) -> str:
        return (
            f"{self.max_stage_blocks:,} blocks in its deepest stage ({self.total_blocks:,} in all), "
            f"widest stage {self.widest:,} channels, {self.resolution:,} px, "
            f"at least {self.min_params:,} parameters"
        )


def size_of(depths: list[int], widths: list[int], resolution: int) -> PlanSize:
    widths = widths or [0] * len(depths)
    return PlanSize(
        max_stage_blocks=max(depths, default=0),
        total_blocks=sum(depths),
        widest=max(widths, default=0),
        resolution=resolution,
        min_params=sum(d * w * w for d, w in zip(depths, widths)) // 4,
    )


def memory_bytes() -> int | None:
    """The memory this process may use: the machine's physical memory, or less where a cgroup limit
    (a container, a systemd slice) or an address-space / data rlimit says so; None where nothing says."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            limits.append(int(text))
    try:
        import resource

        for which in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            soft, _ = resource.getrlimit(which)
            if soft != resource.RLIM_INFINITY and soft > 0:
                limits.append(soft)
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return min(limits) if limits else None


def check(size: PlanSize, what: str, *, allocates: bool = False, allow_oversize: bool = False) -> None:
    """Refuse a plan above the limits, naming its size. `allocates`: real weights are about to be
    made, so a plan whose float32 parameters alone exceed the memory this process may use is refused
    too (`check_memory` then counts them exactly when this lower bound is too close to tell)."""
    if allow_oversize:
        return
    problems = []
    if size.max_stage_blocks > MAX_BLOCKS_PER_STAGE:
        problems.append(f"{size.max_stage_blocks:,} blocks in a stage (limit {MAX_BLOCKS_PER_STAGE:,})")
    if size.resolution > MAX_RESOLUTION:
        problems.append(f"{size.resolution:,} px input (limit {MAX_RESOLUTION:,})")
    memory = memory_bytes() if allocates else None
    if memory is not None and size.min_params * 4 > memory:
        problems.append(
            f"at least {size.min_params:,} parameters, more than this machine's {_gib(memory)} hold as float32"
        )
    if problems:
        raise CompoundError(
            f"{what} is too large: {'; '.join(problems)}; pass allow_oversize=True if you really mean it"
        )


# when the lower bound on a plan's weights is within this factor of the memory, they are counted exactly
EXACT_COUNT_FACTOR = 64


def needs_exact_count(size: PlanSize) -> bool:
    """The lower bound cannot vouch for the plan: its weights might not fit (count them on the meta device)."""
    memory = memory_bytes()
    return memory is not None and size.min_params * 4 * EXACT_COUNT_FACTOR > memory


def check_memory(weight_bytes: int, what: str) -> None:
    """Refuse, before allocating, a model whose parameters and buffers (counted exactly) exceed the memory
    this process may use."""
    memory = memory_bytes()
    if memory is not None and weight_bytes > memory:
        raise CompoundError(
            f"{what} is too large: its weights take {weight_bytes / 2**30:,.1f} GiB, more than "
            f"the {_gib(memory)} this process may use; pass allow_oversize=True if you really mean it"
        )


def _gib(memory: int) -> str:
    return f"{memory / 2**30:.0f} GiB" if memory >= 2**30 else f"{memory / 2**30:.2f} GiB"
