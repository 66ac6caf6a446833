"""The norm a plan builds with: batch (the base's own), group, layer, proxy or proxy-layer.

What differs between families is data in the rule's `norm` section (which constructor argument takes
the norm layer, whether the model binds it to the activation itself, which activation modules follow
which norms); this module only turns a choice into that argument and, for Proxy Norm in models that
keep activations apart, hands each listed activation to the norm before it.
"""

from __future__ import annotations

import functools
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError, RuleError
from timm_compound.layers import GroupNormAct2d, ProxyNormAct2d, indivisible_layers
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.layouts.base import Where, get_path, set_path
from timm_compound.scaling.schema import NORMS, NormRule, Rule

DEFAULT = "batch"
# what each choice builds: (layer class, normalised over groups of `group_size` channels or one group)
_CHOICES = {
    "group": (GroupNormAct2d, "group"),
    "layer": (GroupNormAct2d, "layer"),
    "proxy": (ProxyNormAct2d, "group"),
    "proxy-layer": (ProxyNormAct2d, "layer"),
}

timm_adapter.register_norm_act(GroupNormAct2d)
timm_adapter.register_norm_act(ProxyNormAct2d)


def check(rule: Rule, norm: Any, source: str) -> str:
    """`norm` as a plan records it; an unknown name or a family that cannot change its norm is an error."""
    if norm is None:
        return DEFAULT
    if not isinstance(norm, str) or norm not in NORMS:
        raise CompoundError(f"unknown norm {norm!r}: choose one of {', '.join(NORMS)}")
    if norm == DEFAULT:
        return norm
    if rule.norm is None:
        raise CompoundError(
            f"norm={norm!r}: the {rule.family} rule ({source}) has no `norm` section, so its models keep "
            "batch norm (a rule's norm section says where a family's norm layer goes: docs/norm.md)"
        )
    if rule.norm.fixed is not None:
        raise CompoundError(f"norm={norm!r}: the {rule.family} rule ({source}) keeps its norm: {rule.norm.fixed}")
    return norm


def check_rule(rule: Rule, call: timm_adapter.BuildCall, source: str) -> None:
    """The rule's norm.arg is a constructor argument (or path) the base's build call has."""
    if rule.norm is not None and rule.norm.arg is not None:
        get_path(call, rule.norm.arg, Where(source, "norm"))


def layer_for(policy: NormRule, norm: str) -> functools.partial:
    """The norm layer the constructor gets for `norm` (not 'batch')."""
    cls, grouping = _CHOICES[norm]
    groups = {"group_size": policy.group_size} if grouping == "group" else {"group_size": None, "num_groups": 1}
    kwargs: dict[str, Any] = {**groups, "fallback": policy.fallback}
    if policy.takes == "norm":  # the model calls norm_layer(channels) and applies its activation after it
        kwargs["apply_act"] = False
    return functools.partial(cls, **kwargs)


def write(call: timm_adapter.BuildCall, plan) -> None:
    """Give a captured build call the plan's norm (nothing for 'batch': the base as it is)."""
    norm = getattr(plan, "norm", DEFAULT)
    if norm == DEFAULT:
        return
    policy, source = plan.rule.norm, plan.rule_file
    if policy is None or policy.arg is None:  # a plan validated elsewhere: refuse as plan() would
        check(plan.rule, norm, source)
        return
    set_path(call, policy.arg, layer_for(policy, norm), Where(source, "norm"))
    build_class = call.model_cls

    def build_with_norm(*args, **kwargs):
        model = build_class(*args, **kwargs)
        if norm.startswith("proxy"):
            _hand_over_activations(model, policy, source)
        _refuse_indivisible(model, plan, norm)
        return model

    call.model_cls = build_with_norm


def refuse_norm_kwargs(plan, timm_kwargs: dict[str, Any]) -> None:
    """A plan with a norm choice owns the norm argument: a norm_layer passed beside it would be lost."""
    policy = plan.rule.norm
    if getattr(plan, "norm", DEFAULT) != DEFAULT and policy is not None and policy.arg is not None:
        owned = policy.arg.split(".")[0]
        if owned in timm_kwargs:
            raise CompoundError(f"{owned} is set by norm={plan.norm!r} (rule {plan.rule_file}): give one of them")


def _hand_over_activations(model: nn.Module, policy: NormRule, source: str) -> None:
    """takes: norm: each listed activation moves into the ProxyNormAct2d before it (which then
    normalises its output); the block keeps an nn.Identity in its place."""
    for name, module in model.named_modules():
        pairs = policy.activations.get(type(module).__name__, [])
        for norm_name, act_name in pairs:
            norm, act = getattr(module, norm_name, None), getattr(module, act_name, None)
            if not isinstance(norm, ProxyNormAct2d) or not isinstance(act, nn.Module):
                raise RuleError(
                    source,
                    f"norm.activations.{type(module).__name__}",
                    f"{name or 'the model'} ({type(module).__name__}) has no norm {norm_name!r} followed by an "
                    f"activation module {act_name!r} (it has {norm_name}: {type(norm).__name__}, "
                    f"{act_name}: {type(act).__name__})",
                )
            norm.attach_activation(act)
            setattr(module, act_name, nn.Identity())


def _refuse_indivisible(model: nn.Module, plan, norm: str) -> None:
    failed = indivisible_layers(model)
    if not failed:
        return
    size = plan.rule.norm.group_size
    shown = ", ".join(f"{name} ({channels})" for name, channels, _ in failed[:8])
    more = f" and {len(failed) - 8} more" if len(failed) > 8 else ""
    raise CompoundError(
        f"norm={norm!r} puts {size} channels in a group, which does not divide the channels of "
        f"{len(failed)} layer{'s' if len(failed) > 1 else ''} of {plan.base}'s plan (stage widths {plan.widths}): "
        f"{shown}{more}. Set `norm: {{fallback: divisor}}` in the rule ({plan.rule_file}) to use the largest "
        "group size that divides each, or choose norm='layer' or 'proxy-layer'"
    )


def with_norm(scaled, norm: str | None):
    """The same plan with another norm (None: its own), checked against its rule as plan() checks it."""
    if norm is None or norm == scaled.norm:
        return scaled
    return scaled.model_copy(update={"norm": check(scaled.rule, norm, scaled.rule_file)})
