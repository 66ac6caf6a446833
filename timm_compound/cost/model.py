"""The cost model: a plan's exact counts in milliseconds, without building or tracing the whole model.

A plan is built as a *skeleton*: the base's own timm entrypoint runs (``scaling.build``,
on meta, weight initialisation skipped), but each of the family's blocks (the children of
the rule's `stage_modules`) is a stub memoised by its constructor call
(``timm_compound.cost.blocks``). Counting a forward of the skeleton replays each block's
conv + linear MACs and output elements, traced once per (block, input shape). A plan
differs from its neighbours in a few blocks, so most are never built or traced again.

Nothing is extrapolated: every block of the plan's model is in the skeleton, and blocks
are shared only when their constructor calls are identical. Each family is proven on
first use: its skeleton must count exactly what a full meta build counts, on the plan in
hand and on the same plan one block deeper per stage; a family that fails (or a build
that taints a stub, or anything the keys cannot express) is counted exactly instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from timm_compound.cost import blocks
from timm_compound.cost.counter import ShapeCounter
from timm_compound.cost.counter import clear as clear_shapes
from timm_compound.cost.keys import Unkeyable, freeze
from timm_compound.cost.memory import nbytes, peak, static_bytes, trace_units, train_step_memory
from timm_compound.cost.meta import in_chans, meta_build, sizes
from timm_compound.scaling import readback, structure
from timm_compound.scaling.build import build, pretrained_cfg
from timm_compound.scaling.meta_device import fast_meta
from timm_compound.scaling.plan import ScalePlan, clear_base_readings
from timm_compound.scaling.schema import Rule
from timm_compound.scaling.stages import stage_blocks

MAX_SKELETONS = 512


class Unsure(Exception):
    """The cost model cannot vouch for this plan; the exact count must be used."""


@dataclass
class Skeleton:
    model: nn.Module
    params: int
    weight_bytes: int
    trainable_bytes: int
    buffer_bytes: int


@dataclass
class _Family:
    classes: list[type]
    proven: bool
    reason: str | None = None
    memory_proven: bool | None = None  # checked on the first training-memory request


_lock = threading.RLock()
_families: dict[tuple, _Family] = {}
_skeletons: OrderedDict[tuple, Skeleton] = OrderedDict()
_counts: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
_rule_ids: dict[int, tuple] = {}
_fixed_input_size: dict[str, bool] = {}


def rule_id(rule: Rule) -> str:
    """The rule's JSON, memoised by identity (a plan's rule is one shared object)."""
    entry = _rule_ids.get(id(rule))
    if entry is None or entry[0] is not rule:
        entry = _rule_ids[id(rule)] = (rule, rule.model_dump_json())
    return entry[1]


def structure_key(scaled: ScalePlan) -> tuple:
    """What a plan's model depends on: everything `scaling.build` reads from the plan (the layouts'
    extra inputs included, ``scaling.structure.extra_inputs``), less the resolution (unless the
    base fixes its input size, when timm builds for it)."""
    try:
        args = freeze(scaled.constructor_args), freeze(structure.extra_inputs(scaled))
    except Unkeyable as error:
        raise Unsure(str(error)) from None
    fixed = _fixed_input_size.get(scaled.base)
    if fixed is None:
        fixed = _fixed_input_size[scaled.base] = bool(pretrained_cfg(scaled).get("fixed_input_size", False))
    return (
        scaled.base,
        rule_id(scaled.rule),
        tuple(scaled.depths),
        tuple(scaled.widths),
        scaled.stem,
        scaled.head,
        args,
        scaled.resolution if fixed else None,
    )


def full_counts(model: nn.Module, batch_size: int, resolution: int) -> tuple[int, int]:
    """(MACs, output elements) of a forward of a whole model on meta (no memoisation)."""
    counter = ShapeCounter()
    x = torch.empty(batch_size, in_chans(model), resolution, resolution, device="meta")
    with torch.no_grad(), counter:
        model(x)
    return counter.macs, counter.elements


def block_classes(model: nn.Module, where) -> list[type]:
    """The family's block classes: those of the children of the rule's `stage_modules`."""
    if where is None:
        return []
    found = {type(block) for stage in stage_blocks(model, where) for _, block in stage}
    # torch's own layers and containers are shared by every model: a family's own blocks are stubbed,
    # torch's layers only where the stages hold nothing else (VGG's features: Conv2d between pools)
    own = [cls for cls in found if not cls.__module__.startswith("torch.")]
    return sorted(own or found, key=lambda c: c.__qualname__)


def _skeleton(scaled: ScalePlan, classes: list[type]) -> Skeleton:
    key = structure_key(scaled)
    with _lock:
        skeleton = _skeletons.get(key)
        if skeleton is not None:
            _skeletons.move_to_end(key)
            return skeleton
        try:
            with fast_meta(), blocks.stubbing(classes) as taints:
                model = build(scaled).eval()
                blocks.check_templates(taints)
        except Exception as error:  # the full build will raise it again if the plan itself is at fault
            raise Unsure(f"building the skeleton failed: {type(error).__name__}: {error}") from None
        if taints:
            raise Unsure("; ".join(taints))
        blocks.memoise_sequences(model)
        params, weight_bytes = sizes(model)
        trainable = sum(nbytes(p) for p in model.parameters() if p.requires_grad)
        buffer_bytes = sum(nbytes(b) for b in model.buffers())
        for module in model.modules():
            if blocks.is_stub(module):
                template = blocks.template_of(module)
                params += template.params
                weight_bytes += template.weight_bytes
                trainable += template.trainable_bytes
                buffer_bytes += template.buffer_bytes
        skeleton = _skeletons[key] = Skeleton(model, params, weight_bytes, trainable, buffer_bytes)
        if len(_skeletons) > MAX_SKELETONS:
            _skeletons.popitem(last=False)
        return skeleton


def _skeleton_counts(scaled: ScalePlan, skeleton: Skeleton, batch_size: int, resolution: int) -> tuple[int, int]:
    key = (structure_key(scaled), batch_size, resolution)
    counts = _counts.get(key)
    if counts is None:
        counter = ShapeCounter(memo=True)
        x = torch.empty(batch_size, in_chans(skeleton.model), resolution, resolution, device="meta")
        try:
            with _lock, torch.no_grad(), counter, blocks.counting(counter):
                skeleton.model(x)
        except Exception as error:
            raise Unsure(f"counting the skeleton failed: {type(error).__name__}: {error}") from None
        counts = _counts[key] = (counter.macs, counter.elements)
        if len(_counts) > 8 * MAX_SKELETONS:
            _counts.popitem(last=False)
    return counts


def _deeper(scaled: ScalePlan) -> ScalePlan:
    return scaled.model_copy(update={"depths": [d + 1 for d in scaled.depths]})


def _prove(scaled: ScalePlan, resolution: int) -> _Family:
    """Find the family's block classes and check the skeleton counts what a full build counts."""
    for candidate in (scaled, _deeper(scaled)):
        try:
            model = meta_build(candidate)
        except Exception as error:
            if candidate is scaled:
                raise
            return _Family(
                [], False, f"{scaled.base} one block deeper per stage does not build: {type(error).__name__}: {error}"
            )
        classes = block_classes(model, candidate.rule.stage_modules)
        if not classes:
            return _Family([], False, f"rule {scaled.rule_file} names no stage_modules with block classes")
        skeleton = _skeleton(candidate, classes)
        exact = (*full_counts(model, 1, resolution), *sizes(model))
        modelled = (*_skeleton_counts(candidate, skeleton, 1, resolution), skeleton.params, skeleton.weight_bytes)
        if exact != modelled:
            return _Family(classes, False, f"the skeleton of {scaled.base} counts {modelled}, a full build {exact}")
    return _Family(classes, True)


