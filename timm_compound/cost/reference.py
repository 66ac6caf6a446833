"""The reference count: fvcore on a real model and input, the check on the fast meta-device path."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from timm_compound.cost.complexity import Complexity, check_sizes, resolve_target
from timm_compound.cost.meta import in_chans, sizes
from timm_compound.errors import CompoundError
from timm_compound.scaling.build import build
from timm_compound.scaling.plan import ScalePlan
from timm_compound.scaling.stages import stage_blocks, stage_paths


def measure_reference(
    target: str | ScalePlan | nn.Module,
    *,
    resolution: int | None = None,
    batch_size: int = 1,
) -> Complexity:
    """The same numbers from fvcore on a real model and input: the check on the fast path.

    fvcore is set to count conv + linear only (batchnorm, pooling, upsample and
    elementwise handles off); ``per_stage`` is its per-module MAC breakdown over the
    rule's ``stage_modules``, plus ``other`` for stem, head and classifier.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore scripts helpers with the deprecated torch.jit
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
        from fvcore.nn import jit_handles as fv

    scaled, given, resolution = resolve_target(target, resolution)
    check_sizes(resolution, batch_size)
    model = (given if given is not None else build(scaled)).eval()
    device = next(model.parameters()).device
    x = torch.randn(batch_size, in_chans(model), resolution, resolution, device=device)
    # fvcore's defaults also count batchnorm, pooling and upsampling, and set_op_handle(name, None)
    # does not drop a default handle: start from none and add conv + linear back
    flops = (
        FlopCountAnalysis(model, x)
        .clear_op_handles()
        .set_op_handle(
            "aten::_convolution",
            fv.conv_flop_jit,
            "aten::addmm",
            fv.addmm_flop_jit,
            "aten::linear",
            fv.linear_flop_jit,
            "aten::mm",
            fv.matmul_flop_jit,
            "aten::matmul",
            fv.matmul_flop_jit,
            "aten::bmm",
            fv.bmm_flop_jit,
            "aten::einsum",
            fv.einsum_flop_jit,
        )
    )
    activations = ActivationCountAnalysis(model, x)
    for analysis in (flops, activations):
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices from fvcore's tracer
        total, by_module, elements = int(flops.total()), flops.by_module(), int(activations.total())
    params, weight_bytes = sizes(model)
    stages = _stages(model, scaled or getattr(model, "compound_plan", None))
    per_stage = {name: sum(int(by_module[path]) for path in paths) for name, paths in stages.items()}
    per_stage["other"] = total - sum(per_stage.values())
    return Complexity(
        params,
        total,
        elements,
        weight_bytes,
        resolution,
        batch_size,
        method="fvcore",
        per_stage=per_stage,
    )


def _stages(model: nn.Module, scaled: ScalePlan | None) -> dict[str, list[str]]:
    """Stage name -> module paths whose MACs it sums: the stage module itself, or, for stages that
    are runs of a flat Sequential (VGG's `split_at`), its blocks, named first..last."""
    where = scaled.rule.stage_modules if scaled is not None else None
    if where is None:
        return {}
    try:
        return {path: [path] for path in stage_paths(model, where)}
    except CompoundError:  # runs of modules, not modules
        return {
            f"{blocks[0][0]}..{blocks[-1][0]}": [path for path, _ in blocks] for blocks in stage_blocks(model, where)
        }
