"""Registering the variants listed in registry/*.yaml as timm models.

All files are validated and every name checked (`timm_compound.scaling.catalog.collect`)
before anything is registered, so a bad file leaves timm exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

from timm_compound.registry.compound_scaled import make_entrypoint
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.build import variant_cfg
from timm_compound.scaling.catalog import Variant, collect, record, registered
from timm_compound.scaling.plan import variant_resolution
from timm_compound.scaling.rulebook import (
    RuleBook,
    active_rules,
    shipped_dir,
    shipped_rules,
)


def _cfg(variant: Variant, rules: RuleBook) -> dict:
    start, pixels = variant_resolution(variant.base, variant.phi, rules)
    return variant_cfg(variant.base, pixels, start, variant.name, variant.hf_hub_id)


def register(variants: list[Variant], rules: RuleBook | None = None) -> None:
    """Register validated variants with timm, each with its scaled pretrained_cfg (no model is built)."""
    rules = rules or active_rules()
    prepared = [(variant, _cfg(variant, rules)) for variant in variants]
    for variant, cfg in prepared:
        entrypoint = make_entrypoint(variant.name, variant.base, variant.phi, variant.hf_hub_id)
        timm_adapter.register(entrypoint, cfg)
        record(variant)


def refresh(before: RuleBook, after: RuleBook) -> list[Variant]:
    """Re-register the registered variants whose base changed rule between two books (a user rule
    `replaces` a shipped one), so their pretrained_cfg input sizes follow the rule now in force."""
    changed = [
        variant
        for variant in registered().values()
        if variant.base in after.rules and before.rules.get(variant.base) != after.rules[variant.base]
    ]
    register(changed, after)
    return changed


def register_files(paths: list[str | Path], rules: RuleBook | None = None) -> list[Variant]:
    """Validate registry files, then register their variants; all or nothing."""
    rules = rules or active_rules()
    variants = collect([Path(p) for p in paths], rules)
    register(variants, rules)
    return variants


def register_shipped() -> None:
    """Register every variant in the package's registry/ folder (run by `import timm_compound`)."""
    register_files(sorted(shipped_dir("registry").glob("*.yaml")), shipped_rules())
