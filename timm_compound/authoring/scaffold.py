"""`timm-compound rules new ARCH`: a starting rule file, found by inspecting the timm constructor.

It reads the keyword arguments the architecture's entrypoint passes to its model class (and
the class defaults), guesses which hold the per-stage depths and widths and in which layout
(lists of ints, timm's block_args, per-block rows, a marker-separated list, float multipliers,
or fields of a config dataclass), and finds the stage modules by building the base on the meta
device. Whatever it could not decide is marked `# CHECK:` in the file; `timm-compound rules
check FILE` then proves the rule or shows why not.
"""

from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from typing import Any

import torch
import yaml

from timm_compound.authoring.layout_guess import (
    HEAD_NAMES,
    STEM_NAMES,
    layouts,
    part_arg,
)
from timm_compound.authoring.norm_guess import propose as propose_norm
from timm_compound.errors import UnknownModelError
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.rulebook import shipped_rules


def _arguments(call: timm_adapter.BuildCall) -> dict[str, Any]:
    """Constructor defaults overlaid with what the entrypoint passes (its `model_cfg` as `model_cfg`)."""
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


def _children_counts(stages: list[torch.nn.Module]) -> list[Counter]:
    return [Counter(type(child).__name__ for child in stage.children()) for stage in stages]


def _counted(counts: list[Counter], depths: list[int]) -> dict | None:
    """'' when every child is a block, {'skip': [C]} when all but class C are, else None."""
    if [sum(c.values()) for c in counts] == depths:
        return {}
    for name in sorted({n for c in counts for n in c}):
        if [sum(v for k, v in c.items() if k != name) for c in counts] == depths:
            return {"skip": [name]}
    return None


def _spec(path: str | list[str], extra: dict) -> Any:
    return {"path": path, **extra} if extra else path


def _stage_modules(model: torch.nn.Module, depths: list[int]) -> Any | None:
    """A `stage_modules` value whose stages have exactly `depths` blocks, if one can be found."""
    for path, module in model.named_modules():
        children = list(module.named_children())
        found = _counted(_children_counts([c for _, c in children]), depths)
        if found is not None and children:
            return _spec(path, found)
        if children and all(hasattr(c, "blocks") for _, c in children):
            found = _counted(_children_counts([c.blocks for _, c in children]), depths)
            if found is not None:
                return _spec(f"{path}.*.blocks" if path else "*.blocks", found)
    for path, module in model.named_modules():  # stages among other children, in order
        picked, wanted = [], list(depths)
        for name, child in module.named_children():
            if wanted and len(list(child.children())) == wanted[0]:
                picked.append(f"{path}.{name}" if path else name)
                wanted.pop(0)
        if not wanted:
            return picked
    for path, module in model.named_modules():  # one flat sequence, a pooling layer ending each stage
        kinds = [type(child).__name__ for child in module.children()]
        weighted = {type(c).__name__ for c in module.children() if any(p.dim() >= 2 for p in c.parameters())}
        for split in sorted(set(kinds)):
            runs, current = [], []
            for kind in kinds:
                if kind == split:
                    runs.append(current)
                    current = []
                else:
                    current.append(kind)
            runs = [run for run in runs + [current] if run]
            for block in sorted(set(kinds) - {split}, key=lambda kind: (kind not in weighted, kind)):
                if [run.count(block) for run in runs] == depths:
                    return {"path": path, "split_at": split, "blocks": [block]}
    return None


def _stage_glob(model: torch.nn.Module) -> str | None:
    """For layouts whose depths the constructor decides: a path pattern for the stage modules."""
    names = [name for name, _ in model.named_children()]
    if "stages" in names:
        stages = list(model.get_submodule("stages").children())
        return "stages.*.blocks" if stages and all(hasattr(s, "blocks") for s in stages) else "stages"
    for prefix in ("stage", "layer", "s"):
        numbered = [n for n in names if re.fullmatch(rf"{prefix}\d+", n)]
        if len(numbered) > 1:
            return f"{prefix}[0-9]*"
    return None


