"""Rule and registry files from outside the package: `load_rules(path)` and TIMM_COMPOUND_RULES_PATH.

Precedence and collisions, all checked before anything changes:
- every architecture has exactly one rule: a user rule claiming an architecture that a shipped
  rule (or another user rule) covers is an error naming both files, unless it says
  `replaces: <that rule's family>`; then it takes those architectures over, and the variants
  already registered for them are registered again so their input sizes follow the new rule;
- every registered name is unique: a user registry name that timm, a shipped variant or another
  user registry already uses is an error;
- within one call, all rule files load before any registry file, so a registry may use a rule
  from the same folder; files load in path order, folders in file-name order.
"""

from __future__ import annotations

import os
from pathlib import Path

from timm_compound.errors import RuleError
from timm_compound.registry.register import refresh, register
from timm_compound.scaling.catalog import Variant, collect
from timm_compound.scaling.plan import check_resolves
from timm_compound.scaling.rulebook import (
    active_rules,
    load_rule,
    read_yaml,
    set_active_rules,
)

ENV_VAR = "TIMM_COMPOUND_RULES_PATH"


def _yaml_files(path: Path) -> list[Path]:
    """A file, or a folder's *.yaml then *.yml files by name; a folder that cannot be listed is an error
    naming it, never an empty list (which would silently load nothing)."""
    if path.is_dir():
        try:
            entries = sorted(path.iterdir())
        except OSError as error:
            raise RuleError(path, None, f"cannot read the folder: {error.strerror or error}") from None
        return [p for p in entries if p.suffix == ".yaml"] + [p for p in entries if p.suffix == ".yml"]
    if path.is_file():
        return [path]
    raise RuleError(path, None, "no such file or folder")


def load_rules(*paths: str | Path) -> list[Variant]:
    """Add rule files and register the variants of registry files (files or folders of YAML).

    All or nothing: on any error the active rules and timm's registry are left as they were.
    Returns the variants registered.
    """
    rule_files, registry_files = [], []
    for path in paths:
        for file in _yaml_files(Path(path)):
            (registry_files if "variants" in read_yaml(file) else rule_files).append(file)
    new_rules = [(load_rule(file), file) for file in rule_files]
    book = active_rules().extended(new_rules)
    for rule, _ in new_rules:
        check_resolves(rule, book)
    variants = collect(registry_files, book)
    register(variants, book)
    refresh(active_rules(), book)
    set_active_rules(book)
    return variants


def load_rules_from_env() -> list[Variant]:
    """Load the paths in TIMM_COMPOUND_RULES_PATH (os.pathsep-separated), if set."""
    value = os.environ.get(ENV_VAR, "")
    paths = [entry for entry in value.split(os.pathsep) if entry.strip()]
    if not paths:
        return []
    try:
        return load_rules(*paths)
    except RuleError as error:
        raise RuleError(error.source, error.field, f"{error.reason} (loaded from {ENV_VAR})") from None
