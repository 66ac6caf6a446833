"""Group norm + activation with timm's norm-act interface, batch-independent in training and eval.

timm's own ``GroupNormAct`` asserts inside its constructor when the group size does not divide the
channels, which cannot say which layer of a model failed. This one records it (``indivisible``) and
builds with one group, so the scaler can list every such layer and its width after the build.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import create_act_layer

Fallback = Literal["error", "divisor"]


def groups_for(channels: int, group_size: int | None, num_groups: int | None, fallback: Fallback) -> tuple[int, bool]:
    """(number of groups, whether `group_size` failed to divide `channels`).

    `group_size` channels per group; `num_groups` fixed (1 = layer norm over channels and positions).
    With fallback 'divisor' a size that does not divide becomes the largest one below it that does.
    """
    if group_size is None:
        return num_groups or 1, False
    if channels % group_size == 0:
        return channels // group_size, False
    if fallback == "divisor":
        size = max(s for s in range(1, group_size + 1) if channels % s == 0)
        return channels // size, False
    return 1, True


class GroupNormAct2d(nn.GroupNorm):
    """GroupNorm (affine) -> drop -> activation; `group_size=None, num_groups=1` is layer norm.

    Signature as timm's norm-act layers (`num_channels` first, `apply_act`, `act_layer`, `inplace`),
    so a timm model takes it as `norm_layer` (its blocks bind the activation).
    """

    def __init__(
        self,
        num_channels: int,
        group_size: int | None = 16,
        num_groups: int | None = None,
        eps: float = 1e-5,
        affine: bool = True,
        apply_act: bool = True,
        act_layer: Any = nn.ReLU,
        act_kwargs: dict[str, Any] | None = None,
        inplace: bool = True,
        drop_layer: type[nn.Module] | None = None,
        fallback: Fallback = "error",
        device=None,
        dtype=None,
    ):
        groups, indivisible = groups_for(num_channels, group_size, num_groups, fallback)
        super().__init__(groups, num_channels, eps=eps, affine=affine, device=device, dtype=dtype)
        self.group_size = group_size
        self.indivisible = indivisible  # the scaler names the layer and refuses the model
        self.drop = drop_layer() if drop_layer is not None else nn.Identity()
        self.act = _activation(act_layer, act_kwargs, inplace) if apply_act else nn.Identity()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(self.normalise(x)))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, group_size={self.group_size}"


def _activation(act_layer: Any, act_kwargs: dict[str, Any] | None, inplace: bool) -> nn.Module:
    return create_act_layer(act_layer, inplace=inplace, **(act_kwargs or {})) or nn.Identity()


def indivisible_layers(model: nn.Module) -> list[tuple[str, int, int]]:
    """(module name, channels, group size) of every GroupNormAct2d its group size could not split."""
    return [
        (name, module.num_channels, module.group_size)
        for name, module in model.named_modules()
        if isinstance(module, GroupNormAct2d) and module.indivisible
    ]
