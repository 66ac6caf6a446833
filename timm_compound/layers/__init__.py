"""Norm and activation layers timm-compound adds to timm's (as timm keeps its own in ``timm.layers``).

- ``GroupNormAct2d``: group norm (or layer norm, one group) + activation, with a group size that names
  the layer it cannot split instead of failing inside a constructor;
- ``ProxyNormAct2d``: the same followed by Proxy Normalization (Labatie et al., NeurIPS 2021).

Both fit where timm's ``BatchNormAct2d`` / ``GroupNormAct`` fit (``norm_layer=`` of a timm model).
"""

from timm_compound.layers.group_norm_act import GroupNormAct2d, indivisible_layers
from timm_compound.layers.proxy_norm import PROXY_SAMPLES, ProxyNormAct2d, gaussian_proxy

__all__ = ["PROXY_SAMPLES", "GroupNormAct2d", "ProxyNormAct2d", "gaussian_proxy", "indivisible_layers"]
