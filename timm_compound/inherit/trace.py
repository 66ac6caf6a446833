"""Tracing a model's forward pass into a channel graph (`ChannelGraph`), with torch's function mode.

Every torch function the forward calls is seen with its real tensors, so the trace follows the code
as it runs (no symbolic tracing, no per-family code): a conv or linear makes a new space of output
channels and reads its input's, a per-channel norm or elementwise op keeps them, an addition or a
multiplication by a gate joins its operands' spaces, a concatenation lines them up, and shape ops
carry them. An op the trace does not know, or one that mixes channels (a LayerNorm over them, a
partial channel slice, a reshape that merges them), *blocks* the spaces it touches: they may not be
widened, and `timm_compound.inherit` says which op when a plan would widen them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from timm_compound.inherit import shapes
from timm_compound.inherit.graph import ChannelGraph, Entry, ParamDim, TraceError

_CONV = {"conv1d", "conv2d", "conv3d"}
_NORM = {"batch_norm", "instance_norm"}
_SPATIAL = {
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "lp_pool2d",
    "interpolate",
    "upsample",
    "pixel_unshuffle_spatial",
}
_REDUCE = {"mean", "sum", "amax", "amin", "nanmean"}
_FIRST_ONLY = {
    "contiguous",
    "clone",
    "detach",
    "to",
    "float",
    "double",
    "half",
    "bfloat16",
    "type",
    "type_as",
    "__get__",
    "cpu",
    "cuda",
    "requires_grad_",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "softplus",
    "leaky_relu",
    "elu",
    "celu",
    "hardtanh",
    "threshold",
    "gelu",
    "clamp",
    "clamp_",
    "clamp_min",
    "clamp_max",
    "clip",
    "relu",
    "relu_",
    "relu6",
    "silu",
    "hardsigmoid",
    "hardswish",
    "mish",
    "selu",
    "rrelu",
    "logsigmoid",
    "hardtanh_",
    "leaky_relu_",
    "elu_",
    "silu_",
}
_ELEMENTWISE = {
    "add",
    "add_",
    "__add__",
    "__iadd__",
    "__radd__",
    "sub",
    "sub_",
    "__sub__",
    "__isub__",
    "__rsub__",
    "rsub",
    "mul",
    "mul_",
    "__mul__",
    "__imul__",
    "__rmul__",
    "div",
    "div_",
    "__truediv__",
    "__itruediv__",
    "__rtruediv__",
    "true_divide",
    "where",
    "maximum",
    "minimum",
    "pow",
    "__pow__",
    "__rpow__",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "exp",
    "exp_",
    "log",
    "sqrt",
    "rsqrt",
    "abs",
    "neg",
    "__neg__",
    "sign",
    "erf",
    "floor",
    "ceil",
    "round",
    "reciprocal",
    "square",
    "addcmul",
    "lerp",
    "expand_as",
    "expand",
}


class _Tracer(TorchFunctionMode):
    def __init__(self, names: dict[int, str], graph: ChannelGraph, keep_outputs: bool):
        super().__init__()
        self.names = names  # id(parameter or buffer) -> name
        self.graph = graph
        self.keep_outputs = keep_outputs
        self.pending: tuple[str, Entry, int] | None = None  # the layer just traced: weight, channels, their dim
        self.ann: dict[int, tuple[Any, ...]] = {}
        self.alive: list[torch.Tensor] = []  # keeps traced tensors alive so their ids are not reused

    # -- annotations ---------------------------------------------------------------------------
    def get(self, t: torch.Tensor) -> tuple[Any, ...]:
        if id(t) in self.ann:
            return self.ann[id(t)]
        if id(t) in self.names:
            return tuple(ParamDim(self.names[id(t)], d) for d in range(t.dim()))
        return (None,) * t.dim()

    def set(self, t: torch.Tensor, ann: tuple[Any, ...]) -> None:
        self.ann[id(t)] = tuple(ann)
        self.alive.append(t)

    def entry(self, item: Any, size: int, why: str) -> Entry:
        """The channel entry of an annotation item, making (and blocking) a space for an unknown one."""
        if isinstance(item, tuple):
            return item
        entry = (self.graph.spaces.new(size, None if isinstance(item, ParamDim) else why),)
        if isinstance(item, ParamDim):
            self.graph.bind(item, entry)
        return entry

    def join(self, items: list[Any], size: int, why: str) -> Any:
        """One annotation for items that index the same channels (elementwise operands)."""
        entries = [i for i in items if isinstance(i, tuple)]
        refs = [i for i in items if isinstance(i, ParamDim)]
        if not entries and not refs:
            return None
        entry = entries[0] if entries else (self.graph.spaces.new(size),)
        for other in entries[1:]:
            entry = self.graph.spaces.unite(entry, other, why)
        for ref in refs:
            entry = self.graph.bind(ref, entry)
        return entry

    def block(self, ann: tuple[Any, ...], dims: list[int], why: str) -> None:
        for d in dims:
            item = ann[d]
            if isinstance(item, tuple):
                self.graph.spaces.block(item, why)
            elif isinstance(item, ParamDim):
                self.graph.opaque.setdefault(item.name, why)

    # -- the mode ------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        outs = [r for r in (result if isinstance(result, (tuple, list)) else (result,)) if isinstance(r, torch.Tensor)]
        if not outs:
            return result
        try:
            ann = self.propagate(name, args, kwargs, outs[0])
        except TraceError as error:
            raise TraceError(f"{name}: {error}") from None
        if ann is None or len(outs) > 1:
            self.opaque(name, args, kwargs)
            for out in outs:
                self.set(out, (None,) * out.dim())
        else:
            self.set(outs[0], ann)
        if self.pending is not None:
            self.graph.outputs.append((*self.pending, outs[0].clone() if self.keep_outputs else None))
            self.pending = None
        return result

    def opaque(self, name: str, args: tuple, kwargs: dict) -> None:
        why = f"`{name}`, an op the channel trace does not follow"
        for t in _tensors(args, kwargs):
            ann = self.get(t)
            self.block(ann, list(range(len(ann))), why)

    def propagate(self, name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> tuple[Any, ...] | None:
        x = args[0] if args else None
        if name in _CONV:
            return self.conv(
                name, *_params(args, kwargs, "input", "weight", "bias", "stride", "padding", "dilation", "groups")
            )
        if name == "linear":
            return self.linear(*_params(args, kwargs, "input", "weight", "bias"))
        if name in _NORM:
            return self.batch_norm(name, args, kwargs)
        if name in ("layer_norm", "group_norm", "rms_norm"):
            return self.mixing_norm(name, args, kwargs)
        if name in ("cat", "concat", "concatenate"):
            return self.cat(args, kwargs)
        if not isinstance(x, torch.Tensor):
            return self.elementwise(name, args, kwargs, out) if name in _ELEMENTWISE else None
        ann = self.get(x)
        if name in _FIRST_ONLY and tuple(out.shape) == tuple(x.shape):
            return ann
        if name in _ELEMENTWISE:
            return self.elementwise(name, args, kwargs, out)
        if name in _SPATIAL or name == "pad":
            count = len(_param(args, kwargs, 1, "pad", ())) // 2 if name == "pad" else x.dim() - 2
            result, mixed = shapes.spatial(ann, count)
        elif name in _REDUCE:
            dims = _param(args, kwargs, 1, "dim", None)
            result, mixed = shapes.reduce(ann, dims, bool(_param(args, kwargs, 2, "keepdim", False)))
        elif name == "flatten":
            result, mixed = shapes.flatten(
                ann, tuple(x.shape), _param(args, kwargs, 1, "start_dim", 0), _param(args, kwargs, 2, "end_dim", -1)
            )
        elif name in ("view", "reshape", "squeeze", "unsqueeze", "view_as", "reshape_as", "squeeze_", "unsqueeze_"):
            result, mixed = shapes.reshape(ann, tuple(x.shape), tuple(out.shape))
        elif name == "permute":
            dims = (
                args[1:]
                if len(args) > 2 or (len(args) == 2 and isinstance(args[1], int))
                else _param(args, kwargs, 1, "dims", None)
            )
            return shapes.permute(ann, list(dims))
        elif name in ("transpose", "swapaxes", "swapdims"):
            return shapes.transpose(ann, _param(args, kwargs, 1, "dim0", 0), _param(args, kwargs, 2, "dim1", 1))
        elif name == "__getitem__":
            result, mixed = shapes.getitem(ann, tuple(x.shape), args[1])
            if result is None:
                return None
        else:
            return None
        self.block(ann, mixed, f"`{name}`, which mixes channels with other dimensions")
        return result

    # -- layers --------------------------------------------------------------------------------
    def conv(self, name, x, weight, bias, stride, padding, dilation, groups) -> tuple[Any, ...]:
        groups = groups or 1
        ann, w_ann = self.get(x), self.get(weight)
        self.block(ann, list(range(2, len(ann))), f"a {name} that slides along channels")
        c_in, c_out = x.shape[1], weight.shape[0]
        entry_in = self.entry(ann[1], c_in, "channels from an op the trace does not follow")
        depthwise_like = groups > 1 and c_in == c_out
        entry_out = entry_in if depthwise_like else (self.graph.spaces.new(c_out),)
        self._bind_layer(w_ann, weight, bias, entry_in, entry_out, groups)
        out = (ann[0], entry_out) + (None,) * (len(ann) - 2)
        self.pending = (self.names.get(id(weight), "?"), entry_out, 1)
        return out

    def linear(self, x, weight, bias) -> tuple[Any, ...]:
        ann, w_ann = self.get(x), self.get(weight)
        entry_in = self.entry(ann[-1], x.shape[-1], "features from an op the trace does not follow")
        entry_out = (self.graph.spaces.new(weight.shape[0]),)
        self._bind_layer(w_ann, weight, bias, entry_in, entry_out, 1)
        self.pending = (self.names.get(id(weight), "?"), entry_out, x.dim() - 1)
        return tuple(ann[:-1]) + (entry_out,)

    def _bind_layer(self, w_ann, weight, bias, entry_in: Entry, entry_out: Entry, groups: int) -> None:
        if not isinstance(w_ann[0], ParamDim) or not isinstance(w_ann[1], ParamDim):
            self.graph.spaces.block(entry_in + entry_out, "a conv or linear whose weight is computed, not a parameter")
            self.block(w_ann, list(range(len(w_ann))), "a computed weight")
            return
        self.graph.bind(w_ann[0], entry_out)
        self.graph.bind(w_ann[1], entry_in, "in", groups)
        self.graph.conv_groups[w_ann[0].name] = groups
        if bias is not None:
            b_ann = self.get(bias)
            if isinstance(b_ann[0], ParamDim):
                self.graph.bind(b_ann[0], entry_out)
                self.graph.biases[b_ann[0].name] = w_ann[0].name
            else:
                self.graph.spaces.block(entry_out, "a conv or linear whose bias is computed")

    def batch_norm(self, name: str, args: tuple, kwargs: dict) -> tuple[Any, ...]:
        keys = (
            "input",
            "running_mean",
            "running_var",
            "weight",
            "bias",
            "use_input_stats" if name == "instance_norm" else "training",
            "momentum",
            "eps",
        )
        x, mean, var, weight, bias, _, _, eps = _params(args, kwargs, *keys)
        ann = self.get(x)
        entry = self.entry(ann[1], x.shape[1], "channels from an op the trace does not follow")
        for kind, t in (("mean", mean), ("var", var), ("scale", weight), ("shift", bias)):
            if t is None:
                continue
            item = self.get(t)[0]
            if isinstance(item, ParamDim):
                entry = self.graph.bind(item, entry)
                self.graph.norms[item.name] = (kind, float(eps if eps is not None else 1e-5))
            else:
                self.graph.spaces.block(entry, f"a {name} with computed statistics")
        self.pending = (self.names.get(id(weight), self.names.get(id(mean), "?")), entry, 1)
        return (ann[0], entry) + tuple(ann[2:])

    def mixing_norm(self, name: str, args: tuple, kwargs: dict) -> tuple[Any, ...]:
        """LayerNorm / GroupNorm / RMSNorm: statistics over several channels, which duplicating some changes."""
        x = args[0]
        ann = self.get(x)
        if name == "group_norm":
            groups = _param(args, kwargs, 1, "num_groups", 1)
            dims, weight, bias = [1], _param(args, kwargs, 2, "weight", None), _param(args, kwargs, 3, "bias", None)
            mixing = groups != x.shape[1]
        else:
            normalized = _param(args, kwargs, 1, "normalized_shape", ())
            count = len(normalized) if isinstance(normalized, (tuple, list, torch.Size)) else 1
            dims = list(range(x.dim() - count, x.dim()))
            weight, bias, mixing = _param(args, kwargs, 2, "weight", None), _param(args, kwargs, 3, "bias", None), True
        if mixing:
            self.block(
                ann,
                [d for d in dims if isinstance(ann[d], tuple)],
                f"`{name}`, which normalises over channels (duplicating some would change its statistics)",
            )
        items = list(ann)
        for t in (weight, bias):
            if t is None:
                continue
            t_ann = self.get(t)
            for k, d in enumerate(dims[-t.dim() :] if len(dims) >= t.dim() else dims):
                items[d] = self.join([items[d], t_ann[k]], x.shape[d], name)
        return tuple(items)

    def elementwise(self, name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> tuple[Any, ...] | None:
        tensors = [t for t in _tensors(args, kwargs) if t.dim() > 0 or t.numel() == 1]
        if name in ("expand", "expand_as"):
            tensors = tensors[:1]
        if not tensors:
            return None
        shape = tuple(out.shape)
        result: list[Any] = []
        for k in range(len(shape)):
            items = []
            for t in tensors:
                d = t.dim() - len(shape) + k
                if d >= 0 and t.shape[d] == shape[k] and shape[k] != 1:
                    items.append(self.get(t)[d])
            result.append(self.join(items, shape[k], name) if shape[k] != 1 else None)
        return tuple(result)

    def cat(self, args: tuple, kwargs: dict) -> tuple[Any, ...] | None:
        tensors = list(_param(args, kwargs, 0, "tensors", ()))
        if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
            return None
        dim = _param(args, kwargs, 1, "dim", 0) % tensors[0].dim()
        anns = [self.get(t) for t in tensors]
        result: list[Any] = []
        for k in range(tensors[0].dim()):
            if k == dim:
                parts = [
                    self.entry(a[k], t.shape[k], "concatenated tensors the trace does not follow")
                    for a, t in zip(anns, tensors)
                    if t.shape[k] > 0
                ]
                result.append(tuple(node for part in parts for node in part))
            else:
                result.append(self.join([a[k] for a in anns], tensors[0].shape[k], "cat"))
        return tuple(result)


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    found = []
    for value in [*args, *kwargs.values()]:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found += [v for v in value if isinstance(v, torch.Tensor)]
    return found


def _param(args: tuple, kwargs: dict, index: int, key: str, default: Any) -> Any:
    if key in kwargs:
        return kwargs[key]
    return args[index] if len(args) > index else default


def _params(args: tuple, kwargs: dict, *keys: str) -> list[Any]:
    return [_param(args, kwargs, i, key, None) for i, key in enumerate(keys)]


def trace(model: nn.Module, x: torch.Tensor, keep_outputs: bool = False) -> tuple[ChannelGraph, torch.Tensor]:
    """(channel graph, output) of `model(x)` in eval mode without gradients; the model's mode is restored.

    The input's channels are one space, so the first conv's input dimension is bound like any other.
    `keep_outputs` keeps each layer's output tensor in `graph.outputs` (to find where two models diverge).
    """
    graph = ChannelGraph()
    names = {id(t): n for n, t in model.named_parameters(remove_duplicate=False)}
    names.update({id(t): n for n, t in model.named_buffers(remove_duplicate=False)})
    tracer = _Tracer(names, graph, keep_outputs)
    tracer.set(x, (None, (graph.spaces.new(x.shape[1]),)) + (None,) * (x.dim() - 2))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tracer:
            output = model(x)
    finally:
        model.train(was_training)
    output_ann = tracer.ann.get(id(output))
    if output_ann is not None:  # what a classifier reads must keep its channels: logits never widen
        graph.spaces.block(
            tuple(n for item in output_ann if isinstance(item, tuple) for n in item), "the model's output"
        )
    return graph, output
