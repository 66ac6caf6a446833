"""Every use of timm internals lives here, so a timm upgrade touches one file.

The plugin needs three things timm does not offer publicly:

* the keyword arguments a base entrypoint passes to its model class (to read the
  base's stage depths and widths without building it), and
* a way to change those arguments in flight, so the base entrypoint's own
  logic (feature extraction, kwargs filters, post-processing) still runs;
* a say in what timm's `local-dir:` / `hf-hub:` model sources build (`guard_sources`), so a
  published timm-compound folder gets the same checks through `timm.create_model` as anywhere.

Every timm model module calls its module-level ``build_model_with_cfg``; we swap
that name, for the duration of one call and under a lock, with a wrapper that
rewrites only the calling thread's build (other threads' timm builds pass through).
"""

from __future__ import annotations

import inspect
import sys
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import timm
from timm.models import _registry
from timm.models._pretrained import DefaultCfg, PretrainedCfg

_lock = threading.RLock()
# build_model_with_cfg(model_cfg=...) calls model_cls(cfg=model_cfg): the class parameter -> the kwarg timm passes
_PASSED_AS = {"cfg": "model_cfg"}
# timm files each entrypoint under the last part of its module name: timm_compound.registry.compound_scaled
PLUGIN_MODULE = "compound_scaled"


def _loading_options() -> frozenset[str]:
    """Keyword arguments timm's create_model / build_model_with_cfg consume themselves: they say how a
    model is loaded (which weights file, strictness, features), not what it is. A rule or a published
    plan may never set them: `pretrained_cfg_overlay` could point timm at any file."""
    from timm.models._builder import build_model_with_cfg

    names = set(inspect.signature(build_model_with_cfg).parameters) | set(
        inspect.signature(timm.create_model).parameters
    )
    names |= {"features_only", "out_indices", "feature_cls", "device", "dtype", "compound_plan", "kwargs"}
    return frozenset(names - set(_PASSED_AS.values()))  # model_cfg is the class's `cfg`: a real argument


LOADING_OPTIONS = _loading_options()


@dataclass
class BuildCall:
    """One call to timm's build_model_with_cfg: the model class, variant name and its kwargs."""

    model_cls: Any
    variant: str
    pretrained: bool
    kwargs: dict[str, Any]

    def key(self, name: str) -> str:
        """The kwargs key that carries constructor argument `name`. timm's build_model_with_cfg takes a
        `model_cfg` and hands it to the class as `cfg` (VGG, RegNet), so a rule may name either."""
        if name in self.kwargs:
            return name
        for parameter, passed in _PASSED_AS.items():
            if name == parameter and passed in self.kwargs:
                return passed
            if name == passed and parameter in self.kwargs:
                return parameter
        return name

    def arg(self, name: str) -> Any:
        """The value a constructor argument gets: passed explicitly, else the class default."""
        _refuse_loading_option(name)
        key = self.key(name)
        if key in self.kwargs:
            return self.kwargs[key]
        parameter_name = next((p for p, passed in _PASSED_AS.items() if name == passed), name)
        try:
            parameter = inspect.signature(self.model_cls).parameters[parameter_name]
        except KeyError:
            raise KeyError(f"{self.model_cls.__name__} has no constructor argument {name!r}") from None
        if parameter.default is inspect.Parameter.empty:
            raise KeyError(f"{self.model_cls.__name__} argument {name!r} has no default and was not passed")
        return parameter.default

    def set(self, name: str, value: Any) -> None:
        """Give constructor argument `name` a new value, under the key timm passes it as."""
        _refuse_loading_option(name)
        key = self.key(name)
        if key not in self.kwargs and name in _PASSED_AS.values():
            key = next(p for p, passed in _PASSED_AS.items() if name == passed)
        self.kwargs[key] = value

    def accepts(self, name: str) -> bool:
        """The model class declares `name` as a parameter of its own (not only through **kwargs),
        and it is not one of timm's loading options."""
        if name in LOADING_OPTIONS:
            return False
        parameter_name = next((p for p, passed in _PASSED_AS.items() if name == passed), name)
        parameters = inspect.signature(self.model_cls).parameters
        return parameter_name in parameters and parameters[parameter_name].kind not in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        )


def _refuse_loading_option(name: str) -> None:
    if name in LOADING_OPTIONS:
        raise KeyError(f"{name!r} is one of timm's loading options, not a constructor argument a rule may set")


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
    """Register an entrypoint defined in the plugin module, with its default pretrained_cfg.

    Registering one of the plugin's own names again replaces its pretrained_cfg (a rule replaced by
    `replaces:` changes a variant's input size); timm's overwrite warning is for foreign names only.
    """
    module = sys.modules[fn.__module__]
    module.default_cfgs[fn.__name__] = DefaultCfg(tags=[""], cfgs={"": PretrainedCfg(**cfg)})
    ours = _registry._model_to_module.get(fn.__name__) == PLUGIN_MODULE
    with warnings.catch_warnings():
        if ours:
            warnings.filterwarnings("ignore", message=f"Overwriting {fn.__name__} in registry")
        timm.models.register_model(fn)


def model_args(model) -> dict[str, Any]:
    """The kwargs timm recorded when it built `model` (all of them, drop rates included)."""
    return dict(getattr(model, "_model_args", None) or {})


def guard_sources(handler: Callable[..., Any]) -> None:
    """Let `handler(source, model_id, cache_dir, timm_loader)` answer timm's config lookups for
    `create_model("local-dir:...")` ("local-dir") and `("hf-hub:...")` ("hf-hub") in place of timm's own
    loaders, which it gets as `timm_loader` for configs it leaves to timm. Installed once; timm's
    factory looks these two names up in its module when it resolves a source."""
    from timm.models import _factory

    for name, source in (("load_model_config_from_path", "local-dir"), ("load_model_config_from_hf", "hf-hub")):
        current = getattr(_factory, name)
        original = getattr(current, "timm_compound_original", current)

        def guarded(model_id, cache_dir=None, *, _source=source, _original=original):
            return handler(_source, model_id, cache_dir, _original)

        guarded.timm_compound_original = original
        setattr(_factory, name, guarded)


def register_norm_act(layer: type) -> None:
    """Make timm's get_norm_act_layer take `layer` as a norm-act layer and bind the model's activation
    to it (as for its own GroupNormAct), so `norm_layer=partial(layer, ...)` works in any timm model."""
    from timm.layers import create_norm_act

    create_norm_act._NORM_ACT_TYPES.add(layer)
    create_norm_act._NORM_ACT_REQUIRES_ARG.add(layer)
