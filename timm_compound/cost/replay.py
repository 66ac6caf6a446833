"""Counting a memoised call once: record its conv + linear MACs, output elements and output shapes
for an input signature, then replay them without running anything.

Used for the cost model's stubs (one block) and for plain ``nn.Sequential`` containers whose
children are all stubs (a whole stage: one lookup instead of one per block).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from timm_compound.cost.counter import ShapeCounter, replay, spec_of
from timm_compound.cost.keys import Unkeyable, signature

MAX_RUNS = 65536  # distinct (call, input signature) traces kept


@dataclass
class Run:
    macs: int
    elements: int
    outputs: Any  # the output's shape signature, or None when it cannot be replayed


_runs: OrderedDict[tuple, Run] = OrderedDict()


def counted(key: tuple, training: bool, counter: ShapeCounter, args: tuple, kwargs: dict, run: Callable[[], Any]):
    """`run()`'s output, counted into `counter`; replayed when this call was seen with these shapes."""
    try:
        run_key = (key, signature(args), signature(kwargs), training, torch.is_grad_enabled())
    except Unkeyable:
        run_key = None
    found = _runs.get(run_key) if run_key is not None else None
    if found is not None and found.outputs is not None:
        counter.add(found.macs, found.elements)
        return replay(found.outputs)
    counter.open()
    try:
        out = run()
    finally:
        macs, elements = counter.close()
    if run_key is not None:
        _runs[run_key] = Run(macs, elements, spec_of(out))
        if len(_runs) > MAX_RUNS:
            _runs.popitem(last=False)
    return out


def clear() -> None:
    _runs.clear()
