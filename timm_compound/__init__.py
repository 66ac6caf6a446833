"""timm-compound: EfficientNet-style compound scaling for timm models.

``import timm_compound`` registers the variants listed in the package's registry
files with timm, so ``timm.create_model("resnet18_cs_phi2")`` works.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from timm_compound.build import build, pretrained_cfg, scale, stage_depths
from timm_compound.errors import CompoundError, RuleError, UnknownModelError
from timm_compound.fit import FitResult, fit
from timm_compound.hub import from_hub, publish, save_to_dir
from timm_compound.measure import Complexity, measure, measure_reference
from timm_compound.plan import Multipliers, ScalePlan, plan
from timm_compound.registry import register_files, register_shipped, registered
from timm_compound.rulebook import load_registry, load_rule
from timm_compound.schema import Coefficients, Rule
from timm_compound.table import family_table
from timm_compound.user_rules import load_rules, load_rules_from_env

try:
    __version__ = version("timm-compound")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0.0.0+unknown"

register_shipped()
load_rules_from_env()

__all__ = [
    "Coefficients", "Complexity", "CompoundError", "FitResult", "Multipliers", "Rule", "RuleError", "ScalePlan",
    "UnknownModelError", "build", "family_table", "fit", "from_hub", "load_registry", "load_rule", "load_rules",
    "measure", "measure_reference", "plan", "pretrained_cfg", "publish", "register_files", "registered",
    "save_to_dir", "scale", "stage_depths",
    "__version__",
]
