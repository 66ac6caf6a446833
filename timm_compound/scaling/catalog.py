"""Which scaled variants exist: registry files validated into (name -> base, phi, Hub repo).

The catalogue is data only; `timm_compound.registry` turns its entries into timm
entrypoints. Everything that resolves a name (measure, publish, the CLI) reads it here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from timm_compound.errors import CompoundError, RuleError, UnknownModelError
from timm_compound.scaling import timm_adapter
from timm_compound.scaling.plan import variant_resolution
from timm_compound.scaling.rulebook import RuleBook, active_rules, load_registry


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


def record(variant: Variant) -> None:
    """Enter a variant that has just been registered with timm."""
    _registered[variant.name] = variant


def collect(paths: list[Path], rules: RuleBook) -> list[Variant]:
    """Validate registry files and return their variants; raises before anything is registered."""
    variants: dict[str, Variant] = {}
    for path in paths:
        registry = load_registry(path)
        for index, entry in enumerate(registry.variants):
            if entry.base not in rules.rules:
                known = (
                    "unknown timm architecture" if not timm_adapter.is_builtin_model(entry.base) else "no rule covers"
                )
                raise RuleError(path, f"variants.{index}.base", f"{known} {entry.base!r}")
            for phi in entry.phis:  # sizes first: phi=100000 is an error here, never an OverflowError later
                try:
                    variant_resolution(entry.base, phi, rules)
                except CompoundError as error:
                    raise RuleError(path, f"variants.{index}.phis", str(error)) from None
            for phi, name in entry.names().items():
                field = f"variants.{index}.name"
                if name in _registered and _registered[name].source == str(path):
                    continue
                if name in _registered:
                    raise RuleError(path, field, f"{name!r} is already registered by {_registered[name].source}")
                if timm_adapter.is_model(name):
                    raise RuleError(path, field, f"{name!r} collides with an existing timm model name")
                if name in variants:
                    raise RuleError(path, field, f"{name!r} is also registered by {variants[name].source}")
                variants[name] = Variant(name, entry.base, phi, entry.hub.get(phi), str(path))
    return list(variants.values())


def lookup(name: str) -> tuple[str, float | None]:
    """A registered variant name -> (base, phi); a base -> (base, None)."""
    variant = _registered.get(name)
    if variant is not None:
        return variant.base, variant.phi
    if name in active_rules().rules:
        return name, None
    raise UnknownModelError(unknown_name_message(name))


def unknown_name_message(name: str) -> str:
    """What to say about a name that is neither registered nor a covered base: the closest names
    (a typo is the usual cause) and the bases that rules cover."""
    bases = sorted(active_rules().rules)
    close = difflib.get_close_matches(str(name), [*_registered, *bases], n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"{name!r} is neither a registered variant nor a base covered by a rule{hint} "
        f"(bases: {', '.join(bases)}; `timm-compound list` shows the registered variants)"
    )
