"""Training-step memory of a model, estimated on the meta device (no real weights, no real step)."""

from __future__ import annotations

import torch
import torch.nn as nn

from timm_compound.cost.meta import in_chans, meta_copy, on_meta


def train_step_memory(model: nn.Module, batch_size: int, resolution: int, num_classes: int | None = None) -> int:
    """Peak bytes live during one steady-state training step, estimated on meta (no real weights).

    The step: ``zero_grad(set_to_none=True)``, forward, cross-entropy, backward,
    ``SGD(momentum=0.9).step()``, with the momentum buffers already there (a step
    after the first). The peak counts parameters, buffers, gradients, momentum,
    saved activations, temporaries and the input batch, as torch's MemTracker sees
    them. Backend workspaces that meta kernels never allocate (e.g. CPU im2col
    buffers of slow_conv2d) are not included.
    """
    from torch.distributed._tools.mem_tracker import MemTracker

    model = model if on_meta(model) else meta_copy(model)
    model.train()
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    y = torch.zeros(batch_size, dtype=torch.long, device="meta")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _sgd_step(model, x, y, optimizer)     # creates the momentum buffers: the next step is the steady state
    tracker = MemTracker()
    tracker.track_external(model, optimizer)
    with tracker:
        _sgd_step(model, x, y, optimizer)
    peak = tracker.get_tracker_snapshot("peak")[torch.device("meta")]["Total"]
    return int(peak) + x.numel() * x.element_size() + y.numel() * y.element_size()


def _sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
