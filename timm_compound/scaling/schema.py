"""Pydantic models for rule files and registry files.

The rule file is data: it says, for one architecture family, which constructor
arguments hold the per-stage depths and widths, how each multiplier is rounded,
and what happens to the parts a constructor cannot express. These models are
the schema (``model_json_schema()``), the validator and the in-memory form.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a rule must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Coefficients(StrictModel):
    """Compound coefficients: d = alpha**phi, w = beta**phi, r = gamma**phi."""

    alpha: float = Field(ge=1.0, description="Depth base; must be >= 1 so phi > 0 scales up.")
    beta: float = Field(ge=1.0, description="Width base; must be >= 1 so phi > 0 scales up.")
    gamma: float = Field(ge=1.0, description="Resolution base; must be >= 1 so phi > 0 scales up.")

    @property
    def flops_factor(self) -> float:
        """alpha * beta**2 * gamma**2: the FLOPs growth per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2


class Constraint(StrictModel):
    """alpha * beta**2 * gamma**2 must lie within `tolerance` (relative) of `flops_factor`."""

    flops_factor: float = Field(2.0, gt=1.0)
    tolerance: float = Field(0.05, ge=0.0, lt=1.0, description="Relative tolerance, 0.05 = 5%.")

    def check(self, coefficients: Coefficients) -> None:
        actual = coefficients.flops_factor
        if abs(actual / self.flops_factor - 1.0) > self.tolerance + 1e-12:
            raise ValueError(
                f"alpha*beta^2*gamma^2 = {actual:.4f} is outside {self.flops_factor} "
                f"± {self.tolerance:.0%} (alpha={coefficients.alpha}, beta={coefficients.beta}, "
                f"gamma={coefficients.gamma})"
            )


class DepthRule(StrictModel):
    """How d reaches the per-stage block counts."""

    arg: str = Field(description="Constructor argument holding the per-stage depths.")
    layout: Literal["counts", "block_args"] = Field(
        description="'counts': a list of ints (ResNet `layers`); 'block_args': timm's decoded "
        "arch_def, a list of stages each a list of block dicts (EfficientNet `block_args`)."
    )
    rounding: Literal["ceil", "round", "floor"] = "ceil"
    min: int = Field(1, ge=1, description="No stage gets fewer blocks than this.")
    fixed_stages: list[int] = Field(default_factory=list, description="Stage indices left unscaled.")


class WidthRule(StrictModel):
    """How w reaches the per-stage channel counts (timm's make_divisible policy)."""

    arg: str = Field(description="Constructor argument holding the per-stage widths.")
    layout: Literal["list", "scalar", "block_args"] = Field(
        description="'list': a list of ints, one per stage (ResNet `channels`); 'scalar': one int "
        "that sets every stage's width (DenseNet `growth_rate`); 'block_args': the `out_chs` of "
        "the blocks in each stage of timm's decoded arch_def."
    )
    divisor: int = Field(8, ge=1, description="Widths are rounded to a multiple of this.")
    round_limit: float = Field(
        0.9, gt=0.0, le=1.0, description="Round up one more divisor if rounding lost more than 1 - this."
    )
    min: int | None = Field(None, ge=1, description="Smallest width; defaults to the divisor.")
    fixed_stages: list[int] = Field(default_factory=list, description="Stage indices left unscaled.")

    @model_validator(mode="after")
    def _scalar_has_no_stages(self) -> WidthRule:
        if self.layout == "scalar" and self.fixed_stages:
            raise ValueError("layout 'scalar' is one width for all stages: fixed_stages cannot apply")
        return self


class PartRule(StrictModel):
    """Stem or head: scaled like a stage, fixed, or derived by the constructor from the stages."""

    policy: Literal["scale", "fixed", "derived"]
    arg: str | None = Field(None, description="Constructor argument holding this part's width.")
    value: int | None = Field(
        None, ge=0, description="Width of a fixed part that no constructor argument holds."
    )
    no_shrink: bool = Field(False, description="Never scale below the base width (MobileNetV2's head).")
    note: str | None = Field(None, description="Why: required for fixed parts without `arg` and derived parts.")

    @model_validator(mode="after")
    def _consistent(self) -> PartRule:
        if self.policy == "scale" and not self.arg:
            raise ValueError("policy 'scale' needs `arg`, the constructor argument to set")
        if self.policy == "fixed" and not self.arg and self.value is None:
            raise ValueError("policy 'fixed' needs `arg` (read from the constructor) or `value`")
        if self.policy in ("fixed", "derived") and not self.arg and not self.note:
            raise ValueError(f"policy '{self.policy}' without `arg` needs a `note` saying why")
        if self.policy == "derived" and (self.arg or self.value is not None):
            raise ValueError("policy 'derived' takes no `arg` or `value`: the constructor computes it")
        return self


class ResolutionRule(StrictModel):
    """How r reaches the input size."""

    base: int | None = Field(None, ge=8, description="Base input size; default: the base model's pretrained_cfg.")
    divisor: int = Field(8, ge=1)
    rounding: Literal["round", "ceil", "floor"] = "round"
    min: int = Field(32, ge=1)
    max: int | None = Field(None, ge=1, description="Cap; a capped plan says so (resolution_capped).")


class Schedule(StrictModel):
    """A constructor argument that changes linearly with phi (e.g. dropout: 0.2 at B0 to 0.5 at B7)."""

    start: float = Field(description="Value at phi = 0.")
    per_phi: float = Field(description="Added per unit of phi.")
    min: float | None = None
    max: float | None = None

    def at(self, phi: float) -> float:
        value = self.start + self.per_phi * phi
        if self.min is not None:
            value = max(self.min, value)
        if self.max is not None:
            value = min(self.max, value)
        return round(value, 6)


