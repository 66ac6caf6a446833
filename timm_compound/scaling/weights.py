"""Checking weights against a plan before timm reads them: safetensors headers only, never a pickle.

Every load path (a Hub repo, a `local-dir:` folder, a file given to publish) compares the
tensor names and shapes in a safetensors header with the state_dict the plan's model has,
built on the meta device, so a mismatch is a clear error and no tensor is read twice.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from timm_compound.errors import CompoundError
from timm_compound.scaling.build import build
from timm_compound.scaling.plan import ScalePlan

# kwargs that describe how a model was loaded, not what it is
LOAD_KWARGS = (
    "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_model_args", "cache_dir",
    "features_only", "out_indices", "feature_cls", "device", "dtype", "compound_plan", "checkpoint_path",
)


def state_shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def safetensors_shapes(path: Path, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without loading the tensors."""
    from safetensors import SafetensorError, safe_open

    if Path(path).suffix != ".safetensors":
        raise CompoundError(f"{where}: {Path(path).name} is not a .safetensors file; timm-compound never unpickles weights")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise CompoundError(f"{where}: {Path(path).name} is not a valid safetensors file: {error}") from None


def check_shapes(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]], where: str, what: str) -> None:
    """Raise a CompoundError naming the first differences if `got` does not hold exactly `expected`."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = [f"{key} {got[key]} != {expected[key]}" for key in expected if key in got and got[key] != expected[key]]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (("shape mismatch", wrong), ("missing", missing), ("unexpected", unexpected)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            parts.append(f"{label}: {', '.join(items[:5])}{more}")
    raise CompoundError(f"{where}: the tensors do not match {what}: " + "; ".join(parts))


def expected_shapes(scaled: ScalePlan, model_args: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes the plan's model has, built on the meta device (no memory, no init cost)."""
    owned = scaled.rule.structural_args() | set(scaled.constructor_args) | set(LOAD_KWARGS)
    kwargs = {k: v for k, v in (model_args or {}).items() if k not in owned}
    with torch.device("meta"):
        model = build(scaled, **kwargs)
    return state_shapes(model.state_dict())


def describe(scaled: ScalePlan, num_classes: Any) -> str:
    """'the plan's model (resnet18, phi=1, num_classes=10)': what a shape error compared against."""
    phi = f"phi={scaled.phi:g}" if scaled.phi is not None else f"d={scaled.multipliers.depth:g}, w={scaled.multipliers.width:g}"
    return f"the plan's model ({scaled.base}, {phi}, num_classes={num_classes})"


def check_header_fits(scaled: ScalePlan, got: dict[str, tuple[int, ...]], where: str) -> None:
    """Compare the plan's size with the safetensors header before building anything: every block holds
    at least one tensor and a quarter of width² weights, so a plan that asks for more blocks than the
    file has tensors, or more parameters than it holds, is refused at once (a hostile config cannot
    make the receiver build 200,000 blocks to find out)."""
    size = scaled.size
    elements = sum(math.prod(shape) for shape in got.values())
    if size.total_blocks > len(got):
        raise CompoundError(f"{where}: the plan asks for {size.total_blocks:,} blocks but the weights file holds "
                            f"only {len(got):,} tensors: they cannot belong to it")
    if size.min_params > elements:
        raise CompoundError(f"{where}: the plan needs at least {size.min_params:,} parameters but the weights file "
                            f"holds {elements:,}: they cannot belong to it")


def check_weights(scaled: ScalePlan, path: Path, model_args: dict[str, Any], where: str) -> None:
    """A safetensors file holds exactly the tensors of the plan's model built with `model_args`."""
    got = safetensors_shapes(path, where)
    check_header_fits(scaled, got, where)
    check_shapes(expected_shapes(scaled, model_args), got, where, describe(scaled, model_args.get("num_classes")))
