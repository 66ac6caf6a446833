"""`timm-compound rules check FILE`: prove a rule on its architectures before anyone relies on it.

phi = 0 must rebuild the base exactly (parameter count, state_dict keys and shapes, stage
depths); other phis, and each single-dimension strategy the rule does not fix (depth, width,
resolution alone, at the growth of the largest phi checked), are built on the meta device and compared with
the ideal cost growth d*w^2*r^2 = (alpha*beta^2*gamma^2)^phi (with r held at a resolution cap
where the rule has one), flagging a MAC ratio more than FAR_FROM_IDEAL away from it.

Every build is read back: blocks per stage, each stage's output channels (in proportion to the
base's, so a block's expansion does not count), and the stem's and head's convolutions must be
what the plan says; a rule whose stem argument the constructor ignores fails here. A build or
forward pass that fails is a failure line, not a traceback, naming the rule's fields; where a
larger `width.divisor` or `resolution.divisor` makes it work (groups, heads, a total stride), the
line says which is the smallest that does. What the check could not verify is a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError, RuleError
from timm_compound.scaling import readback, structure, timm_adapter
from timm_compound.scaling.build import build
from timm_compound.scaling.plan import ScalePlan, plan
from timm_compound.scaling.rulebook import RuleBook, load_rule
from timm_compound.scaling.schema import Rule
from timm_compound.scaling.stages import stage_depths

FAR_FROM_IDEAL = 0.25  # a MAC ratio this far (relative) from (alpha*beta^2*gamma^2)^phi is flagged
DIVISORS = (2, 4, 8, 16, 32, 64, 128, 256)  # tried in order when a build or forward fails
SINGLE = ("depth", "width", "resolution")  # each built once, at the largest phi checked


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
    strategy: str = "compound"


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
    r = scaled.resolution / scaled.base_resolution if scaled.resolution_source == "capped" else c.gamma**phi
    return c.alpha**phi * c.beta ** (2 * phi) * r**2


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _resolution_notes(arch: str, rule, result: CheckResult) -> None:
    cfg = timm_adapter.base_pretrained_cfg(arch)
    if not cfg.get("fixed_input_size"):
        return
    size = cfg["input_size"][-1]
    if rule.resolution.max is not None and rule.resolution.max <= size:
        result.notes.append(
            f"{arch}: resolution stays at {rule.resolution.max} px (resolution.max): timm's "
            f"pretrained_cfg has fixed_input_size, the model accepts only {size} px inputs"
        )
    else:
        result.notes.append(
            f"{arch}: timm's pretrained_cfg has fixed_input_size (only {size} px inputs), so "
            f"resolution cannot scale: set `resolution.max: {size}`"
        )


def check_rule(path: str | Path, phis: list[float] = (0, 1, 2, 3)) -> CheckResult:
    """Validate the rule file, rebuild each base at phi=0, and build, measure and read back the other
    phis and each single-dimension strategy."""
    path = Path(path)
    rule = load_rule(path)
    book = RuleBook.alone(rule, path)
    result = CheckResult(path)
    if rule.stage_modules is None:
        result.notes.append(
            "the rule has no stage_modules: blocks per stage were not counted "
            "(set stage_modules so the built depths are checked against the plan)"
        )
    for part, reason in rule.fixed().items():
        result.notes.append(f"{part} is fixed, so the {part}-only strategy was not built: {reason}")
    for arch in rule.architectures:
        _resolution_notes(arch, rule, result)
        with torch.device("meta"):
            base_model = timm_adapter.entrypoint(arch)(pretrained=False)
        base_plan = plan(arch, 0, rules=book)
        try:
            base = measure(base_model, resolution=base_plan.resolution)
        except Exception as error:
            result.failures.append(f"{arch}: phi=0 at {base_plan.resolution} px: forward failed: {_failure(error)}")
            continue
        reference = _Reference(arch, rule, str(path), base_plan)
        runs = [("compound", phi) for phi in sorted({0, *phis})]
        runs += [(single, max(phis)) for single in SINGLE if single not in rule.fixed() and max(phis) > 0]
        for strategy, phi in runs:
            label = f"phi={phi:g}" if strategy == "compound" else f"{strategy} only at phi={phi:g}"
            try:
                scaled = plan(arch, phi, rules=book, **({} if strategy == "compound" else {"strategy": strategy}))
            except CompoundError as error:
                if phi == 0:
                    raise
                result.failures.append(f"{arch}: {label}: {error}{_hint(arch, rule, path, phi, strategy)}")
                continue
            where = f"{arch}: {label} at {scaled.resolution} px"
            try:
                with torch.device("meta"):
                    model = build(scaled)
            except Exception as error:
                result.failures.append(
                    f"{where}: build failed ({path}: {_written(rule)}): {_failure(error)}"
                    f"{_hint(arch, rule, path, phi, strategy)}"
                )
                continue
            try:
                cost = measure(model)  # counts a meta copy of the model just built, at the plan's resolution
            except Exception as error:
                result.failures.append(
                    f"{where}: forward failed: {_failure(error)}{_hint(arch, rule, path, phi, strategy)}"
                )
                continue
            if (
                phi == 0
                and strategy == "compound"
                and (cost.params != base.params or _shapes(model) != _shapes(base_model))
            ):
                result.failures.append(
                    f"{arch}: phi=0 differs from timm's {arch} ({cost.params:,} vs {base.params:,} "
                    "parameters or different state_dict shapes)"
                )
            if rule.stage_modules is not None:
                built_depths = stage_depths(model, scaled)
                if built_depths != scaled.depths:
                    result.failures.append(
                        f"{arch}: {label} built {built_depths} blocks per stage, planned {scaled.depths}"
                    )
            result.failures += [f"{arch}: {label}: {problem}" for problem in reference.read_back(model, scaled)]
            ideal = ideal_ratio(scaled)
            macs_ratio = cost.macs / base.macs
            flag = None
            if abs(macs_ratio / ideal - 1) > FAR_FROM_IDEAL:
                flag = f"MACs x{macs_ratio:.2f} is far from the ideal x{ideal:.2f}"
            result.rows.append(
                CheckRow(
                    arch,
                    phi,
                    scaled,
                    cost.params,
                    cost.params / base.params,
                    cost.macs,
                    macs_ratio,
                    ideal,
                    flag,
                    strategy,
                )
            )
    return result


def _written(rule: Rule) -> str:
    """The rule fields whose values a build writes into the constructor's arguments."""
    fields = [f"{part}.arg {getattr(rule, part).arg}" for part in ("depth", "width") if getattr(rule, part).arg]
    fields += [f"width.scale_with {path}" for path in rule.width.scale_with]
    fields += [
        f"{name}.arg {part.arg}" for name, part in (("stem", rule.stem), ("head", rule.head)) if part.policy == "scale"
    ]
    return "; ".join(fields) or "nothing"


