"""How channel annotations move through shape operations (no weights involved).

An annotation is one item per tensor dimension: None (batch, spatial or unknown), an Entry (channels)
or a ParamDim (a dimension of a parameter or a view of one). Each function returns the output's
annotation and the input dimensions whose channels it mixes (the caller blocks those spaces).
"""

from __future__ import annotations

import math
from typing import Any

Ann = tuple[Any, ...]


def normal_dims(dims: Any, ndim: int) -> list[int]:
    """Dimension arguments (an int, a sequence, None for all) as non-negative ints."""
    if dims is None:
        return list(range(ndim))
    if isinstance(dims, int):
        dims = [dims]
    return [d % ndim if ndim else 0 for d in dims]


def reshape(ann: Ann, shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> tuple[Ann, list[int]]:
    """view / reshape / flatten / squeeze / unsqueeze: carry a dimension's channels when it moves whole
    (only size-1 dimensions are added, removed or merged with it); merging or splitting channels with
    another dimension mixes them."""
    out: list[Any] = [None] * len(shape_out)
    mixed = [d for d, size in enumerate(shape_in) if size == 1 and ann[d] is not None]
    big_in = [d for d, size in enumerate(shape_in) if size != 1]
    big_out = [d for d, size in enumerate(shape_out) if size != 1]
    i = j = 0
    while i < len(big_in) and j < len(big_out):
        group_in, group_out = [big_in[i]], [big_out[j]]
        prod_in, prod_out = shape_in[big_in[i]], shape_out[big_out[j]]
        i, j = i + 1, j + 1
        while prod_in != prod_out and (i < len(big_in) or j < len(big_out)):
            if prod_in < prod_out and i < len(big_in):
                group_in.append(big_in[i])
                prod_in *= shape_in[big_in[i]]
                i += 1
            elif j < len(big_out):
                group_out.append(big_out[j])
                prod_out *= shape_out[big_out[j]]
                j += 1
            else:
                break
        if len(group_in) == 1 and len(group_out) == 1:
            out[group_out[0]] = ann[group_in[0]]
        else:
            mixed += [d for d in group_in if ann[d] is not None]
    mixed += [d for d in big_in[i:] if ann[d] is not None]
    return tuple(out), mixed


def flatten(ann: Ann, shape: tuple[int, ...], start: int = 0, end: int = -1) -> tuple[Ann, list[int]]:
    if not shape:
        return (None,), []
    start, end = start % len(shape), end % len(shape)
    merged = math.prod(shape[start : end + 1])
    return reshape(ann, shape, shape[:start] + (merged,) + shape[end + 1 :])


def permute(ann: Ann, dims: list[int]) -> Ann:
    return tuple(ann[d] for d in normal_dims(dims, len(ann)))


def transpose(ann: Ann, a: int, b: int) -> Ann:
    items = list(ann)
    a, b = a % len(ann), b % len(ann)
    items[a], items[b] = items[b], items[a]
    return tuple(items)


def reduce(ann: Ann, dims: Any, keepdim: bool) -> tuple[Ann, list[int]]:
    """mean / sum / amax over `dims`: reducing over a channel dimension mixes it."""
    reduced = normal_dims(dims, len(ann))
    mixed = [d for d in reduced if ann[d] is not None]
    out = (
        tuple(None if d in reduced else a for d, a in enumerate(ann))
        if keepdim
        else tuple(a for d, a in enumerate(ann) if d not in reduced)
    )
    return out, mixed


def spatial(ann: Ann, spatial_dims: int) -> tuple[Ann, list[int]]:
    """Pooling, padding and resizing act on the last `spatial_dims` dimensions only."""
    spatial_dims = min(spatial_dims, max(len(ann) - 2, 0)) if len(ann) > 2 else 0
    keep = len(ann) - spatial_dims
    mixed = [d for d in range(keep, len(ann)) if ann[d] is not None]
    return tuple(ann[:keep]) + (None,) * spatial_dims, mixed


def getitem(ann: Ann, shape: tuple[int, ...], index: Any) -> tuple[Ann | None, list[int]]:
    """x[...]: full slices carry channels, a partial slice or an int on a channel dim mixes it;
    None (no result) for indexing by tensors or lists."""
    items = list(index) if isinstance(index, tuple) else [index]
    if any(not (isinstance(i, (int, slice)) or i is None or i is Ellipsis) or isinstance(i, bool) for i in items):
        return None, []
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (len(shape) - consumed)
    items += [slice(None)] * (len(shape) - sum(1 for i in items if i is not None))
    out: list[Any] = []
    mixed: list[int] = []
    dim = 0
    for item in items:
        if item is None:
            out.append(None)
            continue
        if isinstance(item, int):
            if ann[dim] is not None:
                mixed.append(dim)
        elif range(shape[dim])[item] == range(shape[dim]):
            out.append(ann[dim])
        else:
            if ann[dim] is not None:
                mixed.append(dim)
            out.append(None)
        dim += 1
    return tuple(out), mixed


def broadcast_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    ndim = max(len(s) for s in shapes)
    out = []
    for k in range(ndim):
        sizes = [s[len(s) - ndim + k] for s in shapes if len(s) - ndim + k >= 0]
        out.append(max(sizes) if sizes else 1)
    return tuple(out)
