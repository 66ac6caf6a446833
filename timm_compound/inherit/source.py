"""The base to grow from: a model, a safetensors file, a published folder or a Hub repo, checked.

Weights load only from `.safetensors` (a pickle is refused, never opened); a file's or repo's tensor
names and shapes must be exactly the base architecture's (the error names the first that differ)
before a byte of them is read. A model or repo that timm-compound published carries its plan, which
may be a scaled variant itself (grow phi=1 into phi=2); anything else is the plan's base at phi=0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.hub.config import CONFIG_NAME
from timm_compound.hub.files import PICKLE_SUFFIXES, fetch, split_revision
from timm_compound.hub.load import LOCAL_DIR, build, from_dir, from_hub
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.plan import ScalePlan, plan
from timm_compound.scaling.rulebook import RuleBook
from timm_compound.scaling.weights import check_shapes, expected_shapes, safetensors_shapes, state_shapes

HUB_PREFIX = "hf-hub:"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


@dataclass
class Source:
    """The base model to grow, the plan it was built from, and where it came from (for messages)."""

    model: nn.Module
    plan: ScalePlan
    described: str


def base_plan(target: ScalePlan) -> ScalePlan:
    """The target's base at phi=0, planned with the target's own rule."""
    return plan(target.base, 0, rules=RuleBook.alone(target.rule, Path(target.rule_file)))


def _classes(tensors: dict[str, tuple[int, ...]], base: str) -> int:
    classifier = timm_adapter.base_pretrained_cfg(base).get("classifier")
    key = f"{classifier}.weight" if isinstance(classifier, str) else None
    return int(tensors[key][0]) if key in tensors else 0


def _from_safetensors(path: Path, target: ScalePlan, where: str, num_classes: int | None = None) -> Source:
    import safetensors.torch

    got = safetensors_shapes(path, where)
    scaled = base_plan(target)
    classes = _classes(got, target.base) if num_classes is None else num_classes
    check_shapes(
        expected_shapes(scaled, {"num_classes": classes}), got, where, f"the base {target.base} with {classes} classes"
    )
    model = build(scaled, num_classes=classes)
    model.load_state_dict(safetensors.torch.load_file(str(path), device="cpu"))
    return Source(model, scaled, f"{target.base} weights from {where}")


def _from_module(model: nn.Module, target: ScalePlan) -> Source:
    own = getattr(model, "compound_plan", None)
    if isinstance(own, ScalePlan):
        if own.base != target.base:
            raise CompoundError(f"the base model is {own.base} scaled; its weights cannot grow into {target.base}")
        return Source(model, own, f"the given {own.base} model")
    scaled = base_plan(target)
    classes = getattr(model, "num_classes", None)
    check_shapes(
        expected_shapes(scaled, {"num_classes": classes}),
        state_shapes(model.state_dict()),
        "the base model",
        f"{target.base} with {classes} classes",
    )
    return Source(model, scaled, f"the given {target.base} model")


def _from_hub(repo_id: str, target: ScalePlan) -> Source:
    repo, rev = split_revision(repo_id)
    where = f"{repo}@{rev}" if rev else repo
    _, config_path, weights = fetch(repo, rev)  # refuses a repo without model.safetensors
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompoundError(f"{where}: {CONFIG_NAME} is not readable JSON: {error}") from None
    if isinstance(config, dict) and "compound_plan" in config:
        return Source(*_own_plan(from_hub(repo_id), target), f"{where} (timm-compound)")
    architecture = config.get("architecture") if isinstance(config, dict) else None
    if architecture != target.base:
        raise CompoundError(
            f"{where} holds {architecture!r}, not {target.base}: its weights cannot grow into {target.base}"
        )
    classes = config.get("num_classes")
    if not isinstance(classes, int) or isinstance(classes, bool):
        raise CompoundError(f"{where}: {CONFIG_NAME} has no integer num_classes")
    return _from_safetensors(Path(weights), target, where, classes)


def _own_plan(model: nn.Module, target: ScalePlan) -> tuple[nn.Module, ScalePlan]:
    found = _from_module(model, target)
    return found.model, found.plan


def resolve(base: Any, target: ScalePlan) -> Source:
    """The base model for `target` from a model, a path or a Hub id (see the module docstring)."""
    if isinstance(base, nn.Module):
        return _from_module(base, target)
    if not isinstance(base, (str, Path)):
        raise CompoundError(
            f"cannot grow from {type(base).__name__}: give a model, a .safetensors file, "
            "a published folder or a Hub repo id"
        )
    text = str(base)
    if text.startswith(LOCAL_DIR):
        folder = text[len(LOCAL_DIR) :]
        return Source(*_own_plan(from_dir(folder), target), f"the folder {folder}")
    if text.startswith(HUB_PREFIX):
        return _from_hub(text[len(HUB_PREFIX) :], target)
    path = Path(text)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CompoundError(
            f"{path}: {path.suffix} files are pickles; timm-compound loads weights only from "
            ".safetensors and never unpickles (convert a checkpoint you trust with "
            "safetensors.torch.save_file)"
        )
    if path.is_dir():
        return Source(*_own_plan(from_dir(path), target), f"the folder {path}")
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CompoundError(f"{path} is not a .safetensors file")
        return _from_safetensors(path, target, str(path))
    if _REPO_ID.match(text):
        return _from_hub(text, target)
    raise CompoundError(f"{text}: no such file or folder (or Hub repo id org/name)")
