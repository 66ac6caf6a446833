"""Which base channel each grown channel copies (Net2WiderNet's mapping), one map per grown space.

The grown model's spaces are related to the base's through the tensors it inherits: the output
channels of an inherited conv are a grown space whose *source* is the base conv's output space. Each
grown space of n' channels whose source has n gets one map of n' base channels: the first n are the
base's own channels in order, the rest are copies chosen at random (seeded). Every tensor that indexes
a space uses its map, so wherever two tensors are added, multiplied or concatenated they agree.

Grouped convolutions constrain the map: when the group count stays (ResNeXt's cardinality), each
group widens within itself; when the group size stays (depthwise convs, G16's groups of 16), whole
groups are copied. A space whose channels are mixed by an op the trace found (a LayerNorm over them,
a partial slice) may not widen at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from timm_compound.errors import CompoundError
from timm_compound.inherit.graph import ChannelGraph, Entry


@dataclass
class ChannelMaps:
    """grown space root -> (its source: the base space root, the base channel of each grown channel)."""

    grown: ChannelGraph
    base: ChannelGraph
    source: dict[int, int]
    maps: dict[int, torch.Tensor]

    def index(self, grown_entry: Entry, base_entry: Entry) -> torch.Tensor:
        """The base channel (in `base_entry`'s numbering) of each channel of `grown_entry`."""
        parts, offset = [], 0
        for g, b in zip(grown_entry, base_entry):
            parts.append(self.maps[self.grown.root(g)] + offset)
            offset += self.base.spaces.sizes[self.base.root(b)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def base_channels(self, grown_entry: Entry) -> tuple[tuple[int, ...], torch.Tensor] | None:
        """(source roots, base channel per grown channel, numbered along the sources), or None where a
        part of the entry has no source."""
        roots = tuple(self.source.get(self.grown.root(g)) for g in grown_entry)
        if None in roots:
            return None
        return roots, self.index(grown_entry, roots)


def correspond(grown: ChannelGraph, base: ChannelGraph, pairs: list[tuple[str, str]]) -> dict[int, int]:
    """Each grown space's source, read off the (grown name, base name) tensor pairs both models use."""
    source: dict[int, int] = {}
    for grown_name, base_name in pairs:
        grown_uses, base_uses = grown.resolved(grown_name), base.resolved(base_name)
        if set(grown_uses) != set(base_uses) or any(grown_uses[d].role != base_uses[d].role for d in grown_uses):
            raise CompoundError(
                f"{grown_name} is used differently by the grown model and by the base ({base_name}): "
                "their structures differ beyond depth and width"
            )
        for dim, use in grown_uses.items():
            base_entry = base_uses[dim].entry
            if len(use.entry) != len(base_entry):
                raise CompoundError(
                    f"{grown_name}: dimension {dim} concatenates {len(use.entry)} parts in the grown "
                    f"model and {len(base_entry)} in the base"
                )
            for g, b in zip(use.entry, base_entry):
                known = source.setdefault(g, b)
                if known != b:
                    raise CompoundError(
                        f"{grown_name}: its channels would copy two different sets of the base's "
                        "channels at once (the models join different tensors)"
                    )
    return source


def _group_constraints(grown: ChannelGraph, base: ChannelGraph, pairs: list[tuple[str, str]]) -> dict[int, set]:
    """grown root -> {(base groups, grown groups, conv)} for every grouped conv reading it."""
    found: dict[int, set] = {}
    for grown_name, base_name in pairs:
        groups = grown.conv_groups.get(grown_name, 1)
        base_groups = base.conv_groups.get(base_name, 1)
        if groups == 1 and base_groups == 1:
            continue
        entry = grown.resolved(grown_name)[1].entry
        if len(entry) != 1:
            raise CompoundError(f"{grown_name}: a grouped conv over concatenated channels cannot be widened")
        found.setdefault(entry[0], set()).add((base_groups, groups, grown_name))
    return found


def _wider(n: int, wide: int, generator: torch.Generator) -> torch.Tensor:
    """0..n-1, then wide - n random picks among them."""
    return torch.cat([torch.arange(n), torch.randint(n, (wide - n,), generator=generator)])


def _grouped_map(n: int, wide: int, constraints: set, generator: torch.Generator) -> torch.Tensor:
    kinds = {(g, g2) for g, g2, _ in constraints}
    conv = sorted(c for _, _, c in constraints)[0]
    if len(kinds) > 1:
        raise CompoundError(f"{conv}: convolutions with different groupings ({sorted(kinds)}) read the same channels")
    groups, wide_groups = next(iter(kinds))
    if n % groups or wide % wide_groups:
        raise CompoundError(f"{conv}: {n} -> {wide} channels do not divide into {groups} -> {wide_groups} groups")
    size, wide_size = n // groups, wide // wide_groups
    if groups == wide_groups:  # the group count stays: each group widens within itself
        return torch.cat([g * size + _wider(size, wide_size, generator) for g in range(groups)])
    if size == wide_size:  # the group size stays: whole groups are copied
        return (_wider(groups, wide_groups, generator)[:, None] * size + torch.arange(size)).flatten()
    raise CompoundError(
        f"{conv}: a grouped conv going from {groups} groups of {size} to {wide_groups} groups of "
        f"{wide_size} channels keeps neither its group count nor its group size, so its channels "
        "cannot be copied consistently"
    )


def channel_maps(grown: ChannelGraph, base: ChannelGraph, pairs: list[tuple[str, str]], seed: int) -> ChannelMaps:
    """The mapping of every grown space that has a source (see the module docstring)."""
    source = correspond(grown, base, pairs)
    constraints = _group_constraints(grown, base, pairs)
    named = {}
    for grown_name, _ in pairs:
        for use in grown.resolved(grown_name).values():
            for node in use.entry:
                named.setdefault(node, grown_name)
    generator = torch.Generator().manual_seed(seed)
    maps: dict[int, torch.Tensor] = {}
    for root in sorted(source):
        n, wide = base.spaces.sizes[source[root]], grown.spaces.sizes[root]
        where = named.get(root, "a tensor")
        if wide < n:
            raise CompoundError(f"{where}: {n} channels would shrink to {wide}: inheritance only grows a model")
        if wide == n:
            maps[root] = torch.arange(n)
            continue
        why = grown.spaces.why_blocked(root) or base.spaces.why_blocked(source[root])
        if why:
            raise CompoundError(
                f"{where}: its {n} channels would widen to {wide}, but they pass through {why}, "
                "so duplicating channels cannot preserve the base's function"
            )
        if root in constraints:
            maps[root] = _grouped_map(n, wide, constraints[root], generator)
        else:
            maps[root] = _wider(n, wide, generator)
    return ChannelMaps(grown, base, source, maps)