def _builtin_timm_model(name: str) -> str:
    from timm_compound.scaling import timm_adapter

    if not timm_adapter.is_builtin_model(name):
        raise ValueError(f"unknown timm architecture {name!r}")
    return name


TimmArchitecture = Annotated[str, AfterValidator(_builtin_timm_model)]


class Rule(StrictModel):
    """One architecture family's scaling rule."""

    schema_ref: str | None = Field(None, alias="$schema")
    family: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    architectures: list[TimmArchitecture] = Field(min_length=1, description="timm model names this rule applies to.")
    constraint: Constraint = Constraint()
    coefficients: Coefficients
    depth: DepthRule
    width: WidthRule
    stem: PartRule
    head: PartRule
    resolution: ResolutionRule = ResolutionRule()
    schedules: dict[str, Schedule] = Field(
        default_factory=dict, description="Constructor arguments set from phi (only when phi is given)."
    )
    stage_modules: str | list[str] | None = Field(
        None,
        description="Where the stages live in the built module, for verification: one path whose "
        "children are the stages ('blocks'), a path with '*' for each child ('stages.*.blocks'), "
        "or one path per stage (['layer1', ...]).",
    )

    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-architecture changes merged into this rule, e.g. "
        "{resnext50_32x4d: {width: {divisor: 16}}}; the merged rule must be valid.",
    )

    @field_validator("overrides")
    @classmethod
    def _overrides_make_valid_rules(cls, overrides: dict[str, dict[str, Any]], info: ValidationInfo):
        others = set(cls.model_fields) - {"overrides"}
        if not others <= set(info.data):  # other fields failed and report their own errors
            return overrides
        for arch, patch in overrides.items():
            if arch not in info.data["architectures"]:
                raise ValueError(f"{arch!r} is not one of this rule's architectures")
            if {"architectures", "overrides", "family"} & set(patch):
                raise ValueError(f"{arch}: overrides may not change family, architectures or overrides")
            merged = _deep_merge({**info.data, "architectures": [arch]}, patch)
            try:
                Rule.model_validate(_plain(merged))
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"{arch}.{where}: {first['msg']}") from None
        return overrides

    def for_architecture(self, arch: str) -> Rule:
        """This rule as it applies to `arch`: its override merged in, `architectures` = [arch]."""
        data = self.model_dump(by_alias=True, exclude={"overrides"})
        return Rule.model_validate(_deep_merge({**data, "architectures": [arch]}, self.overrides.get(arch, {})))

    @field_validator("architectures")
    @classmethod
    def _listed_once(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("an architecture is listed twice")
        return names

    @field_validator("coefficients")
    @classmethod
    def _coefficients_meet_constraint(cls, coefficients: Coefficients, info: ValidationInfo) -> Coefficients:
        constraint = info.data.get("constraint")
        if constraint is None:  # the constraint itself failed validation and reports its own error
            return coefficients
        constraint.check(coefficients)
        return coefficients

    def structural_args(self) -> set[str]:
        """Constructor arguments the plan owns; a user may not pass them as kwargs."""
        args = {self.depth.arg, self.width.arg}
        args.update(part.arg for part in (self.stem, self.head) if part.arg and part.policy == "scale")
        return args


class VariantSet(StrictModel):
    """Registered variants of one base: one timm name per phi."""

    base: str
    phis: list[int] = Field(min_length=1)
    name: str = Field("{base}_cs_phi{phi}", description="Name template with {base} and {phi}.")
    hub: dict[int, str] = Field(
        default_factory=dict, description="phi -> Hugging Face Hub repo id holding that variant's weights."
    )

    @field_validator("name")
    @classmethod
    def _template_names_each_phi(cls, name: str) -> str:
        try:
            name.format(base="b", phi=0)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"name template {name!r} is not valid: use {{base}} and {{phi}} only ({error})") from None
        return name

    @field_validator("phis")
    @classmethod
    def _non_negative_unique(cls, phis: list[int]) -> list[int]:
        if any(phi < 0 for phi in phis):
            raise ValueError("registered phis must be >= 0")
        if len(set(phis)) != len(phis):
            raise ValueError("a phi is listed twice")
        return phis

    @model_validator(mode="after")
    def _one_name_per_phi(self) -> VariantSet:
        if len(self.phis) > 1 and len(set(self.names().values())) < len(self.phis):
            raise ValueError(f"name template {self.name!r} must contain {{phi}}: several phis get one name")
        return self

    @model_validator(mode="after")
    def _hub_for_listed_phis(self) -> VariantSet:
        extra = sorted(set(self.hub) - set(self.phis))
        if extra:
            raise ValueError(f"hub lists phi {extra} that is not in phis")
        return self

    def names(self) -> dict[int, str]:
        return {phi: self.name.format(base=self.base, phi=phi) for phi in self.phis}


class RegistryFile(StrictModel):
    """A registry file: which scaled variants `import timm_compound` registers with timm."""

    schema_ref: str | None = Field(None, alias="$schema")
    variants: list[VariantSet] = Field(min_length=1)


def _plain(data: Any) -> Any:
    """Validated sub-models back to plain data, so a merged dict re-validates from scratch."""
    if isinstance(data, BaseModel):
        return data.model_dump(by_alias=True)
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    return data


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = {key: _plain(value) for key, value in base.items()}
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged



def json_schema(kind: Literal["rule", "registry"] = "rule") -> dict:
    """JSON Schema for rule or registry files, for editors (yaml-language-server) and validators."""
    model = Rule if kind == "rule" else RegistryFile
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{kind}.schema.json"
    return schema
