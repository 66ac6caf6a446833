"""The `norm` section `timm-compound rules new` proposes: where the constructor takes its norm layer,
and how the built model uses it, found by running the base once on a small input.

- `arg`: a `norm_layer` constructor argument, or a `norm_layer` field of a config dataclass
  (`model_cfg.norm_layer`);
- `takes`: `norm_act` when the model builds timm norm-act layers (the norm carries its activation),
  `norm` when it builds plain batch norms and keeps its activations as modules of their own;
- `activations` (with `takes: norm`): per module class, the [norm, activation] children where the
  activation's input *is* the norm's output in a real forward pass (an nn.Identity between them passes
  the same tensor). A norm before a residual addition is not listed: the sum feeds the activation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn
from timm.layers import BatchNormAct2d

_ACTIVATION_MODULES = ("torch.nn.modules.activation", "timm.layers.activations")


def norm_arg(args: dict[str, Any]) -> str | None:
    """The constructor argument, or `dataclass_arg.field`, that takes the norm layer."""
    if "norm_layer" in args:
        return "norm_layer"
    for name, value in args.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "norm_layer"):
            return f"{name}.norm_layer"
    return None


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__.startswith(_ACTIVATION_MODULES)


def activation_pairs(model: nn.Module, pixels: int = 64) -> tuple[dict[str, list[list[str]]], list[str]]:
    """({module class: [[norm child, activation child], ...]} where, in a forward pass at `pixels` px, the
    activation is applied to exactly the norm's output; the norms of such pairs inside an nn.Sequential,
    whose numbered children have no name a rule could list)."""
    names = {module: name for name, module in model.named_modules()}
    produced: dict[int, tuple[str, torch.Tensor, int]] = {}  # id(output) -> (norm path, output kept alive, version)
    found: dict[str, list[list[str]]] = {}
    unnamed: list[str] = []
    handles = []

    def after_norm(module, _inputs, output):
        produced[id(output)] = (names[module], output, output._version)

    def before_activation(module, inputs):
        norm_path, output, version = produced.get(id(inputs[0]) if inputs else None, ("", None, 0))
        if output is None or output._version != version:  # not a norm's output, or changed in place (x += shortcut)
            return
        act_path = names[module]
        parent, _, norm_child = norm_path.rpartition(".")
        act_parent, _, act_child = act_path.rpartition(".")
        if parent != act_parent:
            return
        container = model.get_submodule(parent)
        if isinstance(container, nn.Sequential) or not (norm_child.isidentifier() and act_child.isidentifier()):
            unnamed.append(norm_path)  # numbered children move when depth grows: no name to list
            return
        pairs = found.setdefault(type(container).__name__, [])
        if [norm_child, act_child] not in pairs:
            pairs.append([norm_child, act_child])

    for module in model.modules():
        if type(module) in (nn.BatchNorm2d, nn.SyncBatchNorm):
            handles.append(module.register_forward_hook(after_norm))
        elif _is_activation(module):
            handles.append(module.register_forward_pre_hook(before_activation))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, pixels, pixels))
    finally:
        for handle in handles:
            handle.remove()
    return found, unnamed


def propose(args: dict[str, Any], arch: str, build) -> list[str]:
    """The rule file's lines for a `norm` section (or a comment saying why none is proposed);
    `build()` returns the base with real weights on the CPU."""
    arg = norm_arg(args)
    if arg is None:
        return [
            "# norm: no norm_layer argument found, so --norm group|layer|proxy cannot reach this model;",
            '# leave it out (batch norm only) or say why: norm: {fixed: "..."}',
        ]
    head = [
        "# Batch-independent norms (--norm group | layer | proxy | proxy-layer); see docs/norm.md.",
        "norm:",
        f"  arg: {arg}",
    ]
    try:
        model = build()
        if not any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules()):
            return [
                f"# norm: {arch} builds no batch norm layers (its {arg} is unset), so there is none to replace;",
                '# leave it out, or say why: norm: {fixed: "..."}',
            ]
        norm_act = any(isinstance(module, BatchNormAct2d) for module in model.modules())
        pairs, unnamed = ({}, []) if norm_act else activation_pairs(model)
    except Exception as error:  # a proposal, never a reason to fail `rules new`
        return [
            *head,
            f"  takes: norm_act   # CHECK: running {arch} to see how it uses its norms failed ({type(error).__name__})",
        ]
    lines = [*head, "  takes: norm_act" if norm_act else "  takes: norm"]
    lines += [
        "  group_size: 16",
        "  fallback: divisor   # CHECK: a width 16 does not divide gets the largest group size below 16 that does",
    ]
    if not norm_act:
        if pairs:
            lines.append("  activations:   # [norm, activation] children where the activation reads the norm's output")
            lines += [f"    {owner}: [{', '.join(f'[{n}, {a}]' for n, a in found)}]" for owner, found in pairs.items()]
        elif not unnamed:
            lines.append("  # no activation module reads a norm's output directly: proxy norms stay plain group norms")
        if unnamed:
            lines.append(
                f"  # CHECK: {len(unnamed)} norm(s) feeding an activation sit in an nn.Sequential ({unnamed[0]}, ...):"
            )
            lines.append("  # their numbered children move as depth grows, so Proxy Norm leaves them plain group norms")
    return lines
