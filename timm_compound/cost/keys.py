"""Canonical, hashable forms of what a module's construction and a forward call depend on.

The cost model memoises a block by its constructor call and a forward by its input
shapes. A key must capture *everything* the result depends on, so anything this module
cannot express exactly (a tensor's values, a bound method, an unknown object, a hook)
raises `Unkeyable` and the caller does the real, uncached work instead: a miss costs
time, a wrong key would cost exactness.
"""

from __future__ import annotations

import enum
import functools
import types

import torch
import torch.nn as nn
from timm.layers import is_exportable, is_no_jit, is_scriptable


class Unkeyable(Exception):
    """A value whose effect on a module cannot be captured in a key."""


_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_BY_VALUE = (torch.dtype, torch.device, torch.memory_format, torch.layout)
_IDENTITY = (type, types.FunctionType, types.BuiltinFunctionType)
# Module.__dict__ entries that are not attributes of the layer itself
_MODULE_INTERNALS = {
    "_parameters",
    "_buffers",
    "_modules",
    "_non_persistent_buffers_set",
    "training",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
    "_compiled_call_impl",
    "_is_full_backward_hook",
}
_HOOKS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


_partials: dict[int, tuple] | None = None  # id -> (partial, frozen form), inside `remembering_partials`


class remembering_partials:
    """Within the block, freeze each partial object once (a timm builder hands the same
    `se_layer` / `norm_layer` partial to every block); the objects are kept alive meanwhile.
    The caller holds the cost model's lock, so one build at a time uses it."""

    def __enter__(self):
        global _partials
        self.previous, _partials = _partials, {}

    def __exit__(self, *exc):
        global _partials
        _partials = self.previous


def freeze(value):
    """A hashable form equal only for values that construct the same module."""
    if isinstance(value, _SCALARS):
        return (type(value), value)
    if isinstance(value, (_BY_VALUE, enum.Enum)):
        return (type(value), value)
    if isinstance(value, _IDENTITY):
        return value  # classes and functions: by identity (kept alive by the key)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(freeze(item) for item in value))
    if isinstance(value, dict):
        return (type(value), tuple((freeze(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return (type(value), frozenset(freeze(item) for item in value))
    if isinstance(value, functools.partial):
        known = _partials.get(id(value)) if _partials is not None else None
        if known is not None and known[0] is value:
            return known[1]
        frozen = (functools.partial, freeze(value.func), freeze(value.args), freeze(value.keywords))
        if _partials is not None:
            _partials[id(value)] = (value, frozen)
        return frozen
    if isinstance(value, nn.Module):
        return fingerprint(value)
    raise Unkeyable(f"cannot key a {type(value).__name__}")


def _tensors(tensors: dict) -> tuple:
    return tuple(
        (name, None) if t is None else (name, tuple(t.shape), t.dtype, t.requires_grad) for name, t in tensors.items()
    )


def _cost_model_mark(name: str, value) -> bool:
    """What the cost model adds to a skeleton's containers (a key, a memoised forward): not structure."""
    return name == "_stub_key" or (
        name == "forward" and getattr(getattr(value, "__func__", None), "cost_model_replay", False)
    )


def fingerprint(module: nn.Module, expand=None, ignore: frozenset = frozenset()) -> tuple:
    """Everything that defines a module's structure: class, attributes, parameter and buffer
    shapes, children, recursively. Forward hooks make it unkeyable; weights' values do not count.

    `expand(module)` may substitute a module before it is fingerprinted (the cost model's stubs
    by their templates); `ignore` names attributes of `module` itself to leave out.
    """
    if expand is not None:
        module = expand(module)
    state = module.__dict__
    if any(state.get(name) for name in _HOOKS):
        raise Unkeyable(f"{type(module).__name__} has hooks")
    stub = getattr(type(module), "stub_key", None)
    if stub is not None:
        return stub(module)
    attributes = tuple(
        (name, freeze(value))
        for name, value in sorted(state.items())
        if name not in _MODULE_INTERNALS and name not in ignore and not _cost_model_mark(name, value)
    )
    return (
        type(module),
        attributes,
        _tensors(module._parameters),
        _tensors(module._buffers),
        tuple(sorted(module._non_persistent_buffers_set)),
        tuple((name, None if child is None else fingerprint(child, expand)) for name, child in module._modules.items()),
    )


def context() -> tuple:
    """Global settings that change what a timm constructor builds."""
    return (torch.get_default_dtype(), is_exportable(), is_scriptable(), is_no_jit())


def signature(value):
    """The shape-level form of forward arguments: tensors by shape, dtype, strides and grad flag."""
    kind = type(value)
    if kind is int or kind is float or kind is bool or value is None:
        return (kind, value)
    if isinstance(value, torch.Tensor):
        return (torch.Tensor, value.shape, value.dtype, value.stride(), value.requires_grad)
    if kind is tuple or kind is list:
        if all(type(item) is int for item in value):  # sizes, strides, paddings
            return (kind, int, tuple(value))
        return (kind, tuple([signature(item) for item in value]))
    if isinstance(value, dict):
        return (kind, tuple((k, signature(v)) for k, v in value.items()))
    return freeze(value)
