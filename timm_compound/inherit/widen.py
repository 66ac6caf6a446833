"""Net2WiderNet on a state dict: every inherited tensor indexed by the channel maps.

Along a dimension that indexes channels (a conv's outputs, a norm's parameters and running
statistics, a bias) each grown channel copies its base channel, so copies compute the same values
and a norm's eval-mode output is copied with them. Along a conv's or linear's input channels each
base weight is split between the copies of its input channel (divided by how many copies the conv's
group holds), so every consumer sums to what the base computed. Tensors new in an inherited part of
the model (the 1x1 projection timm adds where a stage's width departs from the stem's) start as
the identity between the two copies of one base space they join. `noise` then perturbs the
weights of the copied units only, to break their symmetry for training.
"""

from __future__ import annotations

import math

import torch

from timm_compound.errors import CompoundError
from timm_compound.inherit.graph import ChannelGraph
from timm_compound.inherit.mapping import ChannelMaps


def _mismatch(name: str, got: tuple[int, ...], want: tuple[int, ...], graphs: list[ChannelGraph]) -> CompoundError:
    why = next((g.opaque[name] for g in graphs if name in g.opaque), None)
    reason = (
        f": it passes through {why}"
        if why
        else ": the trace found no channels along the dimension that changes (it is not used like a conv, norm or bias)"
    )
    return CompoundError(f"{name}: cannot grow {got} into {want}{reason}")


def _grouped_weight(
    name: str, weight: torch.Tensor, out_idx: torch.Tensor, in_idx: torch.Tensor, groups: int, wide_groups: int
) -> torch.Tensor:
    """W'[o, k] = W[out(o), position of in(k) in its base group] / copies of in(k) in o's grown group."""
    c_out, c_in = weight.shape[0], weight.shape[1] * groups
    wide_in = in_idx.numel()
    if groups == 1 and wide_groups == 1:
        counts = torch.bincount(in_idx, minlength=c_in).to(weight.dtype)
        grown = weight.index_select(0, out_idx).index_select(1, in_idx)
        return grown.div_(counts[in_idx].view(1, -1, *[1] * (weight.dim() - 2)))
    per_group, wide_per_group = c_in // groups, wide_in // wide_groups
    src = in_idx.view(wide_groups, wide_per_group)  # base input channel of each grown input, by group
    counts = torch.zeros(wide_groups, c_in).scatter_add_(1, src, torch.ones(src.shape))
    group_of = torch.arange(out_idx.numel()) // (out_idx.numel() // wide_groups)
    base_group = out_idx // (c_out // groups)
    position = src[group_of] - base_group[:, None] * per_group
    covered = counts[group_of[:, None], base_group[:, None] * per_group + torch.arange(per_group)] > 0
    if (position < 0).any() or (position >= per_group).any() or not covered.all():
        raise CompoundError(
            f"{name}: a grouped conv ({groups} -> {wide_groups} groups) whose groups would read "
            "channels of other groups: its channels cannot be copied consistently"
        )
    copies = counts.gather(1, src)[group_of].to(weight.dtype)
    shape = (*position.shape, *[1] * (weight.dim() - 2))
    return weight[out_idx[:, None], position] / copies.view(shape)


def grow_tensor(
    grown_name: str, base_name: str, base: torch.Tensor, want: tuple[int, ...], maps: ChannelMaps
) -> torch.Tensor:
    """The grown value of one inherited tensor."""
    grown_uses, base_uses = maps.grown.resolved(grown_name), maps.base.resolved(base_name)
    value = base
    if any(use.role == "in" for use in grown_uses.values()):
        if set(grown_uses) != {0, 1} or grown_uses[1].role != "in":
            raise CompoundError(f"{grown_name}: a weight whose input channels are not its second dimension")
        out_idx = maps.index(grown_uses[0].entry, base_uses[0].entry)
        in_idx = maps.index(grown_uses[1].entry, base_uses[1].entry)
        value = _grouped_weight(grown_name, base, out_idx, in_idx, base_uses[1].groups, grown_uses[1].groups)
    else:
        for dim, use in sorted(grown_uses.items()):
            value = value.index_select(dim, maps.index(use.entry, base_uses[dim].entry))
    if tuple(value.shape) != tuple(want):
        raise _mismatch(grown_name, tuple(base.shape), tuple(want), [maps.grown, maps.base])
    return value


def bridge_tensor(name: str, current: torch.Tensor, maps: ChannelMaps) -> torch.Tensor:
    """A tensor new in an inherited part of the model, set so that its layer is the identity:
    a norm passes its input through, a conv selects one copy of each channel, a bias is zero."""
    graph = maps.grown
    if name in graph.norms:
        kind, eps = graph.norms[name]
        fill = {"mean": 0.0, "var": 1.0, "scale": math.sqrt(1.0 + eps), "shift": 0.0}[kind]
        return torch.full_like(current, fill)
    if name in graph.biases and graph.biases[name] in graph.conv_groups:
        return torch.zeros_like(current)
    uses = graph.resolved(name)
    if name in graph.conv_groups and set(uses) == {0, 1}:
        out_side, in_side = maps.base_channels(uses[0].entry), maps.base_channels(uses[1].entry)
        kernel = tuple(current.shape[2:])
        if out_side is None or in_side is None or out_side[0] != in_side[0]:
            raise CompoundError(
                f"{name} is new in the grown model and joins channels that were not one set of "
                "channels in the base: it cannot start as the identity"
            )
        if graph.conv_groups[name] != 1 or any(k % 2 == 0 for k in kernel):
            raise CompoundError(
                f"{name} is new in the grown model; only an ungrouped conv with an odd kernel can start as the identity"
            )
        out_base, in_base = out_side[1], in_side[1]
        first = torch.full((int(in_base.max()) + 1,), in_base.numel(), dtype=torch.long)
        first.scatter_reduce_(0, in_base, torch.arange(in_base.numel()), "amin")
        weight = torch.zeros_like(current)
        weight[(torch.arange(current.shape[0]), first[out_base], *[torch.tensor(k // 2) for k in kernel])] = 1.0
        return weight
    if not uses and name not in graph.opaque:
        return current  # never read by the forward pass (a norm's step counter)
    raise CompoundError(
        f"{name} is new in the grown model outside its new blocks, and is neither a norm, "
        "a conv nor a bias that can start as the identity"
    )


def add_noise(state: dict[str, torch.Tensor], maps: ChannelMaps, noise: float, generator: torch.Generator) -> None:
    """Perturb the weights of copied units (each conv's and linear's output channels past the first
    copy of their base channel) by noise x the weight's standard deviation, in place."""
    for name, weight in state.items():
        uses = maps.grown.resolved(name)
        if name not in maps.grown.conv_groups or 0 not in uses or not weight.is_floating_point():
            continue
        side = maps.base_channels(uses[0].entry)
        if side is None:
            continue
        index = side[1]
        seen = torch.zeros(index.numel(), dtype=torch.bool)
        first = torch.full((int(index.max()) + 1,), index.numel(), dtype=torch.long)
        first.scatter_reduce_(0, index, torch.arange(index.numel()), "amin")
        seen[first[first < index.numel()]] = True
        copies = ~seen
        if not copies.any():
            continue
        scale = float(weight.std()) if weight.numel() > 1 else 1.0
        bump = torch.randn(weight[copies].shape, generator=generator) * noise * scale
        weight[copies] += bump.to(weight.dtype)
