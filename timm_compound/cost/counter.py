"""Counting conv + linear MACs and output elements by shape arithmetic, in nestable frames.

The convention is fvcore's and ``FlopCounterMode``'s (halved): a convolution costs
output elements x (input channels / groups) x kernel area multiply-adds, a matrix
product M x K x N (x batch); activations are the elements those ops output. The cost
model (``timm_compound.cost.model``) opens a frame per memoised block so a block's
count is recorded once and replayed; ``measure(method="meta")`` keeps FlopCounterMode
itself as the independent exact path. With ``memo=True`` a functional op already seen with
the same input shapes is not run again (its output is made from the recorded shapes), and
a few ops whose meta kernels are slow Python decompositions get their output shapes from
rules checked against the real kernel once per input layout.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from timm_compound.cost.keys import Unkeyable, signature

_aten = torch.ops.aten
# conv + linear, as fvcore counts them (aten::_convolution, addmm, mm, matmul, bmm, linear)
COUNTED_OPS = (_aten.convolution, _aten._convolution, _aten.addmm, _aten.mm, _aten.bmm)
_CONVOLUTIONS = (_aten.convolution, _aten._convolution)


def op_cost(op, args, out: torch.Tensor) -> int:
    """MACs of one counted op, from the shapes of its arguments and output."""
    if op in _CONVOLUTIONS:
        x, weight, transposed = args[0], args[1], args[6]
        if transposed:  # fvcore: batch x weight elements x input pixels
            return x.shape[0] * math.prod(weight.shape) * math.prod(x.shape[2:])
        return out.numel() * math.prod(weight.shape[1:])
    a = args[1] if op is _aten.addmm else args[0]  # addmm(bias, a, b), mm(a, b), bmm(a, b): M x K x N
    return out.numel() * a.shape[-1]


def spec_of(value):
    """A tensor's (shape, strides, dtype), or a tuple/list of them; None for anything else."""
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.stride(), value.dtype)
    if isinstance(value, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in value):
        return type(value)(spec_of(v) for v in value)
    return None


def replay(spec):
    """Fresh meta tensors matching a `spec_of`."""
    if isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[2], torch.dtype):
        shape, stride, dtype = spec
        return torch.empty_strided(shape, stride, dtype=dtype, device="meta")
    return type(spec)(replay(s) for s in spec)


MAX_SHAPES = 65536
_shapes: OrderedDict[tuple, object] = OrderedDict()
_functional: dict = {}


def _is_functional(func) -> bool:
    """An op that neither mutates nor aliases: its meta output depends on input shapes alone."""
    known = _functional.get(func)
    if known is None:
        schema = func._schema
        known = _functional[func] = not schema.is_mutable and all(
            item.alias_info is None for item in (*schema.returns, *schema.arguments)
        )
    return known


def _contiguous(shape: tuple) -> tuple:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _batch_norm(x, *_):
    stats = ((x.shape[1],), (1,), x.dtype)
    return ((tuple(x.shape), x.stride(), x.dtype), stats, stats)


def _layer_norm(x, normalized_shape, *_):
    out = tuple(x.shape)
    stats = out[: x.dim() - len(normalized_shape)] + (1,) * len(normalized_shape)
    return (
        (out, _contiguous(out), x.dtype),
        (stats, _contiguous(stats), x.dtype),
        (stats, _contiguous(stats), x.dtype),
    )


def _elementwise(x, *_):
    """A unary elementwise op: dense output, the input's dimension order."""
    order = sorted(range(x.dim()), key=lambda d: (-x.stride(d), d))
    strides, step = [0] * x.dim(), 1
    for dim in reversed(order):
        strides[dim] = step
        step *= max(x.shape[dim], 1)
    return (tuple(x.shape), tuple(strides), x.dtype)


def _cat(tensors, dim=0):
    """Concatenation (DenseNet's every layer): contiguous inputs give a contiguous output."""
    first = tensors[0]
    dim = dim % first.dim()
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return (tuple(shape), _contiguous(tuple(shape)), first.dtype)


def _mean(x, dims, keepdim=False, dtype=None):
    """A mean over `dims` (squeeze-and-excitation's pooling): a contiguous output."""
    reduced = {d % x.dim() for d in dims} if dims else set(range(x.dim()))
    if keepdim:
        shape = tuple(1 if i in reduced else size for i, size in enumerate(x.shape))
    else:
        shape = tuple(size for i, size in enumerate(x.shape) if i not in reduced)
    return (shape, _contiguous(shape), dtype or x.dtype)


