"""Where a built model keeps its stages and their blocks: the rule's `stage_modules`, resolved.

`stage_modules` is a path whose children are the stages ('blocks'), a path with a glob segment
standing for each matching child ('stages.*.blocks', 's[0-9]*', 'stage3.*.branches.*': one stage per
parallel branch), a list of one path per stage (an item may hold globs too, or be
`{path, skip | blocks, nested}`: that stage counts only some of its children, or its blocks at any
depth when it is a tree), or
`{path, skip | blocks, split_at}` when not every child of a stage is a block (EfficientFormer's
`Flat`) or the stages are runs of one flat Sequential ended by a pooling layer (VGG's `features`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.scaling.schema import StageModules, StagePart

_GLOB = set("*?[")


def as_spec(where: Any) -> StageModules:
    """A rule's `stage_modules` in its full form."""
    if isinstance(where, StageModules):
        return where
    if isinstance(where, dict):
        return StageModules.model_validate(where)
    return StageModules(path=where)


def _children(model: nn.Module, path: str) -> list[tuple[str, nn.Module]]:
    return list((model.get_submodule(path) if path else model).named_children())


def stage_paths(model: nn.Module, where: Any) -> list[str]:
    """One module path per stage. Not for `split_at` stages, which are runs of children, not modules."""
    spec = as_spec(where)
    if spec.split_at:
        raise CompoundError(
            f"stage_modules splits the children of {spec.path!r} at {spec.split_at}: "
            "its stages are runs of modules, not modules; use stage_blocks"
        )
    if not isinstance(spec.path, str):
        return [
            path for item in spec.path for path in _expand(model, item.path if isinstance(item, StagePart) else item)
        ]
    if not _GLOB & set(spec.path):
        prefix = f"{spec.path}." if spec.path else ""
        return [f"{prefix}{name}" for name, _ in _children(model, spec.path)]
    return _expand(model, spec.path)


def _expand(model: nn.Module, path: str) -> list[str]:
    """A path with glob segments ('stages.*.blocks', 'stage3.*.branches.*'): every matching module path,
    in the model's order; a path without one is itself."""
    parts = path.split(".") if path else []
    glob = next((i for i, part in enumerate(parts) if _GLOB & set(part)), None)
    if glob is None:
        return [path]
    parent, pattern, rest = ".".join(parts[:glob]), parts[glob], ".".join(parts[glob + 1 :])
    prefix = f"{parent}." if parent else ""
    return [
        expanded
        for name, _ in _children(model, parent)
        if fnmatchcase(name, pattern)
        for expanded in _expand(model, f"{prefix}{name}" + (f".{rest}" if rest else ""))
    ]


def _is_block(module: nn.Module, spec: StageModules | StagePart) -> bool:
    kind = type(module).__name__
    if spec.blocks:
        return kind in spec.blocks
    return kind not in spec.skip


def stage_blocks(model: nn.Module, where: Any) -> list[list[tuple[str, nn.Module]]]:
    """(path, module) of every block, stage by stage."""
    spec = as_spec(where)
    if spec.split_at:
        found, current = [], []
        prefix = f"{spec.path}." if spec.path else ""
        for name, child in _children(model, spec.path):
            if type(child).__name__ == spec.split_at:
                found.append(current)
                current = []
            elif _is_block(child, spec):
                current.append((f"{prefix}{name}", child))
        found.append(current)
        return [stage for stage in found if stage]
    if isinstance(spec.path, list):  # each item may expand to several stages and count its own way
        parts = [
            (path, item if isinstance(item, StagePart) else spec)
            for item in spec.path
            for path in _expand(model, item.path if isinstance(item, StagePart) else item)
        ]
    else:
        parts = [(path, spec) for path in stage_paths(model, spec)]
    return [_blocks(model, path, part) for path, part in parts]


def _blocks(model: nn.Module, path: str, spec: StageModules | StagePart) -> list[tuple[str, nn.Module]]:
    """A stage's blocks: its children that are blocks, or with `nested` every `blocks` module below it."""
    if spec.nested:
        stage = model.get_submodule(path)
        return [
            (f"{path}.{name}", module) for name, module in stage.named_modules() if name and _is_block(module, spec)
        ]
    return [(f"{path}.{name}", child) for name, child in _children(model, path) if _is_block(child, spec)]


def stage_modules(model: nn.Module, where: Any) -> list[nn.Module]:
    """The stage modules a rule's `stage_modules` names (see stage_paths)."""
    return [model.get_submodule(path) for path in stage_paths(model, where)]


def stage_depths(model: nn.Module, plan: Any) -> list[int]:
    """Blocks per stage in a built model (a ScalePlan's rule says where they are)."""
    where = plan.rule.stage_modules
    if where is None:
        raise CompoundError(f"rule {plan.rule_file} has no stage_modules to verify against")
    return [len(blocks) for blocks in stage_blocks(model, where)]
