"""`timm-compound rules new ARCH`: a starting rule file, found by inspecting the timm constructor.

It reads the keyword arguments the architecture's entrypoint passes to its model class (and
the class defaults), guesses which hold the per-stage depths and widths, and finds the stage
modules by building the base on the meta device. Whatever it could not decide is marked
`# CHECK:` in the file; `timm-compound rules check FILE` then proves the rule or shows why not.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from timm_compound.errors import UnknownModelError
from timm_compound.scaling import timm_adapter

DEPTH_NAMES = ("layers", "depths", "block_config", "num_blocks", "stage_blocks", "depth")
WIDTH_NAMES = ("channels", "dims", "embed_dims", "widths", "stage_channels", "num_chs", "embed_dim")
SCALAR_WIDTH_NAMES = ("growth_rate",)
STEM_NAMES = ("stem_size", "stem_width", "stem_chs", "num_init_features")
HEAD_NAMES = ("num_features", "head_hidden_size", "head_chs")


def _arguments(call: timm_adapter.BuildCall) -> dict[str, Any]:
    """Constructor defaults overlaid with what the entrypoint passes."""
    values = {}
    try:
        parameters = inspect.signature(call.model_cls).parameters
    except (TypeError, ValueError):
        parameters = {}
    for name, parameter in parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            values[name] = parameter.default
    values.update(call.kwargs)
    return values


def _int_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 1 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


def _block_args(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and value and all(
        isinstance(stage, (list, tuple)) and all(isinstance(b, dict) for b in stage) for stage in value)


def _pick(args: dict[str, Any], names: tuple[str, ...], test) -> str | None:
    for name in names:
        if name in args and test(args[name]):
            return name
    return None


def _stage_modules(model: torch.nn.Module, depths: list[int]) -> str | list[str] | None:
    """A `stage_modules` value whose stages have exactly `depths` blocks, if one can be found."""
    def length(module) -> int | None:
        try:
            return len(module)
        except TypeError:
            return None

    for path, module in model.named_modules():
        children = list(module.children())
        if [length(c) for c in children] == depths:
            return path
        if all(hasattr(c, "blocks") for c in children) and [length(c.blocks) for c in children] == depths:
            return f"{path}.*.blocks" if path else "*.blocks"
    for path, module in model.named_modules():  # stages among other children, in order
        found, wanted = [], list(depths)
        for name, child in module.named_children():
            if wanted and length(child) == wanted[0]:
                found.append(f"{path}.{name}" if path else name)
                wanted.pop(0)
        if not wanted:
            return found
    return None


def scaffold(arch: str) -> str:
    """The text of a starting rule file for timm architecture `arch`."""
    if not timm_adapter.is_builtin_model(arch):
        raise UnknownModelError(f"unknown timm architecture {arch!r}")
    call = timm_adapter.capture(arch)
    args = _arguments(call)
    cfg = timm_adapter.base_pretrained_cfg(arch)
    family = call.model_cls.__name__.lower()
    checks: list[str] = []

    if _block_args(args.get("block_args")):
        depth = {"arg": "block_args", "layout": "block_args"}
        width = {"arg": "block_args", "layout": "block_args"}
        depths = [len(stage) for stage in args["block_args"]]
    else:
        depth_arg = _pick(args, DEPTH_NAMES, _int_list) or next((n for n, v in args.items() if _int_list(v)), None)
        width_arg = _pick(args, WIDTH_NAMES, _int_list)
        scalar_arg = None if width_arg else _pick(args, SCALAR_WIDTH_NAMES, lambda v: isinstance(v, int))
        if depth_arg is None:
            checks.append("no list-of-int constructor argument found for the stage depths; set depth.arg")
        depth = {"arg": depth_arg or "TODO", "layout": "counts"}
        if width_arg:
            width = {"arg": width_arg, "layout": "list"}
        elif scalar_arg:
            width = {"arg": scalar_arg, "layout": "scalar"}
        else:
            width = {"arg": "TODO", "layout": "list"}
            checks.append("no constructor argument found for the stage widths; set width.arg and width.layout")
        depths = list(args.get(depth_arg, [])) if depth_arg else []

    stem_arg = _pick(args, STEM_NAMES, lambda v: isinstance(v, int) and not isinstance(v, bool))
    head_arg = _pick(args, HEAD_NAMES, lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0)

    with torch.device("meta"):
        model = timm_adapter.entrypoint(arch)(pretrained=False)
    stages = _stage_modules(model, depths) if depths else None
    if stages is None:
        checks.append("stage modules not found; set stage_modules so `rules check` can verify depths")

    lines = [
        "# yaml-language-server: $schema=rule.schema.json",
        f"# Starting rule for {arch} written by `timm-compound rules new`; check it with",
        "# `timm-compound rules check FILE`. Lines marked CHECK are guesses.",
        f"family: {family}",
        f"description: Compound scaling rule for timm's {call.model_cls.__name__} ({arch}).",
        f"architectures: [{arch}]",
        "",
        "coefficients: {alpha: 1.2, beta: 1.1, gamma: 1.15}   # the EfficientNet paper's",
        "constraint: {flops_factor: 2.0, tolerance: 0.05}",
        "",
        f"depth: {{arg: {depth['arg']}, layout: {depth['layout']}, rounding: ceil, min: 1}}"
        + (f"   # base {depths}" if depths else ""),
        f"width: {{arg: {width['arg']}, layout: {width['layout']}, divisor: 8, round_limit: 0.9, min: 8}}",
    ]
    if stem_arg:
        lines.append(f"stem: {{policy: scale, arg: {stem_arg}}}   # CHECK: found `{stem_arg}` = "
                     f"{args[stem_arg]}; make sure this architecture's stem really uses it")
    else:
        lines.append("stem: {policy: derived, note: no stem width argument found}   "
                     "# CHECK: derived, or fixed with `value`")
    if head_arg:
        lines.append(f"head: {{policy: scale, arg: {head_arg}}}   # CHECK: found `{head_arg}` = {args[head_arg]}")
    else:
        lines.append("head: {policy: derived, note: no head width argument found}   # CHECK")
    lines += [
        "",
        f"resolution: {{divisor: 8, rounding: round}}   # base {cfg['input_size'][-1]} px from the pretrained_cfg",
    ]
    if stages is not None:
        lines.append(f"stage_modules: {stages if isinstance(stages, str) else '[' + ', '.join(stages) + ']'}")
    for check in checks:
        lines.insert(3, f"# CHECK: {check}")
    return "\n".join(lines) + "\n"
