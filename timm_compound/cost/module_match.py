"""Is a built module exactly the model its `compound_plan` describes? Then the cost model may count it.

`rules check`, model cards and users pass built modules to ``measure``. A module built from a
plan and left as built has the same structure as the plan's skeleton with every stub replaced
by its template: the same classes, attributes, parameter and buffer shapes and children, all
the way down (``keys.fingerprint``). Anything else (a swapped layer, a custom block, another
`num_classes`, a hook) fails the comparison and is counted exactly.
"""

from __future__ import annotations

import torch.nn as nn

from timm_compound.cost import blocks
from timm_compound.cost import model as cost_model
from timm_compound.cost.keys import Unkeyable, fingerprint
from timm_compound.scaling.plan import ScalePlan

# what timm and timm-compound attach to a model for bookkeeping; its forward never reads them
_BOOKKEEPING = frozenset({"compound_plan", "pretrained_cfg", "default_cfg", "feature_info", "_model_args"})


def _template(module: nn.Module) -> nn.Module:
    return blocks.template_of(module).module if blocks.is_stub(module) else module


def plan_of(model: nn.Module) -> ScalePlan | None:
    """The module's `compound_plan` when the module is exactly what that plan builds, else None."""
    scaled = getattr(model, "compound_plan", None)
    if not isinstance(scaled, ScalePlan):
        return None
    skeleton = cost_model.skeleton(scaled)
    try:
        same = fingerprint(model, ignore=_BOOKKEEPING) == fingerprint(skeleton.model, _template, _BOOKKEEPING)
    except Unkeyable:
        return None
    return scaled if same else None
