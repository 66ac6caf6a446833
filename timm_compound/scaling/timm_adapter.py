"""Every use of timm internals lives here, so a timm upgrade touches one file.

The scaler needs two things timm does not offer publicly:

* the keyword arguments a base entrypoint passes to its model class (to read the
  base's stage depths and widths without building it), and
* a way to change those arguments in flight, so the base entrypoint's own
  logic (feature extraction, kwargs filters, post-processing) still runs.

Every timm model module calls its module-level ``build_model_with_cfg``; we swap
that name, for the duration of one call and under a lock, with a wrapper that
rewrites only the calling thread's build (other threads' timm builds pass through).
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import timm
from timm.models import _registry
from timm.models._pretrained import DefaultCfg, PretrainedCfg

_lock = threading.RLock()
# timm files each entrypoint under the last part of its module name: timm_compound.registry.compound_scaled
PLUGIN_MODULE = "compound_scaled"


@dataclass
class BuildCall:
    """One call to timm's build_model_with_cfg: the model class, variant name and its kwargs."""

    model_cls: Any
    variant: str
    pretrained: bool
    kwargs: dict[str, Any]

    def arg(self, name: str) -> Any:
        """The value a constructor argument gets: passed explicitly, else the class default."""
        if name in self.kwargs:
            return self.kwargs[name]
        try:
            parameter = inspect.signature(self.model_cls).parameters[name]
        except KeyError:
            raise KeyError(f"{self.model_cls.__name__} has no constructor argument {name!r}") from None
        if parameter.default is inspect.Parameter.empty:
            raise KeyError(f"{self.model_cls.__name__} argument {name!r} has no default and was not passed")
        return parameter.default


class _Captured(Exception):
    def __init__(self, call: BuildCall):
        self.call = call


def is_builtin_model(name: str) -> bool:
    """A timm model that timm itself (not this plugin) registered."""
    return timm.is_model(name) and _registry._model_to_module.get(name) != PLUGIN_MODULE


def is_model(name: str) -> bool:
    return timm.is_model(name)


def entrypoint(name: str) -> Callable[..., Any]:
    return timm.models.model_entrypoint(name)


@contextmanager
def _intercept(base: str, transform: Callable[[BuildCall], BuildCall]):
    fn = entrypoint(base)
    module = sys.modules[fn.__module__]
    original = getattr(module, "build_model_with_cfg", None)
    if original is None:
        raise RuntimeError(f"timm module {module.__name__} does not build {base} through build_model_with_cfg")

    owner = threading.get_ident()

    def wrapper(model_cls, variant, pretrained=False, **kwargs):
        if threading.get_ident() != owner:  # another thread's plain timm build: leave it alone
            return original(model_cls, variant, pretrained, **kwargs)
        call = transform(BuildCall(model_cls, variant, pretrained, kwargs))
        return original(call.model_cls, call.variant, call.pretrained, **call.kwargs)

    with _lock:
        module.build_model_with_cfg = wrapper
        try:
            yield fn
        finally:
            module.build_model_with_cfg = original


def capture(base: str, **kwargs) -> BuildCall:
    """The build call `base`'s entrypoint would make, without building anything."""

    def stop(call: BuildCall) -> BuildCall:
        raise _Captured(call)

    with _intercept(base, stop) as fn:
        try:
            fn(pretrained=False, **kwargs)
        except _Captured as captured:
            return captured.call
    raise RuntimeError(f"timm entrypoint {base} returned without calling build_model_with_cfg")


def build(base: str, transform: Callable[[BuildCall], BuildCall], pretrained: bool = False, **kwargs):
    """Run `base`'s own entrypoint with its build call rewritten by `transform`."""
    with _intercept(base, transform) as fn:
        return fn(pretrained=pretrained, **kwargs)


def base_pretrained_cfg(base: str) -> dict[str, Any]:
    cfg = timm.models.get_pretrained_cfg(base)
    if cfg is None:
        raise KeyError(f"timm has no pretrained_cfg for {base}")
    return cfg.to_dict()


def has_weights(cfg: dict[str, Any] | PretrainedCfg | None) -> bool:
    if cfg is None:
        return False
    if isinstance(cfg, dict):
        cfg = PretrainedCfg(**{k: v for k, v in cfg.items() if k in PretrainedCfg.__dataclass_fields__})
    return cfg.has_weights


def register(fn: Callable[..., Any], cfg: dict[str, Any]) -> None:
    """Register an entrypoint defined in the plugin module, with its default pretrained_cfg."""
    module = sys.modules[fn.__module__]
    module.default_cfgs[fn.__name__] = DefaultCfg(tags=[""], cfgs={"": PretrainedCfg(**cfg)})
    timm.models.register_model(fn)


def model_args(model) -> dict[str, Any]:
    """The kwargs timm recorded when it built `model` (all of them, drop rates included)."""
    return dict(getattr(model, "_model_args", None) or {})
