"""Registering the variants listed in registry/*.yaml as timm models.

All files are validated and every name checked before anything is registered,
so a bad file leaves timm exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from timm_compound import _timm_adapter
from timm_compound.compound_scaled import make_entrypoint
from timm_compound.errors import RuleError
from timm_compound.rulebook import RuleBook, active_rules, load_registry, shipped_dir, shipped_rules


@dataclass(frozen=True)
class Variant:
    """One registered scaled model."""

    name: str
    base: str
    phi: int
    hf_hub_id: str | None
    source: str


_registered: dict[str, Variant] = {}


def registered() -> dict[str, Variant]:
    """Registered variants by name, in registration order."""
    return dict(_registered)


def collect(paths: list[Path], rules: RuleBook) -> list[Variant]:
    """Validate registry files and return their variants; raises before anything is registered."""
    variants: dict[str, Variant] = {}
    for path in paths:
        registry = load_registry(path)
        for index, entry in enumerate(registry.variants):
            if entry.base not in rules.rules:
                known = "unknown timm architecture" if not _timm_adapter.is_builtin_model(entry.base) else "no rule covers"
                raise RuleError(path, f"variants.{index}.base", f"{known} {entry.base!r}")
            for phi, name in entry.names().items():
                field = f"variants.{index}.name"
                if name in _registered and _registered[name].source == str(path):
                    continue
                if name in _registered:
                    raise RuleError(path, field, f"{name!r} is already registered by {_registered[name].source}")
                if _timm_adapter.is_model(name):
                    raise RuleError(path, field, f"{name!r} collides with an existing timm model name")
                if name in variants:
                    raise RuleError(path, field, f"{name!r} is also registered by {variants[name].source}")
                variants[name] = Variant(name, entry.base, phi, entry.hub.get(phi), str(path))
    return list(variants.values())


def register(variants: list[Variant], rules: RuleBook | None = None) -> None:
    """Register validated variants with timm, each with its scaled pretrained_cfg."""
    from timm_compound.build import pretrained_cfg
    from timm_compound.plan import plan

    rules = rules or active_rules()
    prepared = []
    for variant in variants:
        scaled = plan(variant.base, variant.phi, rules=rules)
        prepared.append((variant, pretrained_cfg(scaled, variant.name, variant.hf_hub_id)))
    for variant, cfg in prepared:
        entrypoint = make_entrypoint(variant.name, variant.base, variant.phi, variant.hf_hub_id)
        _timm_adapter.register(entrypoint, cfg)
        _registered[variant.name] = variant


def register_files(paths: list[str | Path], rules: RuleBook | None = None) -> list[Variant]:
    """Validate registry files, then register their variants; all or nothing."""
    rules = rules or active_rules()
    variants = collect([Path(p) for p in paths], rules)
    register(variants, rules)
    return variants


def register_shipped() -> None:
    """Register every variant in the package's registry/ folder (run by `import timm_compound`)."""
    register_files(sorted(shipped_dir("registry").glob("*.yaml")), shipped_rules())
