"""Which block of the grown model inherits which block of the base, stage by stage.

The rule's `stage_modules` locates the stages in both models. Within a stage the base's blocks are
matched in order to the grown blocks of the same kind (class and kernel shapes), the earliest
first, so the blocks a plan adds come after the inherited ones (or, where timm spreads a stage's
extra blocks over several block types, after the last inherited block of their type); every
unmatched grown block is new and starts as the identity (`timm_compound.inherit.deepen`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.scaling.stages import stage_blocks


@dataclass(frozen=True)
class Alignment:
    """grown block path -> the base block path it inherits, and the new grown blocks, in order."""

    inherited: dict[str, str]
    new: list[str]

    def base_name(self, name: str) -> str | None:
        """The base tensor a grown parameter or buffer comes from (same name outside the stages);
        None inside a new block."""
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in self.inherited:
                return ".".join([self.inherited[prefix], *parts[cut:]])
            if prefix in self.new:
                return None
        return name


def _kernel_shapes(block: nn.Module) -> dict[str, tuple[int, ...]]:
    """Each parameter's rank and its sizes past the first two dimensions (a conv's kernel), which
    widening never changes."""
    return {name: (p.dim(), *p.shape[2:]) for name, p in block.named_parameters()}


def _same_kind(base: nn.Module, grown: nn.Module) -> bool:
    if type(base) is not type(grown):
        return False
    grown_shapes = _kernel_shapes(grown)
    return all(grown_shapes.get(name) == shape for name, shape in _kernel_shapes(base).items())


def align(base: nn.Module, grown: nn.Module, stage_modules, where: str) -> Alignment:
    """Match the base's blocks to the grown model's, stage by stage (see the module docstring)."""
    base_stages, grown_stages = stage_blocks(base, stage_modules), stage_blocks(grown, stage_modules)
    if len(base_stages) != len(grown_stages):
        raise CompoundError(f"{where}: the base has {len(base_stages)} stages and the grown model {len(grown_stages)}")
    inherited: dict[str, str] = {}
    new: list[str] = []
    for index, (old, grown_blocks) in enumerate(zip(base_stages, grown_stages)):
        taken = 0
        for k, (path, block) in enumerate(grown_blocks):
            left_base, left_grown = len(old) - taken, len(grown_blocks) - k
            if taken < len(old) and _same_kind(old[taken][1], block):
                inherited[path] = old[taken][0]
                taken += 1
            elif left_grown > left_base:
                new.append(path)
            else:
                base_path, base_block = old[taken]
                raise CompoundError(
                    f"{where}: stage {index + 1} of {len(base_stages)} cannot be grown block for block: {path} "
                    f"({type(block).__name__}) does not match the base's {base_path} "
                    f"({type(base_block).__name__}) and no later block can"
                )
        if taken < len(old):
            raise CompoundError(
                f"{where}: stage {index + 1} of {len(base_stages)} keeps only {taken} of the base's {len(old)} blocks"
            )
    return Alignment(inherited, new)