def _builds(arch: str, rule: Rule, path: Path, phi: float, strategy: str) -> bool:
    """Does `rule` plan, build and run `arch` at phi along `strategy` on the meta device?"""
    book = RuleBook.alone(rule, path)
    try:
        scaled = plan(arch, phi, rules=book, **({} if strategy == "compound" else {"strategy": strategy}))
        with torch.device("meta"):
            measure(build(scaled))
    except Exception:
        return False
    return True


def _hint(arch: str, rule: Rule, path: Path, phi: float, strategy: str) -> str:
    """'; set width.divisor: 32 (the smallest that builds)' when a larger divisor makes this build work."""
    for part in ("width", "resolution"):
        policy = getattr(rule, part)
        if policy.fixed is not None:
            continue
        for divisor in (d for d in DIVISORS if d > policy.divisor):
            changed = Rule.model_validate(
                {
                    **rule.model_dump(by_alias=True),
                    part: {**policy.model_dump(exclude_defaults=True), "divisor": divisor},
                }
            )
            if _builds(arch, changed, path, phi, strategy):
                kept = _builds(arch, changed, path, 0, "compound") and _structure(arch, changed, path) == _structure(
                    arch, rule, path
                )
                return (
                    f"; set {part}.divisor: {divisor} (the smallest that builds and runs it"
                    f"{'' if kept else ', though phi=0 then differs from the base'})"
                )
    return ""


def _structure(arch: str, rule: Rule, path: Path) -> tuple:
    scaled = plan(arch, 0, rules=RuleBook.alone(rule, path))
    return scaled.depths, scaled.widths, scaled.stem, scaled.head, scaled.resolution


class _Reference:
    """What the base build shows: which convolutions hold the stem's and head's widths, and each stage's
    output channels per planned width (a bottleneck's expansion), to read every build back against."""

    def __init__(self, arch: str, rule: Rule, source: str, base_plan: ScalePlan):
        self.arch, self.rule, self.source, self.base_plan = arch, rule, source, base_plan
        with torch.device("meta"):
            model = build(base_plan).eval()
        self.stem = _conv_with(model, base_plan.base_stem, first=True) if rule.stem.policy != "derived" else None
        self.head = _conv_with(model, base_plan.base_head, first=False) if rule.head.policy != "derived" else None
        self.stages = self._stages(model) if rule.stage_modules is not None else None
        self.expansion = None  # what each stage builds per planned channel: 1, or a block's expansion (4)
        if self.stages is not None and not structure.is_derived(rule):
            self.expansion = [
                built // planned if built % planned == 0 else None
                for built, planned in zip(self.stages, base_plan.widths)
            ]

    def _stages(self, model) -> list[int] | None:
        try:
            return readback.read_stages(model, self.arch, self.rule, self.source)[1]
        except RuleError:
            return None

    def read_back(self, model, scaled: ScalePlan) -> list[str]:
        """What the built model has that the plan does not say."""
        problems = []
        for name, conv, planned in (("stem", self.stem, scaled.stem), ("head", self.head, scaled.head)):
            if conv is not None and planned is not None:
                built = _out(model.get_submodule(conv))
                if built != planned:
                    arg = getattr(self.rule, name).arg
                    problems.append(
                        f"the plan's {name} is {planned} channels but the built {conv} has {built}"
                        + (f": the constructor does not take its width from {arg}" if arg else "")
                    )
        if self.expansion is not None:
            built = self._stages(model)
            if None in self.expansion:
                problems.append(
                    f"the plan's stage widths {scaled.widths} build {built} output channels, not whole "
                    "multiples of them: the constructor rounds widths another way than the rule's "
                    "width.divisor and round_limit"
                )
            elif built is not None and built != [w * e for w, e in zip(scaled.widths, self.expansion)]:
                expected = [w * e for w, e in zip(scaled.widths, self.expansion)]
                problems.append(
                    f"the plan's stage widths {scaled.widths} should build {expected} output channels, "
                    f"the model has {built}"
                )
        return problems


def _out(module) -> int | None:
    return getattr(module, "out_channels", getattr(module, "out_features", None))


def _conv_with(model, channels: int | None, first: bool) -> str | None:
    """The first (or last, not counting the classifier) convolution or linear layer with `channels` outputs."""
    if channels is None:
        return None
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module is not classifier
    ]
    found = [name for name, module in (layers if first else reversed(layers)) if _out(module) == channels]
    return found[0] if found else None