def _yaml(value: Any, flow: bool = False) -> str:
    """Inline YAML for a value; a string is quoted only where YAML would not read it back as written."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v, True)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v, True) for v in value) + "]"
    text = str(value)
    try:
        plain = yaml.safe_load(f"{{k: {text}}}" if flow else f"k: {text}")["k"] == value
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text)


def _family(name: str, arch: str) -> tuple[str, str | None]:
    """A family name no shipped rule uses, and a note when the obvious one was taken."""
    taken = shipped_rules().families()
    if name not in taken:
        return name, None
    candidates = [re.sub(r"[^a-z0-9_]", "_", arch.lower()), f"{name}_user"] + [f"{name}_{i}" for i in range(2, 100)]
    free = next(c for c in candidates if c not in taken)
    return free, f"family `{name}` is the shipped {taken[name][1].name}'s; this rule needs its own name"


def scaffold(arch: str) -> str:
    """The text of a starting rule file for timm architecture `arch`."""
    if not timm_adapter.is_builtin_model(arch):
        raise UnknownModelError(f"unknown timm architecture {arch!r}")
    call = timm_adapter.capture(arch)
    args = _arguments(call)
    cfg = timm_adapter.base_pretrained_cfg(arch)
    family, family_note = _family(call.model_cls.__name__.lower(), arch)
    checks: list[str] = []
    depth, width, depths, config = layouts(args, checks)
    derived = depth["layout"] in ("multiplier", "fields") or width["layout"] in ("multiplier", "fields")

    stem = part_arg(args, config, STEM_NAMES, positive=False)
    head = part_arg(args, config, HEAD_NAMES, positive=True)

    with torch.device("meta"):
        model = timm_adapter.entrypoint(arch)(pretrained=False)
    stages = _stage_modules(model, depths) if depths else (_stage_glob(model) if derived else None)
    if stages is None:
        checks.append(
            "stage modules not found; set stage_modules so `rules check` can verify depths"
            + (" (this layout needs them: the plan reads the stages back)" if derived else "")
        )
    elif derived:
        checks.append(f"stage_modules {_yaml(stages)} is a guess: each stage's blocks are counted there")

    covered = shipped_rules().rules.get(arch)
    lines = [
        "# yaml-language-server: $schema=rule.schema.json",
        f"# Starting rule for {arch} written by `timm-compound rules new`; check it with",
        "# `timm-compound rules check FILE`. Lines marked CHECK are guesses.",
        f"family: {family}" + (f"   # {family_note}" if family_note else ""),
        f"description: Compound scaling rule for timm's {call.model_cls.__name__} ({arch}).",
        f"architectures: [{arch}]",
    ]
    if covered is not None:
        lines.append(
            f"replaces: {covered[0].family}   # CHECK: the shipped {covered[1].name} covers {arch}; "
            "this rule takes it over"
        )
    lines += [
        "",
        "coefficients: {alpha: 1.2, beta: 1.1, gamma: 1.15}   # the EfficientNet paper's",
        "constraint: {flops_factor: 2.0, tolerance: 0.05}",
        "",
        f"depth: {_yaml(depth if depth['layout'] == 'multiplier' else {**depth, 'rounding': 'ceil', 'min': 1})}"
        + (f"   # base {depths}" if depths else ""),
    ]
    if width["layout"] == "multiplier":
        lines.append(f"width: {_yaml(width)}")
    else:
        lines.append(f"width: {_yaml({**width, 'divisor': 8, 'round_limit': 0.9, 'min': 8})}")
    if stem:
        lines.append(
            f"stem: {{policy: scale, arg: {stem[0]}}}   # CHECK: found `{stem[0]}` = "
            f"{stem[1]}; make sure this architecture's stem really uses it"
        )
    else:
        lines.append(
            "stem: {policy: derived, note: no stem width argument found}   # CHECK: derived, or fixed with `value`"
        )
    if head:
        lines.append(f"head: {{policy: scale, arg: {head[0]}}}   # CHECK: found `{head[0]}` = {head[1]}")
    else:
        lines.append("head: {policy: derived, note: no head width argument found}   # CHECK")
    size = cfg["input_size"][-1]
    lines.append("")
    if cfg.get("fixed_input_size"):
        lines.append(f"# timm's pretrained_cfg has fixed_input_size: {arch} accepts only {size} px inputs, so")
        lines.append("# the resolution cannot scale; the cap keeps it there (and the ideal cost ratio knows it).")
        lines.append(f"resolution: {{divisor: 8, rounding: round, max: {size}}}")
    else:
        lines.append(f"resolution: {{divisor: 8, rounding: round}}   # base {size} px from the pretrained_cfg")
    if stages is not None:
        lines.append(f"stage_modules: {_yaml(stages)}")
    elif derived:
        lines.append("stage_modules: TODO   # CHECK: the module path whose children are the stages")
    lines.append("")
    lines += propose_norm(args, arch, lambda: timm_adapter.entrypoint(arch)(pretrained=False))
    for check in checks:
        lines.insert(3, f"# CHECK: {check}")
    return "\n".join(lines) + "\n"