def family_key(scaled: ScalePlan) -> tuple:
    return (scaled.base, rule_id(scaled.rule))


def _family(scaled: ScalePlan, resolution: int) -> _Family:
    key = family_key(scaled)
    with _lock:
        family = _families.get(key)
        if family is None:
            try:
                family = _prove(scaled, resolution)
            except Unsure as error:
                family = _Family([], False, str(error))
            _families[key] = family
        return family


def skeleton(scaled: ScalePlan, resolution: int | None = None) -> Skeleton:
    """The plan's skeleton, once its family is proven; raises Unsure."""
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        raise Unsure("global module hooks are registered")
    if scaled.norm != "batch":  # proven on each family's own (batch-norm) blocks: count the whole model
        raise Unsure(f"the cost model is proven on batch-norm blocks, not norm={scaled.norm!r}")
    family = _family(scaled, scaled.resolution if resolution is None else resolution)
    if not family.proven:
        raise Unsure(family.reason)
    return _skeleton(scaled, family.classes)


def counts(scaled: ScalePlan, batch_size: int, resolution: int) -> tuple[int, int, int, int]:
    """(params, MACs, output elements, weight bytes) of the plan's model at this input; raises Unsure."""
    found = skeleton(scaled, resolution)
    macs, elements = _skeleton_counts(scaled, found, batch_size, resolution)
    return found.params, macs, elements, found.weight_bytes


