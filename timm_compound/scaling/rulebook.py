"""Loading rule and registry files: YAML (safe loader only) -> validated pydantic models."""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError

from timm_compound.errors import RuleError, UnknownModelError, from_validation_error
from timm_compound.scaling.registry_file import RegistryFile
from timm_compound.scaling.schema import Rule


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


MAX_YAML_BYTES = 1_000_000  # rule and registry files are a few kilobytes
MAX_YAML_NODES = 100_000  # after expanding aliases: a "billion laughs" file is refused, not expanded
MAX_YAML_DEPTH = 64


def read_yaml(path: Path) -> dict:
    """Parse one YAML mapping with the safe loader; anything that is not a readable, reasonably sized
    UTF-8 YAML mapping is a RuleError naming the file (never a RecursionError or UnicodeDecodeError)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise RuleError(path, None, f"cannot read: {error.strerror or error}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise RuleError(
            path, None, f"{len(raw):,} bytes: larger than any rule or registry file ({MAX_YAML_BYTES:,} bytes at most)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RuleError(path, None, f"not valid YAML/UTF-8: byte {error.start} is not UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_size(node)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RuleError(path, None, f"not valid YAML{where}: {problem}{_quote_hint(text, mark, problem)}") from None
    except (RecursionError, _TooLarge) as error:
        raise RuleError(
            path, None, f"not valid YAML/UTF-8: {error if isinstance(error, _TooLarge) else 'nested too deeply'}"
        ) from None
    if not isinstance(data, dict):
        raise RuleError(path, None, f"expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def _quote_hint(text: str, mark, problem: str) -> str:
    """A `[` or `: ` inside an unquoted value (a note, a reason, a path written with brackets) is YAML
    syntax there: say which value to quote, and how."""
    if mark is None or not (
        "but got '['" in problem or "but got ':'" in problem or "mapping values are not allowed" in problem
    ):
        return ""
    line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
    key = line[: mark.column].rsplit(",", 1)[-1].rsplit("{", 1)[-1].split(":", 1)[0].strip() or "the value"
    if key == "arg":
        return f"; in `{line.strip()}` a path writes an index as .2, not [2] (model_cfg.blocks.2.d)"
    return (
        f"; in `{line.strip()}` the value of {key} holds a `[` or `: `, which YAML reads as syntax: "
        f'quote the whole value ({key}: "...")'
    )


class _TooLarge(Exception):
    pass


def _check_size(root: yaml.Node | None) -> None:
    """Count nodes as the loader would expand them (an alias counts its whole target again)."""
    if root is None:
        return
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            raise _TooLarge(f"nested more than {MAX_YAML_DEPTH} levels deep")
        if id(node) in sizes:
            return sizes[id(node)]
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item, depth + 1) for item in node.value)
        else:
            total = 1
        if total > MAX_YAML_NODES:
            raise _TooLarge(f"more than {MAX_YAML_NODES:,} values once aliases are expanded")
        sizes[id(node)] = total
        return total

    size(root, 0)


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
        """Cover `rule`'s architectures. An architecture another rule covers is an error naming both
        files, unless `rule.replaces` names that rule's family: then `rule` takes it over."""
        families = self.families()
        if rule.replaces is not None and rule.replaces not in families:
            known = ", ".join(sorted(families)) or "none"
            raise RuleError(source, "replaces", f"no loaded rule has family {rule.replaces!r} (loaded: {known})")
        taken_over = []
        for index, arch in enumerate(rule.architectures):
            if arch not in self.rules:
                continue
            other_rule, other = self.rules[arch]
            if rule.replaces is not None and other_rule.family == rule.replaces:
                taken_over.append(arch)
                continue
            hint = ""
            if rule.replaces is None:
                own = " and a family name of its own" if other_rule.family == rule.family else ""
                hint = f"; to use this rule instead, give it `replaces: {other_rule.family}`{own}"
            raise RuleError(
                source, f"architectures.{index}", f"{arch!r} is already covered by the rule in {other}{hint}"
            )
        if rule.replaces is not None and not taken_over:
            _, other = families[rule.replaces]
            raise RuleError(
                source,
                "replaces",
                f"the {rule.replaces!r} rule ({other}) covers none of "
                f"{rule.architectures}: there is nothing to replace",
            )
        for arch in rule.architectures:
            self.rules[arch] = (rule, source)
            self._applied.pop(arch, None)

    def families(self) -> dict[str, tuple[Rule, Path]]:
        """family -> (rule, file) of the rules that cover an architecture (`replaces` takes over the
        architectures of every rule of its family)."""
        return {rule.family: (rule, source) for rule, source in self.rules.values()}

    def rule_for(self, base: str) -> tuple[Rule, Path]:
        """The rule covering `base`, as it applies to `base` (its `overrides` merged in)."""
        try:
            rule, source = self.rules[base]
        except KeyError:
            known = ", ".join(sorted(self.rules))
            close = difflib.get_close_matches(str(base), list(self.rules), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownModelError(f"no rule covers {base!r}{hint} (rules cover: {known})") from None
        if base not in self._applied:
            self._applied[base] = rule.for_architecture(base)
        return self._applied[base], source

    @classmethod
    def alone(cls, rule: Rule, source: Path) -> RuleBook:
        """A book holding only `rule` (its `replaces` ignored): to plan and check a rule by itself."""
        return cls(dict.fromkeys(rule.architectures, (rule, source)))

    @classmethod
    def from_dir(cls, folder: Path) -> RuleBook:
        book = cls()
        for path in sorted(folder.glob("*.yaml")):
            book.add(load_rule(path), path)
        return book

    def extended(self, rules: list[tuple[Rule, Path]]) -> RuleBook:
        """A new book with more rules; raises, leaving this one unchanged, if any claim is taken
        (and not taken over with `replaces`)."""
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


def json_schema(kind: Literal["rule", "registry"] = "rule") -> dict:
    """JSON Schema for rule or registry files, for editors (yaml-language-server) and validators."""
    model = Rule if kind == "rule" else RegistryFile
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{kind}.schema.json"
    return schema
