"""Training-step memory: a module-level timeline of one SGD-momentum step, traced on meta.

The step (``zero_grad(set_to_none=True)``, forward, cross-entropy, backward,
``SGD(momentum=0.9).step()`` with momentum buffers already there) holds, throughout,
the weights, buffers, momentum, input batch and labels. On top of that, the forward
leaves each *unit* (a leaf module, or a module that owns parameters) holding the
tensors autograd saved for backward (each storage once, parameters excluded). The
backward walks the units in reverse: unit i's gradients appear and stay, its saved
tensors go, and while it runs its input and output gradients are live. The estimate
is the peak of that walk:

    static + max_i ( saved by units <= i  +  grads of units >= i  +  in/out bytes of unit i )

Tracing it needs one forward on meta with autograd's saved-tensor hooks, so it is
exact arithmetic over a simplified timeline, not a measurement: within 1% of torch's
``MemTracker`` on the whole step for the shipped families (tested), and within 10% of a
real CPU step at >= 96 px. Backend workspaces (e.g. CPU im2col buffers) are not included.
The cost model composes the same units from memoised blocks, so both paths agree exactly.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn as nn

from timm_compound.cost.meta import in_chans, meta_copy, on_meta


@dataclass(slots=True)
class Unit:
    saved: int  # bytes of storages this unit was the first to save for backward
    grads: int  # bytes of the gradients of the parameters it owns
    transient: int  # bytes of its tensor inputs and output: their gradients are live in its backward

    def copy(self) -> Unit:
        return Unit(self.saved, self.grads, self.transient)


def nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    return 0


def storage_id(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def peak(units: list[Unit], static: int) -> int:
    """The peak of the step's timeline (see the module docstring)."""
    live, grads, best = sum(u.saved for u in units), 0, 0
    for unit in reversed(units):
        grads += unit.grads
        best = max(best, live + grads + unit.transient)
        live -= unit.saved
    return static + best


def _is_unit(module: nn.Module) -> bool:
    return not module._modules or any(p is not None for p in module._parameters.values())


class UnitTracer:
    """Records units while a module runs forward in training mode (hooks removed on exit).

    `static` tensors (parameters, buffers, the input batch) are held throughout and never
    count as saved. `skip(module)` leaves a module's own hooks out (a stub adds its units itself).
    """

    def __init__(self, root: nn.Module, static=(), skip=None):
        self.root, self.skip = root, skip
        self.units: list[Unit] = []
        self.static = {storage_id(t) for t in (*root.parameters(), *root.buffers(), *static)}
        self.first_saved: dict[int, int] = {}  # storage -> index of the unit that saved it first
        self._open: list[int] = []
        self._alive: list = []
        self._handles: list = []
        self._saved_hooks = None

    def current(self) -> int:
        """The unit that ops running now belong to."""
        if not self.units:
            self.units.append(Unit(0, 0, 0))  # ops before the first module
        return len(self.units) - 1

    def claim(self, tensor: torch.Tensor, index: int) -> None:
        """`tensor`'s storage is saved by unit `index`, unless it is static or already saved."""
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key not in self.static and key not in self.first_saved:
            self.first_saved[key] = index
            self.units[index].saved += storage.nbytes()
            self._alive.append(storage)  # a storage's address is its identity only while it lives

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self.claim(tensor, self.current())
        return tensor

    def _pre(self, module, args) -> None:
        own = sum(nbytes(p) for p in module._parameters.values() if p is not None and p.requires_grad)
        self.units.append(Unit(0, own, nbytes(args)))
        self._open.append(len(self.units) - 1)

    def _post(self, module, args, output) -> None:
        self.units[self._open.pop()].transient += nbytes(output)

    def __enter__(self) -> UnitTracer:
        for module in self.root.modules():
            if _is_unit(module) and not (self.skip and self.skip(module)):
                self._handles.append(module.register_forward_pre_hook(self._pre))
                self._handles.append(module.register_forward_hook(self._post))
        self._saved_hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._saved_hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._saved_hooks.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def static_bytes(param_bytes: int, buffer_bytes: int, batch_size: int, channels: int, resolution: int) -> int:
    """Held for the whole step: weights, buffers, momentum, the float32 input batch and int64 labels."""
    return 2 * param_bytes + buffer_bytes + batch_size * channels * resolution * resolution * 4 + batch_size * 8


def trace_units(model: nn.Module, batch_size: int, resolution: int, skip=None, around=None) -> list[Unit]:
    """The units of one training forward + loss of `model` on meta (training mode; flags restored after).

    `skip` and `around(tracer)` (a context manager entered inside the tracer) let the cost
    model's stubs add their own units.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.train()
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    y = torch.zeros(batch_size, dtype=torch.long, device="meta")
    try:
        with torch.enable_grad(), UnitTracer(model, static=(x, y), skip=skip) as tracer:
            with around(tracer) if around is not None else nullcontext():
                torch.nn.functional.cross_entropy(model(x), y)
    finally:
        for module, training in flags:
            module.training = training
    return tracer.units


def train_step_memory(model: nn.Module, batch_size: int, resolution: int) -> int:
    """Peak bytes of one SGD-momentum training step of a whole model, traced on meta (no real weights)."""
    model = model if on_meta(model) else meta_copy(model)
    units = trace_units(model, batch_size, resolution)
    trainable = sum(nbytes(p) for p in model.parameters() if p.requires_grad)
    buffers = sum(nbytes(b) for b in model.buffers())
    return peak(units, static_bytes(trainable, buffers, batch_size, in_chans(model), resolution))


def memtracker_step_memory(model: nn.Module, batch_size: int, resolution: int) -> int:
    """The reference: torch's MemTracker over a real (meta) steady-state step, tensor by tensor.

    Seconds per model; the tests check ``train_step_memory`` against it.
    """
    from torch.distributed._tools.mem_tracker import MemTracker

    model = meta_copy(model)
    model.train()
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    y = torch.zeros(batch_size, dtype=torch.long, device="meta")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _sgd_step(model, x, y, optimizer)  # creates the momentum buffers: the next step is the steady state
    tracker = MemTracker()
    tracker.track_external(model, optimizer)
    with tracker:
        _sgd_step(model, x, y, optimizer)
    peak_bytes = tracker.get_tracker_snapshot("peak")[torch.device("meta")]["Total"]
    return int(peak_bytes) + x.numel() * x.element_size() + y.numel() * y.element_size()


def _sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
