"""`timm-compound rules check FILE`: prove a rule on its architectures before anyone relies on it.

phi = 0 must rebuild the base exactly (parameter count, state_dict keys and shapes, stage
depths); other phis are built on the meta device and compared with the ideal cost growth
(alpha*beta^2*gamma^2)^phi, flagging a MAC ratio more than `tolerance` away from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from timm_compound.cost.measure import measure
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

    @property
    def ok(self) -> bool:
        return not self.failures


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_rule(path: str | Path, phis: list[float] = (0, 1, 2)) -> CheckResult:
    """Validate the rule file, rebuild each base at phi=0, and measure the other phis."""
    path = Path(path)
    rule = load_rule(path)
    book = RuleBook()
    book.add(rule, path)
    result = CheckResult(path)
    for arch in rule.architectures:
        with torch.device("meta"):
            base_model = timm_adapter.entrypoint(arch)(pretrained=False)
        base = measure(base_model, resolution=plan(arch, 0, rules=book).resolution)
        for phi in sorted(set([0, *phis])):
            scaled = plan(arch, phi, rules=book)
            with torch.device("meta"):
                model = build(scaled)
            cost = measure(model)  # counts a meta copy of the model just built, at the plan's resolution
            if phi == 0 and (cost.params != base.params or _shapes(model) != _shapes(base_model)):
                result.failures.append(
                    f"{arch}: phi=0 differs from timm's {arch} ({cost.params:,} vs {base.params:,} "
                    "parameters or different state_dict shapes)")
            built_depths = stage_depths(model, scaled) if rule.stage_modules is not None else scaled.depths
            if built_depths != scaled.depths:
                result.failures.append(
                    f"{arch}: phi={phi:g} built {built_depths} blocks per stage, planned {scaled.depths}")
            ideal = scaled.coefficients.flops_factor ** phi
            macs_ratio = cost.macs / base.macs
            flag = None
            if abs(macs_ratio / ideal - 1) > FAR_FROM_IDEAL:
                flag = f"MACs x{macs_ratio:.2f} is far from the ideal x{ideal:.2f}"
            result.rows.append(CheckRow(arch, phi, scaled, cost.params, cost.params / base.params,
                                        cost.macs, macs_ratio, ideal, flag))
    return result