def _skeleton_memory(scaled: ScalePlan, skeleton: Skeleton, batch_size: int, resolution: int) -> int:
    key = (structure_key(scaled), batch_size, resolution, "train")
    memory = _counts.get(key)
    if memory is None:
        model = skeleton.model
        try:
            with _lock, ShapeCounter(memo=True):
                units = trace_units(
                    model,
                    batch_size,
                    resolution,
                    skip=blocks.is_stub,
                    around=lambda tracer: blocks.counting(tracer=tracer),
                )
        except Exception as error:
            raise Unsure(f"tracing the skeleton's training step failed: {type(error).__name__}: {error}") from None
        static = static_bytes(skeleton.trainable_bytes, skeleton.buffer_bytes, batch_size, in_chans(model), resolution)
        memory = _counts[key] = peak(units, static)
    return memory


def train_memory(scaled: ScalePlan, batch_size: int, resolution: int) -> int:
    """Peak bytes of one SGD-momentum training step (``timm_compound.cost.memory``), from memoised
    blocks; the family's composition is proven against a full build's timeline on first use."""
    found = skeleton(scaled, resolution)
    family = _families[family_key(scaled)]
    with _lock:
        if family.memory_proven is None:
            family.memory_proven = _prove_memory(scaled, family)
    if not family.memory_proven:
        raise Unsure(f"the training-memory timeline of {scaled.base}'s skeleton differs from a full build's")
    return _skeleton_memory(scaled, found, batch_size, resolution)


def _prove_memory(scaled: ScalePlan, family: _Family, batch_size: int = 2, resolution: int = 64) -> bool:
    """The skeleton's timeline must equal a full build's, on the plan and one block deeper per stage."""
    try:
        for candidate in (scaled, _deeper(scaled)):
            exact = train_step_memory(meta_build(candidate), batch_size, resolution)
            if _skeleton_memory(candidate, _skeleton(candidate, family.classes), batch_size, resolution) != exact:
                return False
    except Unsure:
        return False
    return True


_clear_hooks: list[Callable[[], None]] = []


def on_clear(hook: Callable[[], None]) -> None:
    """Have `clear()` call `hook()` too: for what modules built on this one memoise (stage_reader)."""
    if hook not in _clear_hooks:
        _clear_hooks.append(hook)


def forget_plans() -> None:
    """Forget every skeleton and count but keep the families, blocks and traces (a benchmark's steady state)."""
    with _lock:
        _skeletons.clear()
        _counts.clear()


def clear() -> None:
    """Forget every memoised family, skeleton, block, count and base reading (a cold start, for benchmarks)."""
    with _lock:
        for hook in _clear_hooks:
            hook()
        _families.clear()
        _skeletons.clear()
        _counts.clear()
        blocks.clear()
        clear_shapes()
        readback.clear()
        clear_base_readings()
