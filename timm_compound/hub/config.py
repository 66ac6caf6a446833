"""The published format: a timm `config.json` that carries the whole scaling plan (plan out, plan in).

A published repo is self-describing: `config.json` is timm's format plus the whole plan
(top-level `compound_plan`), so a receiver builds it without the sender's rules or registry.
Plans whose structure plain timm can take as JSON kwargs (ResNet's `layers`/`channels`) are
written as the base architecture with those `model_args`; the rest name the plugin entrypoint
`compound_scaled_from_plan`, which builds from the plan in `model_args`.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from pydantic import ValidationError

from timm_compound.errors import CompoundError, from_validation_error
from timm_compound.scaling import structure, timm_adapter
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.verify import verify_plan
from timm_compound.scaling.weights import LOAD_KWARGS, expected_shapes, state_shapes
from timm_compound.version import __version__

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MAX_CONFIG_BYTES = 16 * 2**20  # a published config.json is a few kB: anything this large is not one
CARD_NAME = "README.md"
PLAN_ENTRYPOINT = "compound_scaled_from_plan"  # the timm entrypoint timm_compound.registry registers
# pretrained_cfg keys that locate the sender's weights: meaningless (or harmful) in a published config
_SOURCE_KEYS = (
    "architecture",
    "tag",
    "hf_hub_id",
    "hf_hub_filename",
    "url",
    "file",
    "state_dict",
    "source",
    "custom_load",
)
# structural fields two plans must share to hold the same weights
_STRUCTURE = ("base", "depths", "widths", "stem", "head", "resolution", "constructor_args", "norm")


def plan_from_config(data: Any, where: str) -> ScalePlan:
    """A published plan, validated; the error names `where` and the failing field."""
    if not isinstance(data, dict):
        raise CompoundError(f"{where}: no scaling plan (expected an object, got {type(data).__name__})")
    try:
        scaled = ScalePlan.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(where, error) from None
    if not timm_adapter.is_builtin_model(scaled.base) or scaled.base not in scaled.rule.architectures:
        raise CompoundError(f"{where}: base {scaled.base!r} is not a timm architecture its rule covers")
    return verify_plan(scaled, where)


def read_json(path: Path, where: str) -> Any:
    """A JSON file's data; a CompoundError for a file too large, not UTF-8, not JSON or nested too deeply
    (a 100,000-deep nesting is refused, not a RecursionError)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CompoundError(
                f"{where}: {path.name} is {size:,} bytes, larger than any config ({MAX_CONFIG_BYTES:,}): refused unread"
            )
        return json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise CompoundError(f"{where}: {path.name} is nested too deeply to be a config") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, CompoundError):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CompoundError(f"{where}: {path.name} is not readable JSON: {reason}") from None


def read_config(path: Path, where: str) -> tuple[dict[str, Any], ScalePlan]:
    """config.json -> (config, plan); a CompoundError if it is not a valid timm-compound config."""
    return check_config(read_json(path, where), where)


