"""`timm-compound rules show`: a rule read back in words, what scales and how, and what does not and why."""

from __future__ import annotations

from pathlib import Path

from timm_compound.scaling.schema import PartRule, Rule


def _args(arg) -> str:
    return ", ".join([arg] if isinstance(arg, str) else arg)


def _dimension(rule: Rule, part: str) -> str:
    policy = getattr(rule, part)
    if policy.fixed is not None:
        return f"fixed: {policy.fixed}"
    if part == "resolution":
        cap = f", at most {policy.max} px" if policy.max is not None else ""
        base = f"{policy.base} px" if policy.base is not None else "the base's pretrained_cfg size"
        return f"{base} x r, {policy.rounding} to a multiple of {policy.divisor}, at least {policy.min} px{cap}"
    text = f"{_args(policy.arg)} ({policy.layout})"
    if part == "depth":
        text += f", {policy.rounding}, at least {policy.min} block{'s' if policy.min > 1 else ''}"
        text += f", in groups of {policy.period}" if policy.period > 1 else ""
    else:
        text += f", multiples of {policy.divisor} (round_limit {policy.round_limit})"
        text += f"; with it: {', '.join(policy.scale_with)}" if policy.scale_with else ""
        text += f"; by w/d: {', '.join(policy.per_block)}" if policy.per_block else ""
    if policy.fixed_stages:
        text += f"; stages {policy.fixed_stages} unscaled"
    return text


def _part(part: PartRule) -> str:
    where = part.arg or (f"{part.value} channels" if part.value is not None else "")
    text = f"{part.policy} {where}".strip()
    return f"{text}: {part.note}" if part.note else text


def describe(rule: Rule, source: Path) -> list[tuple[str, str]]:
    """(quantity, what the rule does with it) for every part of `rule`."""
    c = rule.coefficients
    rows = [
        ("family", f"{rule.family} ({source})"),
        ("architectures", ", ".join(rule.architectures)),
        ("strategy", rule.strategy.label()),
        (
            "coefficients",
            f"alpha={c.alpha:g} beta={c.beta:g} gamma={c.gamma:g} (alpha*beta^2*gamma^2 = {c.flops_factor:.3f})",
        ),
        ("depth", _dimension(rule, "depth")),
        ("width", _dimension(rule, "width")),
        ("resolution", _dimension(rule, "resolution")),
        ("stem", _part(rule.stem)),
        ("head", _part(rule.head)),
    ]
    rows += [(f"schedule {name}", f"{s.start:g} + {s.per_phi:g} per phi") for name, s in rule.schedules.items()]
    if rule.stage_modules is not None:
        shown = (
            rule.stage_modules.model_dump(exclude_defaults=True)
            if hasattr(rule.stage_modules, "model_dump")
            else rule.stage_modules
        )
        rows.append(("stage_modules", str(shown)))
    rows.append(("norm", _norm(rule)))
    return rows


def _norm(rule: Rule) -> str:
    policy = rule.norm
    if policy is None:
        return "batch only (no norm section)"
    if policy.fixed is not None:
        return f"its own only: {policy.fixed}"
    how = "bound to each activation by timm" if policy.takes == "norm_act" else "called alone, activations apart"
    pairs = "; ".join(f"{cls}: {', '.join(f'{n}->{a}' for n, a in pairs)}" for cls, pairs in policy.activations.items())
    return (
        f"batch, group, layer, proxy, proxy-layer via {policy.arg} ({how}); {policy.group_size} channels "
        f"per group, fallback {policy.fallback}" + (f"; proxy takes over {pairs}" if pairs else "")
    )
