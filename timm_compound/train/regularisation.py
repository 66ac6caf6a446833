"""Dropout and stochastic depth of a run: asked for, or the rule's training recipe at the plan's phi.

The EfficientNet recipe is part of how a scaled model is trained: dropout rises from 0.2 at B0 to
0.5 at B7 (a rule's `schedules`, built into the model as timm's own B1-B7 entrypoints do) and
drop-path stays at 0.2 (a rule's `recipe`, which `train` applies unless the run sets it). The run
records the values used and where each came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from timm_compound.errors import CompoundError
from timm_compound.scaling.plan import ScalePlan
from timm_compound.train.config import TrainConfig
from timm_compound.train.models import plan_for


@dataclass
class Regularisation:
    """The constructor arguments to add, and what the model ends up with."""

    model_kwargs: dict[str, Any] = field(default_factory=dict)
    drop_path: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)
    scheduled_drop_rate: float | None = None

    def drop_rate(self, model: nn.Module) -> float | None:
        """The dropout rate the built model uses before its classifier (None when it has no such setting)."""
        if "drop_rate" in self.model_kwargs:
            return float(self.model_kwargs["drop_rate"])
        if self.scheduled_drop_rate is not None:
            return self.scheduled_drop_rate
        value = getattr(model, "drop_rate", None)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def describe(self, settings: TrainConfig) -> dict[str, Any]:
        return {
            "drop_rate": settings.drop_rate,
            "drop_rate_source": self.sources.get("drop_rate", "model default"),
            "drop_path": settings.drop_path,
            "drop_path_source": self.sources.get("drop_path", "model default"),
        }


def regularisation(spec: Any, config: TrainConfig, *, phi: float | None, resolution: int | None) -> Regularisation:
    """What to pass the constructor for `config.drop_rate` / `config.drop_path`, else the rule's recipe."""
    if isinstance(spec, nn.Module):
        asked = [name for name in ("drop_rate", "drop_path") if getattr(config, name) is not None]
        if asked:
            raise CompoundError(
                f"{' and '.join(asked)} apply when train() builds the model; this model is already "
                "built: set them in its constructor"
            )
        return Regularisation()
    rule, scaled_phi, scheduled = _rule_and_phi(spec, phi, resolution)
    result = Regularisation(scheduled_drop_rate=scheduled)
    if scheduled is not None:
        result.sources["drop_rate"] = f"rule schedule at phi={scaled_phi:g}"
    for name, arg in (("drop_rate", "drop_rate"), ("drop_path", "drop_path_rate")):
        asked = getattr(config, name)
        if asked is not None:
            result.model_kwargs[arg] = asked
            result.sources[name] = "asked"
        elif arg in rule.recipe and scaled_phi is not None:
            result.model_kwargs[arg] = rule.recipe[arg].at(scaled_phi)
            result.sources[name] = f"rule recipe at phi={scaled_phi:g}"
    result.drop_path = float(result.model_kwargs.get("drop_path_rate", 0.0))
    return result


def _rule_and_phi(spec: Any, phi: float | None, resolution: int | None):
    """(the rule, the phi its schedules and recipe are read at, the scheduled dropout) of a plan or name."""
    scaled = spec if isinstance(spec, ScalePlan) else plan_for(spec, resolution, phi)[0]
    return scaled.rule, scaled.phi, _scheduled(scaled.constructor_args)


def _scheduled(constructor_args: dict[str, Any]) -> float | None:
    value = constructor_args.get("drop_rate")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