def _class_count(value: Any, field: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CompoundError(f"{where}: config.json {field} = {value!r} is not a class count (an integer >= 0)")
    return value


def check_config(config: Any, where: str) -> tuple[dict[str, Any], ScalePlan]:
    """A parsed config.json -> (config, plan): its shape and types, the plan verified against its own rule
    (sizes included), the architecture and `model_args` consistent with the plan, no loading options."""
    import timm

    if not isinstance(config, dict):
        raise CompoundError(f"{where}: config.json is not a JSON object (got {type(config).__name__})")
    if "compound_plan" not in config:
        raise CompoundError(f"{where}: config.json has no compound_plan: not published by timm-compound")
    scaled = plan_from_config(config["compound_plan"], f"{where}: config.json compound_plan")
    architecture = config.get("architecture")
    model_args = config.get("model_args") or {}
    if not isinstance(model_args, dict):
        raise CompoundError(f"{where}: config.json model_args is not an object")
    classes = _class_count(config.get("num_classes"), "num_classes", where)
    if (
        "num_classes" in model_args
        and _class_count(model_args["num_classes"], "model_args.num_classes", where) != classes
    ):
        raise CompoundError(
            f"{where}: config.json model_args.num_classes = {model_args['num_classes']!r} "
            f"contradicts num_classes ({classes!r})"
        )
    loading = sorted(set(model_args) & timm_adapter.LOADING_OPTIONS - {"compound_plan"})
    if loading:
        raise CompoundError(
            f"{where}: config.json model_args.{loading[0]} is one of timm's loading options, "
            "not a model argument: refused"
        )
    if architecture == PLAN_ENTRYPOINT:
        if model_args.get("compound_plan") != config["compound_plan"]:
            raise CompoundError(f"{where}: config.json model_args.compound_plan differs from compound_plan")
    elif architecture != scaled.base:
        raise CompoundError(
            f"{where}: config.json architecture {architecture!r} is neither {PLAN_ENTRYPOINT!r} nor the plan's base {scaled.base!r}"
        )
    else:  # plain timm builds from model_args: they must describe the plan's model
        try:
            expected = structural_kwargs(scaled)
        except (TypeError, ValueError):
            raise CompoundError(
                f"{where}: config.json names {architecture!r}, but this plan needs the plugin "
                f"entrypoint {PLAN_ENTRYPOINT!r}"
            ) from None
        for arg, value in expected.items():
            if model_args.get(arg) != value:
                raise CompoundError(
                    f"{where}: config.json model_args.{arg} = {model_args.get(arg)!r} "
                    f"contradicts compound_plan ({value!r})"
                )
    cfg = config.get("pretrained_cfg")
    known = {f.name for f in fields(timm.models.PretrainedCfg)}
    if not isinstance(cfg, dict) or set(cfg) - known:
        unknown = sorted(set(cfg) - known) if isinstance(cfg, dict) else "not an object"
        raise CompoundError(f"{where}: config.json pretrained_cfg is invalid: unknown keys {unknown}")
    size = cfg.get("input_size")
    if size is not None and (
        not isinstance(size, list)
        or len(size) != 3
        or list(size[1:]) != [scaled.resolution] * 2
        or isinstance(size[0], bool)
        or not isinstance(size[0], int)
        or size[0] < 1
    ):
        raise CompoundError(
            f"{where}: config.json pretrained_cfg.input_size = {size!r} is not "
            f"[channels, {scaled.resolution}, {scaled.resolution}] (the plan's resolution)"
        )
    return config, scaled


def same_structure(a: ScalePlan, b: ScalePlan) -> bool:
    """Two plans build the same tensors: the same stages, parts, resolution and layout-set numbers."""
    return all(getattr(a, key) == getattr(b, key) for key in _STRUCTURE) and structure.extra_inputs(
        a
    ) == structure.extra_inputs(b)


def structural_kwargs(scaled: ScalePlan) -> dict[str, Any]:
    """The plan's structural constructor kwargs for its base entrypoint, as JSON data
    (TypeError/ValueError where they are not JSON, e.g. block_args)."""
    call = timm_adapter.capture(scaled.base)
    structure.write_plan(call, scaled)
    args = {arg: call.kwargs[arg] for arg in sorted(scaled.rule.structural_args()) if arg in call.kwargs}
    return json.loads(json.dumps(args))


def plain_timm_args(scaled: ScalePlan, num_classes: int) -> dict[str, Any] | None:
    """Constructor kwargs with which plain timm (no plugin) builds the plan's model from `scaled.base`,
    or None when the structure is not expressible as JSON kwargs of the base entrypoint.

    Decided by trying: the candidate kwargs must survive JSON and give the same state_dict shapes.
    """
    import timm

    if scaled.norm != "batch":  # its norm layers are timm-compound's: plain timm cannot build them
        return None
    try:
        args = {**structural_kwargs(scaled), **json.loads(json.dumps(scaled.constructor_args))}
        with torch.device("meta"):
            plain = timm.create_model(scaled.base, num_classes=num_classes, **args)
        if state_shapes(plain.state_dict()) != expected_shapes(scaled, {"num_classes": num_classes}):
            return None
    except Exception:
        return None
    return args


def _json_kwargs(model: nn.Module, scaled: ScalePlan) -> dict[str, Any]:
    """Kwargs the model was created with (timm records them) that a loader needs, JSON-safe only."""
    owned = scaled.rule.structural_args() | set(scaled.constructor_args) | set(LOAD_KWARGS) | {"norm"}
    kept = {}
    for key, value in timm_adapter.model_args(model).items():
        if key in owned:
            continue
        try:
            kept[key] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            continue
    return kept


def _export_cfg(model: nn.Module) -> dict[str, Any]:
    cfg = {k: v for k, v in dict(model.pretrained_cfg).items() if v is not None and k not in _SOURCE_KEYS}
    cfg["num_classes"] = model.num_classes
    return json.loads(json.dumps(cfg))


def hub_config(model: nn.Module, scaled: ScalePlan, name: str | None) -> dict[str, Any]:
    """config.json: timm's format (architecture, num_classes, num_features, model_args, pretrained_cfg)
    plus the whole plan and the versions that made it as top-level keys."""
    import timm

    kwargs = {**_json_kwargs(model, scaled), "num_classes": model.num_classes}
    plain = plain_timm_args(scaled, model.num_classes)
    if plain is not None:
        architecture, model_args = scaled.base, {**plain, **kwargs}
    else:
        architecture, model_args = PLAN_ENTRYPOINT, {"compound_plan": scaled.to_dict(), **kwargs}
    return {
        "architecture": architecture,
        "num_classes": model.num_classes,
        "num_features": getattr(model, "num_features", None),
        "model_args": model_args,
        "pretrained_cfg": _export_cfg(model),
        "compound_plan": scaled.to_dict(),
        "timm_compound": {
            "version": __version__,
            "timm_version": timm.__version__,
            "torch_version": torch.__version__.split("+")[0],
            "name": name,
            "plain_timm_loadable": plain is not None,
        },
    }
