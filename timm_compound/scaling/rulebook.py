"""Loading rule and registry files: YAML (safe loader only) -> validated pydantic models."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from timm_compound.errors import RuleError, UnknownModelError, from_validation_error
from timm_compound.scaling.schema import RegistryFile, Rule


def shipped_dir(name: str) -> Path:
    """Folder of shipped YAML files (`rules` or `registry`): installed as timm_compound.data.<name>
    by a wheel or an editable install, or beside the package in a source checkout."""
    try:
        spec = importlib.util.find_spec(f"timm_compound.data.{name}")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    checkout = Path(__file__).resolve().parents[2] / name  # the repository root
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"timm_compound's {name}/ folder is not installed")


def read_yaml(path: Path) -> dict:
    """Parse one YAML mapping; a syntax error or a non-mapping names the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RuleError(path, None, f"cannot read: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RuleError(path, None, f"not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise RuleError(path, None, f"expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def load_rule(path: str | Path) -> Rule:
    path = Path(path)
    try:
        return Rule.model_validate(read_yaml(path))
    except ValidationError as error:
        raise from_validation_error(path, error) from None


def load_registry(path: str | Path) -> RegistryFile:
    path = Path(path)
    try:
        return RegistryFile.model_validate(read_yaml(path))
    except ValidationError as error:
        raise from_validation_error(path, error) from None


@dataclass
class RuleBook:
    """All loaded rules, indexed by the timm architecture each one covers."""

    rules: dict[str, tuple[Rule, Path]] = field(default_factory=dict)
    _applied: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def add(self, rule: Rule, source: Path) -> None:
        for index, arch in enumerate(rule.architectures):
            if arch in self.rules:
                _, other = self.rules[arch]
                raise RuleError(
                    source, f"architectures.{index}", f"{arch!r} is already covered by the rule in {other}"
                )
        for arch in rule.architectures:
            self.rules[arch] = (rule, source)

    def rule_for(self, base: str) -> tuple[Rule, Path]:
        """The rule covering `base`, as it applies to `base` (its `overrides` merged in)."""
        try:
            rule, source = self.rules[base]
        except KeyError:
            known = ", ".join(sorted(self.rules))
            raise UnknownModelError(f"no rule covers {base!r}; rules cover: {known}") from None
        if base not in self._applied:
            self._applied[base] = rule.for_architecture(base)
        return self._applied[base], source

    @classmethod
    def from_dir(cls, folder: Path) -> RuleBook:
        book = cls()
        for path in sorted(folder.glob("*.yaml")):
            book.add(load_rule(path), path)
        return book


    def extended(self, rules: list[tuple[Rule, Path]]) -> RuleBook:
        """A new book with more rules; raises, leaving this one unchanged, if any claim is taken."""
        book = RuleBook(dict(self.rules))
        for rule, source in rules:
            book.add(rule, source)
        return book


_shipped: RuleBook | None = None
_active: RuleBook | None = None


def shipped_rules() -> RuleBook:
    """The rules in the package's rules/ folder."""
    global _shipped
    if _shipped is None:
        _shipped = RuleBook.from_dir(shipped_dir("rules"))
    return _shipped


def active_rules() -> RuleBook:
    """Shipped rules plus the user rules loaded so far (load_rules, TIMM_COMPOUND_RULES_PATH)."""
    return _active or shipped_rules()


def set_active_rules(book: RuleBook) -> None:
    global _active
    _active = book
