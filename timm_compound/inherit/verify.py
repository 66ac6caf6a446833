"""Does the grown model compute what the base computes? Checked on a real input, not assumed.

`compare` runs the grown model on the input the base was traced with, checks every new block returns
its input, and compares the outputs. When they differ, `first_divergence` traces both models again
keeping each layer's output and names the first inherited layer whose output (read through the
channel maps) is not the base's: a structure the trace did not understand gets a clear error
instead of a silently wrong model.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from timm_compound.inherit.align import Alignment
from timm_compound.inherit.mapping import ChannelMaps
from timm_compound.inherit.trace import trace


def relative_difference(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|."""
    scale = float(want.abs().max()) if want.numel() else 0.0
    return float((got.float() - want.float()).abs().max()) / (scale or 1.0)


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x) in eval mode without gradients; the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


def first_divergence(
    base: nn.Module, grown: nn.Module, x: torch.Tensor, maps: ChannelMaps, alignment: Alignment, tolerance: float
) -> str | None:
    """'<layer> (relative difference d)' for the first inherited layer whose output differs from its base layer's."""
    base_graph, _ = trace(base, x.to(next(base.parameters()).device), keep_outputs=True)
    grown_graph, _ = trace(grown, x, keep_outputs=True)
    base_outputs = {name: (entry, out) for name, entry, _, out in base_graph.outputs}
    for name, entry, dim, out in grown_graph.outputs:
        base_name = alignment.base_name(name)
        if base_name not in base_outputs or out is None:
            continue
        base_entry, base_out = base_outputs[base_name]
        grown_entry = tuple(grown_graph.root(n) for n in entry)
        if any(root not in maps.maps for root in grown_entry):
            continue
        # the grown graph of this trace numbers spaces as the one the maps were made from: same model, same ops
        index = maps.index(grown_entry, tuple(base_graph.root(n) for n in base_entry))
        want = base_out.detach().cpu().index_select(dim, index)
        if want.shape != out.shape:
            continue
        difference = relative_difference(out.detach().cpu(), want)
        if difference > tolerance:
            return f"{name} (relative difference {difference:.2e})"
    return None
