"""`timm-compound rules coverage`: which of timm's convolutional model modules a loaded rule covers.

A timm module (`timm.models.resnet`, `timm.models.byobnet`, ...) is convolutional here when its first
model, built on the meta device, has at least CONVOLUTIONS Conv2d layers: a vision transformer's patch
embedding is one, a hybrid's stem a few. A module is covered when a loaded rule (shipped or user)
covers at least one of its architectures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import timm
import torch

from timm_compound.scaling.meta_device import fast_meta
from timm_compound.scaling.rulebook import RuleBook, active_rules
from timm_compound.scaling.timm_adapter import PLUGIN_MODULE

CONVOLUTIONS = 8


@dataclass(frozen=True)
class ModuleCoverage:
    module: str
    convolutions: int
    covered: tuple[str, ...]  # the module's architectures a rule covers
    families: tuple[str, ...]  # the rules' families

    @property
    def is_covered(self) -> bool:
        return bool(self.covered)


def _convolutions(name: str) -> int:
    with warnings.catch_warnings(), fast_meta():
        warnings.simplefilter("ignore")
        model = timm.create_model(name)
    return sum(isinstance(module, torch.nn.Conv2d) for module in model.modules())


def coverage(rules: RuleBook | None = None, modules: list[str] | None = None) -> list[ModuleCoverage]:
    """One entry per convolutional timm module (of `modules`, default all), in timm's order."""
    book = rules or active_rules()
    found = []
    for module in modules or timm.list_modules():
        names = timm.list_models(module=module)
        if module == PLUGIN_MODULE or not names:
            continue
        try:
            convolutions = _convolutions(names[0])
        except Exception:
            continue
        if convolutions < CONVOLUTIONS:
            continue
        covered = tuple(name for name in names if name in book.rules)
        families = tuple(sorted({book.rules[name][0].family for name in covered}))
        found.append(ModuleCoverage(module, convolutions, covered, families))
    return found
