"""Building on the meta device for shapes only: no weight initialisation, no shape-preserving kernels.

On meta, torch runs weight initialisation and several ops (batch norm, hardsigmoid, ...) through
Python reference implementations costing milliseconds a call, yet a meta tensor has no values to
set and those ops cannot change a shape. Used wherever a model is built only to be counted or to
have its shapes read.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import torch
import torch.nn as nn
from torch.utils._device import DeviceContext, _device_constructors


class _MetaSkipInit(DeviceContext):
    """``torch.device("meta")`` that also skips in-place weight initialisation on meta tensors: it
    has no values to set and costs most of a meta build's time (torch runs meta random ops through
    Python refs). One mode, not the device's plus another: every torch call in a build passes it.
    (``torch.utils._device`` is private; its DeviceContext is what ``with torch.device(...)`` enters.)"""

    def __init__(self) -> None:
        super().__init__("meta")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _INIT_METHODS:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
                return tensor
        elif func in _CONSTRUCTORS and kwargs.get("device") is None:
            kwargs["device"] = self.device
        return func(*args, **kwargs)


_CONSTRUCTORS = _device_constructors()


_INIT_METHODS = {
    getattr(torch.Tensor, name)
    for name in (
        "normal_",
        "uniform_",
        "fill_",
        "zero_",
        "erfinv_",
        "mul_",
        "add_",
        "clamp_",
        "copy_",
        "exponential_",
        "log_normal_",
        "cauchy_",
        "geometric_",
        "random_",
        "bernoulli_",
        "sub_",
        "div_",
    )
} | {  # torch.nn.init's own functions dispatch as a whole (a mode does not see the calls inside them)
    getattr(torch.nn.init, name)
    for name in (
        "uniform_",
        "normal_",
        "trunc_normal_",
        "constant_",
        "ones_",
        "zeros_",
        "eye_",
        "dirac_",
        "xavier_uniform_",
        "xavier_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "orthogonal_",
        "sparse_",
    )
    if hasattr(torch.nn.init, name)
}


@contextmanager
def fast_meta():
    """Build on meta without running weight initialisation (shapes and counts are unchanged)."""
    with _MetaSkipInit():
        yield


@contextmanager
def gc_paused():
    """Hold Python's cyclic garbage collector for the block (as it was, when the block ends).

    Counting keeps thousands of meta modules alive (memoised blocks and skeletons), and a build
    allocates thousands of objects: each allocation-triggered collection walks all of them. Paused,
    a fit does the same work in about two thirds of the time; nothing is lost, the collector
    runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# torch's elementwise activations, by exact class (a subclass may do more); batch norms (and timm's
# BatchNormAct2d, batch norm + dropout + activation) by isinstance: all keep their input's shape
_ELEMENTWISE = frozenset(
    {
        nn.ReLU,
        nn.ReLU6,
        nn.SiLU,
        nn.Sigmoid,
        nn.Hardsigmoid,
        nn.Hardswish,
        nn.Hardtanh,
        nn.GELU,
        nn.Mish,
        nn.Tanh,
        nn.ELU,
        nn.LeakyReLU,
        nn.PReLU,
        nn.Identity,
    }
)


def shapes_only(model: nn.Module) -> nn.Module:
    """Make the throwaway `model`'s shape-preserving torch layers pass their input through: its
    forward then gives the same shapes without their slow meta kernels. Never for a model that is kept."""
    for module in model.modules():
        if type(module) in _ELEMENTWISE or isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = _same
    return model


def _same(x: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
    return x
