"""Reading a derived layout's stages from a skeleton: the constructor runs with the family's blocks
memoised (``timm_compound.cost.blocks``), so a read-back costs what a cost-model skeleton costs.

`multiplier` and `fields` plans learn their depths and widths from a build
(``timm_compound.scaling.readback``); a fit plans hundreds of them. The first read-back of a base is
a full build and names the block classes; later ones build a skeleton and read its stages: stubs are
instances of the same classes, and a stub's output has the shape its template (a real block built
with the same arguments) gives for that input. Anything the skeleton cannot vouch for (a build that
taints a stub, an error) returns None and the full build answers, errors included.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from timm_compound.cost import blocks
from timm_compound.cost import model as cost_model
from timm_compound.cost.counter import ShapeCounter
from timm_compound.scaling import readback
from timm_compound.scaling.schema import Rule

_classes: dict[tuple[str, str], list[type]] = {}


def read(
    base: str, rule: Rule, construct: Callable[[], nn.Module], read_stages: Callable[[nn.Module], readback.Stages]
) -> readback.Stages | None:
    key = (base, cost_model.rule_id(rule))
    with cost_model._lock:
        classes = _classes.get(key)
        if classes is None:  # the base's first read-back: a full build, which also names the block classes
            model = construct()
            found = read_stages(model)
            _classes[key] = cost_model.block_classes(model, rule.stage_modules)
            return found
        if not classes:
            return None
        try:
            with blocks.stubbing(classes) as taints:
                model = construct()
                blocks.check_templates(taints)
            if taints:
                return None
            counter = ShapeCounter(memo=True)
            with counter, blocks.counting(counter):
                return read_stages(model)
        except Exception:
            return None


def install() -> None:
    readback.use_fast_reader(read)
    cost_model.on_clear(clear)


def clear() -> None:
    with cost_model._lock:
        _classes.clear()
