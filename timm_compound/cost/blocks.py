"""Memoised blocks: build and trace each distinct block of a family once, replay it everywhere.

While a skeleton is built, constructing one of the family's block classes (the
children of the rule's `stage_modules`) returns a *stub*: an instance of a subclass of
the block class with no submodules, keyed by the constructor call (`keys.freeze`). The
first stub of a key builds the real block once on meta, the *template*. A stub's
forward replays the template's counted MACs and output elements for that input
signature (``timm_compound.cost.replay``; in a training trace, ``traced``), tracing the
template the first time. Attribute reads the parent makes (``block.feature_info()``) go
to the template; a write to a stub, or a change to a template the parent read from,
taints the build: the cost model then refuses the skeleton and the exact count takes over.
"""

from __future__ import annotations

import threading
import types
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from timm_compound.cost import replay, traced
from timm_compound.cost.counter import ShapeCounter
from timm_compound.cost.keys import Unkeyable, context, freeze, remembering_partials
from timm_compound.cost.memory import UnitTracer, nbytes

MAX_TEMPLATES = 4096  # distinct blocks kept (meta modules: no weight memory)


@dataclass
class Template:
    module: nn.Module
    params: int
    weight_bytes: int
    trainable_bytes: int
    buffer_bytes: int
    mode: bool | None = None  # the train/eval flag last set on the whole module (None: not by a stub yet)

    def set_mode(self, training: bool) -> nn.Module:
        """The module with every submodule in this mode; walks the tree only when the mode changes."""
        if self.mode is not training or self.module.training is not training:
            self.module.train(training)
            self.mode = training
        return self.module


@dataclass
class _State(threading.local):
    counter: ShapeCounter | None = None
    tracer: UnitTracer | None = None
    building: list = field(default_factory=list)  # the taint reasons of the skeletons being built
    touched: dict = field(default_factory=dict)  # templates the parent read attributes from
    real: int = 0  # > 0 while a template is being built for real


_state = _State()
_lock = threading.RLock()
_templates: OrderedDict[tuple, Template] = OrderedDict()
_stub_classes: dict[type, type] = {}


def _remember(cache: OrderedDict, key, value, limit: int):
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)
    return value


class _Stub(nn.Module):
    """Stands in for a block: no submodules; counts and shapes come from its template."""

    stub_key = staticmethod(lambda module: ("stub", module.__dict__["_stub_key"]))

    def forward(self, *args, **kwargs):
        key, template = self.__dict__["_stub_key"], self.__dict__["_stub_template"]
        if _state.tracer is not None:
            return traced.forward(template.set_mode(self.training), key, self.training, _state.tracer, args, kwargs)
        if _state.counter is None:
            return template.set_mode(self.training)(*args, **kwargs)
        return replay.counted(
            key, self.training, _state.counter, args, kwargs, lambda: template.set_mode(self.training)(*args, **kwargs)
        )

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            template = self.__dict__.get("_stub_template")
            if template is None:
                raise
            value = getattr(template.module, name)
            if _state.building and (id(template), name) not in _state.touched:
                _state.touched[(id(template), name)] = (self.__dict__["_stub_key"], template, _watch(template, value))
            return value

    def __setattr__(self, name: str, value) -> None:
        if name != "training" and "_stub_key" in self.__dict__:
            _taint(f"{type(self).__name__}.{name} was set after construction")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        _taint(f"{type(self).__name__}.{name} was deleted after construction")
        super().__delattr__(name)

    def register_parameter(self, name, param) -> None:
        _taint(f"a parameter was added to {type(self).__name__}")
        super().register_parameter(name, param)

    def register_buffer(self, name, tensor, persistent: bool = True) -> None:
        _taint(f"a buffer was added to {type(self).__name__}")
        super().register_buffer(name, tensor, persistent)

    def add_module(self, name, module) -> None:
        _taint(f"a submodule was added to {type(self).__name__}")
        super().add_module(name, module)

    def extra_repr(self) -> str:
        return "stub"


def _sequence_forward(self: nn.Sequential, input):
    if _state.counter is None:
        return nn.Sequential.forward(self, input)
    return replay.counted(
        self.__dict__["_stub_key"],
        self.training,
        _state.counter,
        (input,),
        {},
        lambda: nn.Sequential.forward(self, input),
    )


_sequence_forward.cost_model_replay = True


def memoise_sequences(model: nn.Module) -> None:
    """Give every plain ``nn.Sequential`` whose children are all stubs (or such sequences) a key
    and a memoised forward: a stage of identical blocks is then one lookup, not one per block."""
    for module in reversed(list(model.modules())):  # children before parents
        if (
            type(module) is nn.Sequential
            and len(module)
            and all("_stub_key" in child.__dict__ for child in module.children())
        ):
            module.__dict__["_stub_key"] = (
                "sequence",
                tuple(child.__dict__["_stub_key"] for child in module.children()),
            )
            module.__dict__["forward"] = types.MethodType(_sequence_forward, module)


def _taint(reason: str) -> None:
    if _state.building:
        _state.building[-1].append(reason)


