"""Net2DeeperNet for residual blocks: a new block starts as the identity.

The rule says how (`inherit.identity`, data, not code per family): block-relative names of a
submodule, all of whose parameters are zeroed (a residual block's last norm: its output is then 0
and the block returns its shortcut), or of a single parameter (ConvNeXt's layer scale `gamma`).
The first name the block has is used, so one list serves a family whose blocks differ (a ResNet
Bottleneck's last norm is `bn3`, a BasicBlock's `bn2`). `check_identity` then confirms, on a real
input, that every new block returns its input.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError


def _zeroed(block: nn.Module, identity: list[str]) -> tuple[str, list[str]] | None:
    """(the entry used, the block-relative names of the tensors it zeroes)."""
    modules = dict(block.named_modules())
    params = dict(block.named_parameters())
    for entry in identity:
        if entry in modules and entry:
            names = [f"{entry}.{n}" for n, _ in modules[entry].named_parameters()]
            if names:
                return entry, names
        if entry in params:
            return entry, [entry]
    return None


def identity_tensors(model: nn.Module, new_blocks: list[str], identity: list[str], where: str) -> dict[str, str]:
    """model tensor name -> the rule entry that zeroes it, for every new block."""
    zeroed: dict[str, str] = {}
    for path in new_blocks:
        block = model.get_submodule(path)
        found = _zeroed(block, identity)
        if found is None:
            raise CompoundError(
                f"{where}: new block {path} ({type(block).__name__}) has none of inherit.identity "
                f"{identity}: the rule cannot make it start as the identity"
            )
        entry, names = found
        zeroed.update({f"{path}.{name}": entry for name in names})
    return zeroed


@contextmanager
def check_identity(model: nn.Module, new_blocks: list[str], used: dict[str, str], where: str, tolerance: float):
    """Within the block, every new block's forward must return its input (checked as it runs)."""
    entry_of = {name.rsplit(".", 1)[0]: entry for name, entry in used.items()}
    failures: list[str] = []
    inputs: dict[str, torch.Tensor | None] = {}
    handles = []
    for path in new_blocks:
        block = model.get_submodule(path)
        entry = next((e for prefix, e in entry_of.items() if prefix == path or prefix.startswith(path + ".")), "?")

        def pre(module, args, path=path):
            inputs[path] = args[0].detach().clone() if args and isinstance(args[0], torch.Tensor) else None

        def post(module, args, output, path=path, entry=entry, kind=type(block).__name__):
            given = inputs.pop(path, None)
            if not isinstance(output, torch.Tensor) or given is None or output.shape != given.shape:
                failures.append(f"new block {path} ({kind}) changes its input's shape: it cannot be the identity")
                return
            scale = float(given.abs().max()) or 1.0
            error = float((output - given).abs().max()) / scale
            if error > tolerance:
                failures.append(
                    f"new block {path} ({kind}) is not the identity with `{entry}` zeroed "
                    f"(relative difference {error:.2e}): the block has no residual connection, or "
                    "its branch is not zero when that is"
                )

        handles += [block.register_forward_pre_hook(pre), block.register_forward_hook(post)]
    try:
        yield failures
    finally:
        for handle in handles:
            handle.remove()
    if failures:
        raise CompoundError(f"{where}: {failures[0]}")
