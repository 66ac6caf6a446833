"""`timm-compound rules check FILE`: prove a rule on its architectures before anyone relies on it.

phi = 0 must rebuild the base exactly (parameter count, state_dict keys and shapes, stage
depths); other phis are built on the meta device and compared with the ideal cost growth
d*w^2*r^2 = (alpha*beta^2*gamma^2)^phi (with r held at a resolution cap where the rule has one),
flagging a MAC ratio more than FAR_FROM_IDEAL away from it. A phi whose build or forward pass
fails is a failure line, not a traceback; what the check could not verify is a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.build import build
from timm_compound.scaling.plan import ScalePlan, plan
from timm_compound.scaling.rulebook import RuleBook, load_rule
from timm_compound.scaling.stages import stage_depths

FAR_FROM_IDEAL = 0.25  # a MAC ratio this far (relative) from (alpha*beta^2*gamma^2)^phi is flagged


@dataclass
class CheckRow:
    arch: str
    phi: float
    plan: ScalePlan
    params: int
    params_ratio: float
    macs: int
    macs_ratio: float
    ideal: float
    flag: str | None = None


@dataclass
class CheckResult:
    source: Path
    rows: list[CheckRow] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def ideal_ratio(scaled: ScalePlan) -> float:
    """d * w^2 * r^2 of the coefficients at the plan's phi; r is the capped one when the rule caps it."""
    c, phi = scaled.coefficients, scaled.phi or 0.0
    r = scaled.resolution / scaled.base_resolution if scaled.resolution_source == "capped" else c.gamma ** phi
    return c.alpha ** phi * c.beta ** (2 * phi) * r ** 2


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _resolution_notes(arch: str, rule, result: CheckResult) -> None:
    cfg = timm_adapter.base_pretrained_cfg(arch)
    if not cfg.get("fixed_input_size"):
        return
    size = cfg["input_size"][-1]
    if rule.resolution.max is not None and rule.resolution.max <= size:
        result.notes.append(f"{arch}: resolution stays at {rule.resolution.max} px (resolution.max): timm's "
                            f"pretrained_cfg has fixed_input_size, the model accepts only {size} px inputs")
    else:
        result.notes.append(f"{arch}: timm's pretrained_cfg has fixed_input_size (only {size} px inputs), so "
                            f"resolution cannot scale: set `resolution.max: {size}`")


def check_rule(path: str | Path, phis: list[float] = (0, 1, 2)) -> CheckResult:
    """Validate the rule file, rebuild each base at phi=0, and measure the other phis."""
    path = Path(path)
    rule = load_rule(path)
    book = RuleBook.alone(rule, path)
    result = CheckResult(path)
    if rule.stage_modules is None:
        result.notes.append("the rule has no stage_modules: blocks per stage were not counted "
                            "(set stage_modules so the built depths are checked against the plan)")
    for arch in rule.architectures:
        _resolution_notes(arch, rule, result)
        with torch.device("meta"):
            base_model = timm_adapter.entrypoint(arch)(pretrained=False)
        base_px = plan(arch, 0, rules=book).resolution
        try:
            base = measure(base_model, resolution=base_px)
        except Exception as error:  # noqa: BLE001 - a forward failure is a finding, not a crash
            result.failures.append(f"{arch}: phi=0 at {base_px} px: forward failed: {_failure(error)}")
            continue
        for phi in sorted(set([0, *phis])):
            try:
                scaled = plan(arch, phi, rules=book)
            except CompoundError as error:
                if phi == 0:
                    raise
                result.failures.append(f"{arch}: phi={phi:g}: {error}")
                continue
            where = f"{arch}: phi={phi:g} at {scaled.resolution} px"
            try:
                with torch.device("meta"):
                    model = build(scaled)
            except Exception as error:  # noqa: BLE001
                result.failures.append(f"{where}: build failed: {_failure(error)}")
                continue
            try:
                cost = measure(model)  # counts a meta copy of the model just built, at the plan's resolution
            except Exception as error:  # noqa: BLE001
                result.failures.append(f"{where}: forward failed: {_failure(error)}")
                continue
            if phi == 0 and (cost.params != base.params or _shapes(model) != _shapes(base_model)):
                result.failures.append(
                    f"{arch}: phi=0 differs from timm's {arch} ({cost.params:,} vs {base.params:,} "
                    "parameters or different state_dict shapes)")
            if rule.stage_modules is not None:
                built_depths = stage_depths(model, scaled)
                if built_depths != scaled.depths:
                    result.failures.append(
                        f"{arch}: phi={phi:g} built {built_depths} blocks per stage, planned {scaled.depths}")
            ideal = ideal_ratio(scaled)
            macs_ratio = cost.macs / base.macs
            flag = None
            if abs(macs_ratio / ideal - 1) > FAR_FROM_IDEAL:
                flag = f"MACs x{macs_ratio:.2f} is far from the ideal x{ideal:.2f}"
            result.rows.append(CheckRow(arch, phi, scaled, cost.params, cost.params / base.params,
                                        cost.macs, macs_ratio, ideal, flag))
    return result
