"""`timm-compound rules validate FILE...`: is a file a rule or registry that would load?

A rule must meet the schema, its constructor arguments must exist with the right shapes, and it
must load beside the shipped rules: claiming an architecture a shipped rule covers is reported
(as `load_rules` would refuse it) unless the rule says `replaces: <that rule's family>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from timm_compound.errors import CompoundError
from timm_compound.scaling.rulebook import (
    RuleBook,
    active_rules,
    load_rule,
    read_yaml,
    shipped_rules,
)
from timm_compound.scaling.schema import Rule


def validate_file(path: str | Path, rules: list[tuple[Rule, Path]] = ()) -> Literal["rule", "registry"]:
    """Raise a RuleError naming the file and field if `path` would not load; else say what it is.

    A registry file is checked as loading checks it: every base a timm architecture that a rule
    covers (the loaded rules, plus `rules`: rule files validated beside it), every name new to timm.
    """
    path = Path(path)
    data = read_yaml(path)  # a file that is not YAML is refused before torch and timm are imported
    from timm_compound.scaling.catalog import collect
    from timm_compound.scaling.plan import check_resolves

    if "variants" in data:
        book = active_rules()
        loaded = {source.resolve() for _, source in book.rules.values()}
        collect([path], book.extended([(r, p) for r, p in rules if Path(p).resolve() not in loaded]))
        return "registry"
    rule = load_rule(path)
    check_resolves(rule, RuleBook.alone(rule, path))
    # beside the shipped rules; a shipped file validated as itself does not collide with itself
    others = {
        arch: (r, source) for arch, (r, source) in shipped_rules().rules.items() if source.resolve() != path.resolve()
    }
    RuleBook(others).extended([(rule, path)])
    return "rule"


def validate_files(paths: Iterable[str | Path]) -> list[tuple[Path, str | None, CompoundError | None]]:
    """(path, 'rule' or 'registry', None) or (path, None, the error) for each file, in the order given.

    Rule files are validated first, so a registry file may use a rule listed after it: `rules validate
    rules/*.yaml` lists `resnet-variants.yaml` before `resnet.yaml` (`-` sorts before `.`)."""
    paths = [Path(path) for path in paths]
    kinds: dict[Path, str] = {}
    found: dict[Path, tuple[str | None, CompoundError | None]] = {}
    for path in paths:
        try:
            kinds[path] = "registry" if "variants" in read_yaml(path) else "rule"
        except CompoundError as error:
            found[path] = (None, error)
    rules: list[tuple[Rule, Path]] = []
    for kind in ("rule", "registry"):
        for path in (p for p in paths if kinds.get(p) == kind and p not in found):
            try:
                found[path] = (validate_file(path, rules), None)
                if kind == "rule":
                    rules.append((load_rule(path), path))
            except CompoundError as error:
                found[path] = (None, error)
    return [(path, *found[path]) for path in paths]