def _convolution(x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """A convolution's output: each spatial size (n + 2p - d(k-1) - 1) // s + 1, contiguous (the meta
    kernel's choice for contiguous weights; the check per layout catches any other). Transposed
    convolutions have no rule."""
    if transposed:
        raise NotImplementedError("transposed convolution")
    spatial = tuple(
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, p, d in zip(x.shape[2:], weight.shape[2:], stride, padding, dilation)
    )
    shape = (x.shape[0], weight.shape[0], *spatial)
    return (shape, _contiguous(shape), x.dtype)


def _addmm(bias, a, b):
    shape = (a.shape[0], b.shape[1])
    return (shape, _contiguous(shape), a.dtype)


# Output shapes of ops whose meta kernels are Python code costing 0.1-18 ms a call. Each rule is checked
# against the real kernel once per layout of its arguments (tensors' layouts, flags and int lists by value)
# and dropped for that layout if they differ.
_RULES = {
    _aten.native_batch_norm.default: _batch_norm,
    _aten._native_batch_norm_legit_no_training.default: _batch_norm,
    _aten.native_layer_norm.default: _layer_norm,
    _aten.cat.default: _cat,
    _aten.mean.dim: _mean,
    _aten.convolution.default: _convolution,
    _aten.addmm.default: _addmm,
    **{
        getattr(_aten, name).default: _elementwise
        for name in (
            "relu",
            "silu",
            "sigmoid",
            "hardswish",
            "hardsigmoid",
            "gelu",
            "mish",
            "tanh",
            "elu",
            "leaky_relu",
            "hardtanh",
        )
    },
}
# In-place elementwise ops return their first argument, whose shape they cannot change
_IN_PLACE = {
    getattr(_aten, name).default if hasattr(getattr(_aten, name), "default") else getattr(_aten, name).Tensor
    for name in (
        "relu_",
        "silu_",
        "sigmoid_",
        "hardswish_",
        "hardsigmoid_",
        "tanh_",
        "elu_",
        "leaky_relu_",
        "hardtanh_",
        "mish_",
        "gelu_",
    )
} | {_aten.add_.Tensor, _aten.mul_.Tensor, _aten.sub_.Tensor, _aten.div_.Tensor, _aten.add_.Scalar, _aten.mul_.Scalar}
_checked: dict[tuple, bool] = {}
_FACTORIES = {_aten.empty_strided.default, _aten.empty.memory_format}  # cheaper made than looked up


def _layout(x: torch.Tensor) -> tuple:
    return (x.dim(), x.dtype, tuple(sorted(range(x.dim()), key=lambda d: (-x.stride(d), d))))


def _kind(arg):
    """An argument as a rule's trust is keyed: flags and dimension lists by value, tensors by layout,
    others by None-ness."""
    if isinstance(arg, torch.Tensor):
        return _layout(arg)
    if isinstance(arg, bool):
        return arg
    if isinstance(arg, (list, tuple)) and all(isinstance(a, int) for a in arg):
        return ("ints", tuple(arg))
    return arg is None


def _rule_layout(func, args) -> tuple | None:
    """What a shape rule's trust is checked per: every argument's kind (`_kind`: tensors by layout)
    (a list of tensors, as concatenation takes, by each one's layout and the dimension)."""
    first = args[0] if args else None
    if isinstance(first, torch.Tensor):
        return (func, tuple(_kind(a) for a in args))
    if isinstance(first, (list, tuple)) and first and all(isinstance(t, torch.Tensor) for t in first):
        rest = args[1:]
        if all(isinstance(a, int) for a in rest):
            return (func, tuple(_layout(t) for t in first), rest)
    return None


class ShapeCounter(TorchDispatchMode):
    """Sums MACs and output elements of conv + linear ops into the innermost open frame.

    With `memo`, a functional op seen before with the same input shapes is not run again:
    its output is made from the recorded shapes (meta kernels of batch norm and other
    decomposed ops cost milliseconds each; the shapes are all the count needs).
    """

    def __init__(self, memo: bool = False):
        super().__init__()
        self.frames: list[list[int]] = [[0, 0]]  # [macs, elements]; frames[0] is the whole forward
        self.memo = memo

    @property
    def macs(self) -> int:
        return self.frames[0][0]

    @property
    def elements(self) -> int:
        return self.frames[0][1]

    def open(self) -> None:
        self.frames.append([0, 0])

    def close(self) -> tuple[int, int]:
        """End the innermost frame; its counts also count in the frame around it."""
        macs, elements = self.frames.pop()
        self.add(macs, elements)
        return macs, elements

    def add(self, macs: int, elements: int) -> None:
        frame = self.frames[-1]
        frame[0] += macs
        frame[1] += elements

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = self._memoised(func, args, kwargs) if self.memo else func(*args, **kwargs)
        op = func.overloadpacket
        if op in COUNTED_OPS:
            self.add(op_cost(op, args, out), out.numel())
        return out

    @staticmethod
    def _memoised(func, args, kwargs):
        if func in _IN_PLACE:
            return args[0]
        if func in _FACTORIES:
            return func(*args, **kwargs)
        rule = _RULES.get(func)
        layout = _rule_layout(func, args) if rule is not None and not kwargs else None
        if layout is not None:
            trusted = _checked.get(layout)
            if trusted:
                return replay(rule(*args))
            if trusted is None:
                out = func(*args)
                try:
                    _checked[layout] = spec_of(out) == rule(*args)
                except Exception:
                    _checked[layout] = False
                return out
        if not _is_functional(func):
            return func(*args, **kwargs)
        try:
            key = (func, signature(args), signature(kwargs))
        except Unkeyable:
            return func(*args, **kwargs)
        spec = _shapes.get(key)
        if spec is not None:
            return replay(spec)
        out = func(*args, **kwargs)
        spec = spec_of(out)
        if spec is not None:
            _shapes[key] = spec
            if len(_shapes) > MAX_SHAPES:
                _shapes.popitem(last=False)
        return out


def clear() -> None:
    _shapes.clear()
    _checked.clear()
