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
    "pretrained",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
    "pretrained_model_args",
    "cache_dir",
    "features_only",
    "out_indices",
    "feature_cls",
    "device",
    "dtype",
    "compound_plan",
    "checkpoint_path",
)


def state_shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def safetensors_header(path: Path, where: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Tensor names -> (shape, safetensors dtype such as 'F32') from a safetensors header, without
    loading the tensors. The library itself refuses a header over 100 MB or offsets past the file's end."""
    from safetensors import SafetensorError, safe_open

    if Path(path).suffix != ".safetensors":
        raise CompoundError(
            f"{where}: {Path(path).name} is not a .safetensors file; timm-compound never unpickles weights"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {
                key: (tuple(handle.get_slice(key).get_shape()), str(handle.get_slice(key).get_dtype()))
                for key in handle.keys()  # noqa: SIM118  (a safe_open handle is not iterable)
            }
    except (SafetensorError, OSError) as error:
        link = f" (a link to {Path(path).resolve()})" if Path(path).is_symlink() else ""
        raise CompoundError(f"{where}: {Path(path).name}{link} is not a valid safetensors file: {error}") from None


def safetensors_shapes(path: Path, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without loading the tensors."""
    return {key: shape for key, (shape, _) in safetensors_header(path, where).items()}


def _kind(dtype: torch.dtype | str) -> str:
    """'float', 'int' or 'bool' for a torch dtype or a safetensors dtype name."""
    if isinstance(dtype, torch.dtype):
        return (
            "bool"
            if dtype == torch.bool
            else "float"
            if dtype.is_floating_point
            else "complex"
            if dtype.is_complex
            else "int"
        )
    name = dtype.upper()
    return (
        "bool"
        if name == "BOOL"
        else "float"
        if name.startswith(("F", "BF"))
        else "complex"
        if name.startswith("C")
        else "int"
    )


def check_dtypes(expected: dict[str, torch.dtype], got: dict[str, str], where: str) -> None:
    """Each tensor holds the kind of number the model keeps there: integer weights for a float
    parameter (or floats for an int buffer such as BatchNorm's step count) are refused, naming the first."""
    wrong = [
        f"{key} is {got[key]} where the model holds {expected[key]}"
        for key in expected
        if key in got and _kind(expected[key]) != _kind(got[key])
    ]
    if wrong:
        more = f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""
        raise CompoundError(f"{where}: wrong kind of number: {', '.join(wrong[:3])}{more}")


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


def expected_tensors(
    scaled: ScalePlan, model_args: dict[str, Any] | None = None
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The plan's model's state_dict: name -> (shape, dtype), built on the meta device (no memory, no init cost)."""
    owned = scaled.rule.structural_args() | set(scaled.constructor_args) | set(LOAD_KWARGS)
    kwargs = {k: v for k, v in (model_args or {}).items() if k not in owned}
    with torch.device("meta"):
        model = build(scaled, **kwargs)
    return {key: (tuple(value.shape), value.dtype) for key, value in model.state_dict().items()}


def expected_shapes(scaled: ScalePlan, model_args: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes the plan's model has, built on the meta device (no memory, no init cost)."""
    return {key: shape for key, (shape, _) in expected_tensors(scaled, model_args).items()}


def describe(scaled: ScalePlan, num_classes: Any) -> str:
    """'the plan's model (resnet18, phi=1, num_classes=10)': what a shape error compared against."""
    phi = (
        f"phi={scaled.phi:g}"
        if scaled.phi is not None
        else f"d={scaled.multipliers.depth:g}, w={scaled.multipliers.width:g}"
    )
    return f"the plan's model ({scaled.base}, {phi}, num_classes={num_classes})"


def check_header_fits(scaled: ScalePlan, got: dict[str, tuple[int, ...]], where: str) -> None:
    """Compare the plan's size with the safetensors header before building anything: every block holds
    at least one tensor and a quarter of width² weights, so a plan that asks for more blocks than the
    file has tensors, or more parameters than it holds, is refused at once (a hostile config cannot
    make the receiver build 200,000 blocks to find out)."""
    size = scaled.size
    elements = sum(math.prod(shape) for shape in got.values())
    if size.total_blocks > len(got):
        raise CompoundError(
            f"{where}: the plan asks for {size.total_blocks:,} blocks but the weights file holds "
            f"only {len(got):,} tensors: they cannot belong to it"
        )
    if size.min_params > elements:
        raise CompoundError(
            f"{where}: the plan needs at least {size.min_params:,} parameters but the weights file "
            f"holds {elements:,}: they cannot belong to it"
        )


def check_weights(scaled: ScalePlan, path: Path, model_args: dict[str, Any], where: str) -> None:
    """A safetensors file holds exactly the tensors of the plan's model built with `model_args`: names,
    shapes and kinds of number (its header is compared with the plan's size before anything is built)."""
    header = safetensors_header(path, where)
    got = {key: shape for key, (shape, _) in header.items()}
    check_header_fits(scaled, got, where)
    expected = expected_tensors(scaled, model_args)
    check_shapes(
        {key: shape for key, (shape, _) in expected.items()},
        got,
        where,
        describe(scaled, model_args.get("num_classes")),
    )
    check_dtypes(
        {key: dtype for key, (_, dtype) in expected.items()}, {key: dtype for key, (_, dtype) in header.items()}, where
    )