def is_stub(module: nn.Module) -> bool:
    return isinstance(module, _Stub)


def template_of(module: nn.Module) -> Template:
    return module.__dict__["_stub_template"]


def _stub_class(cls: type) -> type:
    if cls not in _stub_classes:
        _stub_classes[cls] = type(cls.__name__, (_Stub, cls), {"__module__": cls.__module__})
    return _stub_classes[cls]


def _template(cls: type, init, key: tuple, args, kwargs) -> Template:
    template = _templates.get(key)
    if template is not None:
        _templates.move_to_end(key)
        return template
    module = cls.__new__(cls)
    _state.real += 1
    try:
        init(module, *args, **kwargs)
    finally:
        _state.real -= 1
    params = sum(p.numel() for p in module.parameters())
    trainable = sum(nbytes(p) for p in module.parameters() if p.requires_grad)
    buffer_bytes = sum(nbytes(b) for b in module.buffers())
    weight_bytes = sum(nbytes(p) for p in module.parameters()) + buffer_bytes
    return _remember(_templates, key, Template(module, params, weight_bytes, trainable, buffer_bytes), MAX_TEMPLATES)


def _patched_init(cls: type, init, owner: int):
    def __init__(self, *args, **kwargs):
        if threading.get_ident() != owner or _state.real or type(self) is not cls or not _state.building:
            return init(self, *args, **kwargs)
        try:
            key = (cls, freeze(args), freeze(kwargs), context())
            template = _template(cls, init, key, args, kwargs)
        except Unkeyable:
            return init(self, *args, **kwargs)  # built for real: exact, just not shared
        nn.Module.__init__(self)
        object.__setattr__(self, "__class__", _stub_class(cls))
        self.__dict__["_stub_template"] = template
        self.__dict__["_stub_key"] = key

    __init__.__wrapped__ = init
    return __init__


@contextmanager
def stubbing(classes: list[type]):
    """Within the block, this thread's constructions of `classes` return stubs.

    Yields the list of taint reasons found while building (empty when the skeleton is sound).
    """
    owner = threading.get_ident()
    with _lock:
        saved = {cls: cls.__dict__.get("__init__") for cls in classes}
        for cls in classes:
            cls.__init__ = _patched_init(cls, cls.__init__, owner)
        reasons: list[str] = []
        _state.building.append(reasons)
        try:
            with remembering_partials():
                yield reasons
        finally:
            _state.building.pop()
            for cls, init in saved.items():
                if init is None:
                    del cls.__init__
                else:
                    cls.__init__ = init


@contextmanager
def counting(counter: ShapeCounter | None = None, tracer: UnitTracer | None = None):
    """Stubs called within the block replay into `counter` or `tracer`'s timeline (this thread only)."""
    previous = _state.counter, _state.tracer
    _state.counter, _state.tracer = counter, tracer
    try:
        yield
    finally:
        _state.counter, _state.tracer = previous


def _state_of(m: nn.Module) -> tuple:
    tensors = [
        (name, None if t is None else tuple(t.shape)) for name, t in (*m._parameters.items(), *m._buffers.items())
    ]
    return list(m.__dict__.items()), list(m._modules.items()), tensors


def _snapshot(module: nn.Module) -> list:
    """Every submodule's attributes and children by identity, and its tensors' shapes: any assignment shows."""
    return [(m, _state_of(m)) for m in module.modules()]


_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


def _immutable(value) -> bool:
    return isinstance(value, _IMMUTABLE) or (isinstance(value, tuple) and all(_immutable(v) for v in value))


def _watch(template: Template, value) -> list:
    """What the parent could change through a value it read from a template: nothing for a number or
    a tuple, the subtree of a submodule, the whole template for anything else."""
    if _immutable(value):
        return []
    if isinstance(value, nn.Module):
        return _snapshot(value)
    if isinstance(value, torch.Tensor):
        return [(value, tuple(value.shape))]
    return _snapshot(template.module)


def _same(before: list, after: list) -> bool:
    return len(before) == len(after) and all(
        k == k0 and (v is v0 or k == "training") for (k, v), (k0, v0) in zip(after, before)
    )


def _unchanged(snapshot: list) -> bool:
    for m, state in snapshot:
        if isinstance(m, torch.Tensor):
            if tuple(m.shape) != state:
                return False
            continue
        attributes, children, tensors = state
        now_attributes, now_children, now_tensors = _state_of(m)
        if not (_same(attributes, now_attributes) and _same(children, now_children) and tensors == now_tensors):
            return False
    return True


def check_templates(reasons: list[str]) -> None:
    """Templates the parent read attributes from must be unchanged: a parent that mutated one
    (``block.conv.stride = 1``) would have changed every model that shares it."""
    touched, _state.touched = _state.touched, {}
    for key, template, snapshot in touched.values():
        if not _unchanged(snapshot):
            reasons.append(f"the {type(template.module).__name__} template was modified by its parent")
            _templates.pop(key, None)


def clear() -> None:
    with _lock:
        _templates.clear()
        replay.clear()
        traced.clear()
