"""A memoised block's part of the training-memory timeline (``timm_compound.cost.memory``).

The first time a block runs in training mode with a given input signature, its
template is traced on its own: its units, with the storages of its inputs and output
taken out of their `saved` bytes and remembered as "saved by unit k". Each later call
appends those units to the model's timeline and claims the actual input and output
storages there, so a tensor that two neighbouring blocks both save counts once, as it
does in a trace of the whole model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn

from timm_compound.cost.counter import replay, spec_of
from timm_compound.cost.keys import Unkeyable, signature
from timm_compound.cost.memory import Unit, UnitTracer, storage_id

MAX_PROFILES = 65536


@dataclass
class Profile:
    units: list[Unit]  # [0]: what the block does before its first unit; saved bytes exclude inputs and outputs
    inputs_saved: list[tuple[int, int]]  # (position among the tensor inputs, unit that saved it)
    outputs_saved: list[tuple[int, int]]  # (position among the tensor outputs, unit that saved it)
    outputs: object  # spec_of the output, or None when it aliases an input
    requires_grad: list[bool]


_profiles: OrderedDict[tuple, Profile] = OrderedDict()


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _profile(template: nn.Module, args, kwargs) -> tuple[Profile, object]:
    inputs = _tensors((args, kwargs))
    tracer = UnitTracer(template)
    tracer.units.append(Unit(0, 0, 0))  # ops before the block's first unit belong to the unit before the block
    with tracer:
        out = template(*args, **kwargs)
    outputs = _tensors(out)
    units = [unit.copy() for unit in tracer.units]
    saved_by = tracer.first_saved

    def take(tensors: list[torch.Tensor]) -> list[tuple[int, int]]:
        taken = []
        for position, tensor in enumerate(tensors):
            index = saved_by.pop(storage_id(tensor), None)
            if index is not None:
                units[index].saved -= tensor.untyped_storage().nbytes()
                taken.append((position, index))
        return taken

    input_storages = {storage_id(t) for t in inputs}
    aliased = any(storage_id(t) in input_storages for t in outputs)
    profile = Profile(
        units, take(inputs), take(outputs), None if aliased else spec_of(out), [t.requires_grad for t in outputs]
    )
    return profile, out


def _replayed(profile: Profile):
    """The block's output again, without running it. An output that requires grad is made a non-leaf
    (`leaf * 1`: saves nothing for backward, so the timeline is unchanged), as the block's own output
    is: a leaf would refuse the next block's in-place op (VGG's ConvMlp: ReLU(inplace) after fc1)."""
    flags = iter(profile.requires_grad)

    def produced(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.requires_grad_() * 1 if next(flags) else tensor

    return _map_tensors(replay(profile.outputs), produced)


def _map_tensors(value, fn):
    """`value` with each tensor replaced by fn(tensor), in `_tensors` order."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        items = [_map_tensors(item, fn) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # namedtuples too
    if isinstance(value, dict):
        return {key: _map_tensors(item, fn) for key, item in value.items()}
    return value


def forward(template: nn.Module, key: tuple, training: bool, tracer: UnitTracer, args, kwargs):
    """Run (or replay) a block inside `tracer`'s timeline; `template` is already in `training` mode
    (the stub sets it: ``blocks.Template.set_mode``)."""
    try:
        run_key = (key, signature(args), signature(kwargs), training, torch.is_grad_enabled())
    except Unkeyable:
        run_key = None
    profile = _profiles.get(run_key) if run_key is not None else None
    if profile is None or profile.outputs is None:
        profile, out = _profile(template, args, kwargs)
        if run_key is not None:
            _profiles[run_key] = profile
            if len(_profiles) > MAX_PROFILES:
                _profiles.popitem(last=False)
    else:
        out = _replayed(profile)
    before = tracer.current()
    prologue = profile.units[0]
    tracer.units[before].saved += prologue.saved
    tracer.units[before].grads += prologue.grads
    base = len(tracer.units) - 1
    tracer.units.extend([unit.copy() for unit in profile.units[1:]])

    def unit(index: int) -> int:
        return before if index == 0 else base + index

    inputs, outputs = _tensors((args, kwargs)), _tensors(out)
    for position, index in profile.inputs_saved:
        tracer.claim(inputs[position], unit(index))
    for position, index in profile.outputs_saved:
        tracer.claim(outputs[position], unit(index))
    return out


def clear() -> None:
    _profiles.clear()
