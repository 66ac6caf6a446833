"""Stages read back from a build: for layouts where the constructor, not the rule, decides them.

A `multiplier` or `fields` rule scales a few numbers (GhostNet's `width`, RegNet's `depth`, `w0`,
`wa`); how many blocks and channels each stage gets is the constructor's business. The plan learns
it by building the model on the meta device (no weights allocated or initialised) and counting:
blocks per stage through the rule's `stage_modules`, and each stage's width as the channels its last
block outputs in one meta forward pass (shape-preserving layers skipped, ``meta_device.shapes_only``).
Results are cached per (base, rule, arguments).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from timm_compound.errors import CompoundError, RuleError
from timm_compound.scaling import structure, timm_adapter
from timm_compound.scaling.meta_device import fast_meta, shapes_only
from timm_compound.scaling.schema import Rule
from timm_compound.scaling.stages import stage_blocks

_cache: dict[tuple[str, str, str], tuple[list[int], list[int]]] = {}
_CACHE_SIZE = 512


def clear() -> None:
    """Forget every read-back (for benchmarks measuring a cold start)."""
    _cache.clear()


def _channels(output: Any) -> int | None:
    tensor = output[0] if isinstance(output, (tuple, list)) and output else output
    if not isinstance(tensor, torch.Tensor) or tensor.dim() < 3:
        return None
    return int(tensor.shape[1] if tensor.dim() == 4 else tensor.shape[-1])


def realised_stages(
    base: str,
    rule: Rule,
    source: str,
    depths: list[int] | None,
    widths: list[int] | None,
    stem: int | None,
    head: int | None,
    derived: dict[str, Any] | None,
    w: float | None = None,
) -> tuple[list[int], list[int]]:
    """(blocks per stage, output channels per stage) of `base` built with these arguments
    (`derived=None`: the base as its entrypoint builds it)."""
    key = (base, rule.model_dump_json(), json.dumps([depths, widths, stem, head, derived, w], sort_keys=True))
    if key not in _cache:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = _measure(base, rule, source, depths, widths, stem, head, derived, w)
    found_depths, found_widths = _cache[key]
    return list(found_depths), list(found_widths)


Stages = tuple[list[int], list[int]]
# (base, rule, construct, read) -> stages, or None to leave it to a full build; see `use_fast_reader`
_fast_reader: Callable[[str, Rule, Callable[[], nn.Module], Callable[[nn.Module], Stages]], Stages | None] | None = None


def use_fast_reader(reader) -> None:
    """Let a faster reader try first: the cost model (a layer above) runs the same constructor with
    the family's blocks memoised (``timm_compound.cost.stage_reader``). It gets `construct()` (the
    meta build; raises RuleError) and `read(model)` (stages of a model; raises RuleError) and returns
    None whenever it cannot vouch for its answer, so the full build below decides."""
    global _fast_reader
    _fast_reader = reader


def _measure(base, rule, source, depths, widths, stem, head, derived, w) -> Stages:
    shown = ", ".join(f"{path}={value!r}" for path, value in (derived or {}).items()) or "its own arguments"

    def rewrite(call: timm_adapter.BuildCall) -> timm_adapter.BuildCall:
        if derived is not None:
            structure.write(rule, call, depths, widths, stem, head, derived, w, source)
        return call

    def construct() -> nn.Module:
        try:
            with fast_meta():
                return timm_adapter.build(base, rewrite).eval()
        except CompoundError:
            raise
        except Exception as error:
            raise RuleError(
                source, structure.derived_fields(rule), f"timm's {base} rejected {shown}: {_describe(error)}"
            ) from None

    def read(model: nn.Module) -> Stages:
        return _read(model, base, rule, source)

    if _fast_reader is not None:
        found = _fast_reader(base, rule, construct, read)
        if found is not None:
            return found
    return read(construct())


def read_stages(model: nn.Module, base: str, rule: Rule, source: str) -> Stages:
    """(blocks per stage, output channels per stage) of a built meta model (made shapes-only: throwaway)."""
    return _read(model, base, rule, source)


def _read(model: nn.Module, base: str, rule: Rule, source: str) -> Stages:
    """Blocks per stage, and each stage's output channels from one forward pass (shapes only)."""
    try:
        stages = stage_blocks(model, rule.stage_modules)
    except (AttributeError, CompoundError) as error:
        raise RuleError(source, "stage_modules", f"not found in the built {base}: {error}") from None
    if not stages or not all(stages):
        raise RuleError(
            source, "stage_modules", f"names no blocks in the built {base} (found {[len(s) for s in stages]})"
        )

    shapes_only(model)
    found: dict[int, int | None] = {}
    hooks = [
        blocks[-1][1].register_forward_hook(lambda _m, _i, out, index=index: found.__setitem__(index, _channels(out)))
        for index, blocks in enumerate(stages)
    ]
    channels, size = timm_adapter.base_pretrained_cfg(base)["input_size"][0], _input_size(rule, base)
    try:
        with torch.no_grad():
            model(torch.empty(1, channels, size, size, device="meta"))
    except Exception as error:
        raise RuleError(
            source,
            "stage_modules",
            f"reading {base}'s stage widths needs a forward pass, "
            f"which failed at {size} px: {type(error).__name__}: {error}",
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
    if any(found.get(index) is None for index in range(len(stages))):
        raise RuleError(source, "stage_modules", f"the last block of a stage of {base} gave no feature map")
    return [len(blocks) for blocks in stages], [found[index] for index in range(len(stages))]


def _input_size(rule: Rule, base: str) -> int:
    if rule.resolution.base is not None:
        return rule.resolution.base
    return int(timm_adapter.base_pretrained_cfg(base)["input_size"][-1])


def _describe(error: Exception) -> str:
    """`Type: message`; a bare `assert` says nothing, so show the assertion it failed."""
    message = str(error)
    if not message:
        frames = traceback.extract_tb(error.__traceback__)
        message = (frames[-1].line or "") if frames else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
