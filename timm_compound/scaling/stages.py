"""Where a built model keeps its stages: the rule's `stage_modules`, resolved to module paths."""

from __future__ import annotations

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.scaling.plan import ScalePlan


def stage_depths(model: nn.Module, plan: ScalePlan) -> list[int]:
    """Blocks per stage in a built model, found through the rule's `stage_modules`."""
    where = plan.rule.stage_modules
    if where is None:
        raise CompoundError(f"rule {plan.rule_file} has no stage_modules to verify against")
    return [len(stage) for stage in stage_modules(model, where)]


def stage_paths(model: nn.Module, where: str | list[str]) -> list[str]:
    """Resolve a rule's `stage_modules` to one module path per stage: a list of paths as given,
    a path whose children are the stages ('blocks'), or a path with one '*' standing for each
    child ('stages.*.blocks')."""
    if not isinstance(where, str):
        return list(where)
    parent, star, rest = where.partition("*")
    parent = parent.rstrip(".")
    children = [name for name, _ in (model.get_submodule(parent) if parent else model).named_children()]
    prefix = f"{parent}." if parent else ""
    if not star:
        return [f"{prefix}{name}" for name in children]
    suffix = rest if rest.startswith(".") or not rest else f".{rest}"
    return [f"{prefix}{name}{suffix}" for name in children]


def stage_modules(model: nn.Module, where: str | list[str]) -> list[nn.Module]:
    """The stage modules a rule's `stage_modules` names (see stage_paths)."""
    return [model.get_submodule(path) for path in stage_paths(model, where)]
