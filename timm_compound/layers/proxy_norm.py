"""Proxy-Normalized Activations (Labatie, Masters, Eaton-Rosen, Luschi, "Proxy-Normalizing Activations
to Match Batch Normalization while Removing Batch Dependence", NeurIPS 2021).

Group or layer norm keeps each image's statistics to itself, but after the affine transform and the
activation a channel drifts away from zero mean and unit variance, more so with depth. Proxy Norm
undoes that drift without looking at the batch: it applies the same affine transform and activation
to a standard Gaussian *proxy* of the normalised input and normalises the real activation by the
proxy's per-channel mean and standard deviation:

    y = norm(x);  a = act(gamma * y + beta)
    out = gamma2 * (a - E[act(gamma * Y + beta)]) / sqrt(Var[act(gamma * Y + beta)] + eps) + beta2,
    Y ~ N(0, 1)

The moments are estimated on ``PROXY_SAMPLES`` deterministic quantiles of N(0, 1) (the i-th of n at
probability (i + 0.5) / n, rescaled to unit variance), the same for every activation, so the layer has
no running statistics and computes the same function in training and eval. Its cost per call is one
activation over channels x samples, whatever the batch size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from timm_compound.layers.group_norm_act import Fallback, GroupNormAct2d

PROXY_SAMPLES = 256


def gaussian_proxy(samples: int = PROXY_SAMPLES, device=None) -> torch.Tensor:
    """`samples` deterministic quantiles of N(0, 1), with mean 0 and variance exactly 1 (float32)."""
    probabilities = (torch.arange(samples, device=device, dtype=torch.float32) + 0.5) / samples
    quantiles = torch.special.ndtri(probabilities)
    return quantiles / quantiles.pow(2).mean().sqrt()


class ProxyNormAct2d(GroupNormAct2d):
    """Group (or layer) norm -> affine -> activation -> proxy normalisation -> second affine.

    Without an activation (`apply_act=False`, a residual block's last norm) it is the plain group norm:
    there is no activation whose drift to undo. A model whose blocks keep norm and activation as
    separate modules hands the activation over with `attach_activation`.
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
        proxy_samples: int = PROXY_SAMPLES,
        proxy_affine: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__(
            num_channels,
            group_size=group_size,
            num_groups=num_groups,
            eps=eps,
            affine=affine,
            apply_act=apply_act,
            act_layer=act_layer,
            act_kwargs=act_kwargs,
            inplace=inplace,
            drop_layer=drop_layer,
            fallback=fallback,
            device=device,
            dtype=dtype,
        )
        self.proxy_samples = proxy_samples
        self.proxy_affine = proxy_affine
        self.proxied = False
        if apply_act:
            self._start_proxy(device, dtype)

    def _start_proxy(self, device=None, dtype=None) -> None:
        self.proxied = True
        if self.proxy_affine:
            self.proxy_weight = nn.Parameter(torch.ones(self.num_channels, device=device, dtype=dtype))
            self.proxy_bias = nn.Parameter(torch.zeros(self.num_channels, device=device, dtype=dtype))

    def attach_activation(self, act: nn.Module) -> None:
        """Take over the activation that follows this norm in its block (which then uses nn.Identity)."""
        if self.proxied:
            raise ValueError("this ProxyNormAct2d already has its activation")
        self.act = act
        reference = self.weight if self.weight is not None else None
        self._start_proxy(
            None if reference is None else reference.device, None if reference is None else reference.dtype
        )

    def proxy_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and variance of act(gamma * Y + beta), Y the Gaussian proxy (float32)."""
        device = self.weight.device if self.weight is not None else None
        proxy = gaussian_proxy(self.proxy_samples, device)
        gamma = self.weight.float() if self.weight is not None else torch.ones(self.num_channels, device=device)
        beta = self.bias.float() if self.bias is not None else torch.zeros(self.num_channels, device=device)
        # [1, C, samples]: channels on dim 1, as an activation with per-channel parameters expects
        activated = self.act(gamma[None, :, None] * proxy[None, None, :] + beta[None, :, None])
        return activated.mean(dim=(0, 2)), activated.var(dim=(0, 2), unbiased=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.drop(self.normalise(x)))
        if not self.proxied:
            return out
        mean, var = self.proxy_moments()
        # gamma2 * (a - mean) / std + beta2 as one multiply-add over the feature map: a * scale + shift
        scale = torch.rsqrt(var + self.eps)
        if self.proxy_affine:
            scale = scale * self.proxy_weight
            shift = self.proxy_bias - mean * scale
        else:
            shift = -mean * scale
        return torch.addcmul(shift.to(out.dtype)[None, :, None, None], out, scale.to(out.dtype)[None, :, None, None])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, proxy={self.proxied}, proxy_samples={self.proxy_samples}"
