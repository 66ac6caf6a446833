"""Moving a base's weights into a larger model of the same kind, and proving it computes the same.

This is the part that knows no plans or rules: given the base, the grown model (fresh weights),
which blocks correspond (`Alignment`) and how a new block is made the identity, it

1. traces both on one input (`trace`; the grown one may be traced as a structure-only meta copy),
2. maps every grown channel space to the base's (`mapping`) and grows each inherited tensor (`widen`),
3. zeroes the identity tensors of every new block (`deepen`) and loads the result,
4. runs the grown model on the traced input: each new block must return its input and the output
   must be the base's within `TOLERANCE` (`verify`, which names the first layer that differs);
5. only then adds `noise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.inherit import deepen, verify, widen
from timm_compound.inherit.align import Alignment
from timm_compound.inherit.graph import TraceError
from timm_compound.inherit.mapping import ChannelMaps, channel_maps
from timm_compound.inherit.trace import trace

PROBE_PIXELS = 64  # the traced input: small; a global-pool convnet computes the same function at any size
TOLERANCE = 1e-4  # relative: max |grown - base| / max |base| on the probe input


@dataclass
class Growth:
    """What `grow` did: the channel maps, the tensors zeroed in new blocks, and how far the outputs moved."""

    maps: ChannelMaps
    zeroed: dict[str, str]
    deviation: float

    @property
    def widened(self) -> int:
        """How many channel spaces grew."""
        sizes = self.maps.base.spaces.sizes
        return sum(1 for root, index in self.maps.maps.items() if index.numel() > sizes[self.maps.source[root]])


def _traced(model: nn.Module, x: torch.Tensor, which: str, where: str):
    try:
        return trace(model, x)
    except TraceError as error:
        raise CompoundError(f"{where}: tracing the {which} model failed: {error}") from None


def grown_state(
    grown: dict[str, torch.Tensor], base: dict[str, torch.Tensor], alignment: Alignment, maps: ChannelMaps, where: str
) -> dict[str, torch.Tensor]:
    """The grown model's state dict: inherited tensors grown, bridges set to the identity, new blocks as they are."""
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for name, current in grown.items():
        base_name = alignment.base_name(name)
        if base_name is None:
            state[name] = current  # a new block: fresh weights, made the identity later
        elif base_name in base:
            used.add(base_name)
            value = widen.grow_tensor(name, base_name, base[base_name], tuple(current.shape), maps)
            state[name] = value.to(current.dtype)
        else:
            state[name] = widen.bridge_tensor(name, current, maps)
    lost = [name for name in base if name not in used]
    if lost:
        raise CompoundError(
            f"{where}: the grown model has no place for the base's {lost[0]}"
            f"{f' (and {len(lost) - 1} more)' if len(lost) > 1 else ''}"
        )
    return state


def grow(
    base: nn.Module,
    grown: nn.Module,
    alignment: Alignment,
    identity: list[str],
    *,
    x: torch.Tensor,
    seed: int = 0,
    noise: float = 0.0,
    where: str = "growing",
    structure: nn.Module | None = None,
) -> Growth:
    """Load `base`'s weights into `grown` (in place) so that it computes the base's function, checked on `x`.

    `identity`: the rule's `inherit.identity` for the new blocks `alignment` lists. `structure`: a
    meta-device copy of `grown` to trace instead of running it (the same modules, no arithmetic).
    """
    base_graph, base_out = _traced(base, x.to(next(base.parameters()).device), "base", where)
    grown_graph, _ = _traced(
        structure if structure is not None else grown, x.to("meta") if structure is not None else x, "grown", where
    )
    base_tensors = {
        k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
        for k, v in base.state_dict().items()
    }
    current = grown.state_dict()
    pairs = [(g, b) for g in current if (b := alignment.base_name(g)) is not None and b in base_tensors]
    try:
        maps = channel_maps(grown_graph, base_graph, pairs, seed)
    except CompoundError as error:
        raise CompoundError(f"{where}: {error}") from None
    state = grown_state(current, base_tensors, alignment, maps, where)
    zeroed = deepen.identity_tensors(grown, alignment.new, identity, where)
    for name in zeroed:
        state[name] = torch.zeros_like(state[name])
    grown.load_state_dict(state)

    base_out = base_out.detach().cpu()
    with deepen.check_identity(grown, alignment.new, zeroed, where, TOLERANCE):
        out = verify.run(grown, x)
    deviation = verify.relative_difference(out, base_out)
    if deviation > TOLERANCE:
        layer = verify.first_divergence(base, grown, x, maps, alignment, TOLERANCE)
        raise CompoundError(
            f"{where}: the grown model's outputs differ from the base's by {deviation:.2e} "
            f"(relative){'; first at ' + layer if layer else ''}: this structure cannot be grown "
            "function-preservingly"
        )
    if noise:
        state = grown.state_dict()
        widen.add_noise(state, maps, noise, torch.Generator().manual_seed(seed + 1))
        grown.load_state_dict(state)
        deviation = verify.relative_difference(verify.run(grown, x), base_out)
    return Growth(maps, zeroed, deviation)
