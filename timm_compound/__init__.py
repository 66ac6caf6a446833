"""timm-compound: EfficientNet-style compound scaling for timm models.

``import timm_compound`` registers the variants listed in the package's registry
files with timm, so ``timm.create_model("resnet18_cs_phi2")`` works.

The package follows the data's journey (each layer imports only the ones below it):

- ``scaling``: rule files -> ``ScalePlan`` -> ``nn.Module`` (schema, rounding, layouts, plan, build)
- ``cost``: what a plan costs (measure, fit, family table, plots)
- ``hub`` / ``authoring``: the published format, publishing and checked loading / rule scaffolding and checks
- ``inherit``: a scaled model initialised from its base's weights, preserving its function (Net2Net)
- ``registry``: registered variants as timm entrypoints, user rule paths
- ``cli``: the ``timm-compound`` command line
"""

from __future__ import annotations

import sys

# The `timm-compound` console script sets timm_compound_cli.CLI_RUN before importing the package:
# `--help`, `rules validate` and `rules schema` must not pay for torch and timm. Its commands call
# timm_compound.registry.startup.ensure_registered() when they need registered names or user rules.
# `python -m timm_compound` is the same run: Python imports this package while argv[0] is still "-m".
if getattr(sys.modules.get("timm_compound_cli"), "CLI_RUN", False) or sys.argv[:1] == ["-m"]:
    from timm_compound.version import __version__
else:
    from timm_compound.cost.by_flops import plan
    from timm_compound.cost.fit import FitResult, fit
    from timm_compound.cost.measure import Complexity, measure
    from timm_compound.cost.reference import measure_reference
    from timm_compound.cost.table import family_table
    from timm_compound.errors import CompoundError, RuleError, UnknownModelError
    from timm_compound.experiment.api import experiment
    from timm_compound.experiment.results import ExperimentResult
    from timm_compound.hub.load import build, from_dir, from_hub, scale
    from timm_compound.hub.publish import publish, save_to_dir
    from timm_compound.inherit.api import InheritReport, inherit
    from timm_compound.registry.register import register_files
    from timm_compound.registry.startup import ensure_registered
    from timm_compound.registry.user_rules import load_rules
    from timm_compound.scaling.build import pretrained_cfg
    from timm_compound.scaling.catalog import registered
    from timm_compound.scaling.plan import Multipliers, ScalePlan
    from timm_compound.scaling.rulebook import load_registry, load_rule
    from timm_compound.scaling.schema import Coefficients, Rule
    from timm_compound.scaling.stages import stage_depths
    from timm_compound.search.api import search
    from timm_compound.search.results import SearchResult
    from timm_compound.train.api import evaluate, train
    from timm_compound.train.config import TrainConfig
    from timm_compound.train.results import EvalResult, TrainResult
    from timm_compound.version import __version__

    ensure_registered()  # the variants in registry/*.yaml, then TIMM_COMPOUND_RULES_PATH

__all__ = [
    "Coefficients",
    "Complexity",
    "CompoundError",
    "FitResult",
    "Multipliers",
    "Rule",
    "RuleError",
    "ScalePlan",
    "UnknownModelError",
    "build",
    "family_table",
    "fit",
    "from_dir",
    "from_hub",
    "load_registry",
    "load_rule",
    "load_rules",
    "measure",
    "measure_reference",
    "plan",
    "pretrained_cfg",
    "publish",
    "register_files",
    "registered",
    "save_to_dir",
    "scale",
    "stage_depths",
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "train",
    "InheritReport",
    "inherit",
    "SearchResult",
    "search",
    "ExperimentResult",
    "experiment",
    "__version__",
]
