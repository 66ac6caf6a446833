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
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from timm_compound.scaling import paths


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a rule must not be silently ignored; so are .inf and .nan."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


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


# Layouts the plan reads back from a meta-device build: the constructor, not the rule, decides the stages.
DERIVED_LAYOUTS = ("multiplier", "fields")
ArgPath = Annotated[str, Field(pattern=paths.PATTERN)]  # model_cfg.blocks.*.d, head_widths.0


def _arg_paths(value: Any) -> Any:
    """One clear error for a malformed path, not one per member of the str | list union."""
    for path in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
        if isinstance(path, str) and not paths.is_path(path):
            raise ValueError(
                f"{path!r} is not an argument path: a constructor argument, then field names, keys, "
                "indices (2, -1), `*` or slices (1:) joined by dots (model_cfg.blocks.*.d)"
            )
    return value


def _cut_at_a_comma(data: Any, prose: tuple[str, ...], known) -> Any:
    """`{note: a, b}` is YAML for {note: a, 'b': null}: say so instead of 'extra inputs'."""
    if isinstance(data, dict) and any(key in data for key in prose):
        cut = [key for key, value in data.items() if key not in known and value is None]
        if cut:
            field = next(key for key in prose if key in data)
            raise ValueError(
                f"{cut[0]!r} looks like the rest of the {'reason' if field == 'fixed' else field}, "
                "cut at a comma: in an inline "
                f'{{...}} mapping a comma ends the value, so quote it: {field}: "..."'
            )
    return data


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
FIXED = (
    'A sentence saying why this dimension does not scale (`depth: {fixed: "..."}`). A fixed dimension '
    "takes no scaling policy, its coefficient must be 1, and a strategy that needs it is refused with this reason."
)


def _fixed_alone(rule: BaseModel, part: str, allowed: tuple[str, ...] = ()) -> bool:
    """`fixed` with nothing that scales the same dimension; True when the dimension is fixed."""
    if rule.fixed is None:
        return False
    # compared with the defaults, not the keys given: a dumped and re-validated rule holds every field
    policy = [
        name
        for name, info in type(rule).model_fields.items()
        if name not in ("fixed", *allowed) and getattr(rule, name) != info.get_default(call_default_factory=True)
    ]
    if policy:
        raise ValueError(
            f"`fixed` says {part} does not scale, but {' and '.join(policy)} "
            f"{'is a scaling policy' if len(policy) == 1 else 'are scaling policies'} for it: "
            "give one or the other"
        )
    return True


def _needs_policy(rule: DepthRule | WidthRule, part: str) -> None:
    missing = [name for name in ("arg", "layout") if getattr(rule, name) is None]
    if missing:
        raise ValueError(
            f'{part} needs {" and ".join(f"`{m}`" for m in missing)}, or `fixed: "why {part} does not scale"`'
        )


def _args(arg: str | list[str] | None) -> list[str]:
    return [] if arg is None else [arg] if isinstance(arg, str) else list(arg)


def _check_layout_fields(rule: DepthRule | WidthRule, owned: dict[str, tuple[str, ...]]) -> None:
    """Layout-specific fields only with their layout; several args only for the derived layouts."""
    for name, layouts in owned.items():
        value = getattr(rule, name)
        if value not in (None, []) and rule.layout not in layouts:
            raise ValueError(f"`{name}` applies to layout {' or '.join(repr(x) for x in layouts)}, not {rule.layout!r}")
    if isinstance(rule.arg, list) and rule.layout not in DERIVED_LAYOUTS:
        raise ValueError(f"layout {rule.layout!r} takes one `arg`; a list of args is for 'multiplier' and 'fields'")
    if rule.layout in DERIVED_LAYOUTS and rule.fixed_stages:
        raise ValueError(f"layout {rule.layout!r} lets the constructor decide the stages: fixed_stages cannot apply")
    if rule.layout == "separated" and rule.marker is None:
        raise ValueError("layout 'separated' needs `marker`, the list item that ends a stage (VGG: M)")


class DepthRule(StrictModel):
    """How d reaches the per-stage block counts, or `fixed` with why it does not."""

    fixed: Reason | None = Field(None, description=FIXED)
    arg: ArgPath | list[ArgPath] | None = Field(
        None,
        description="Constructor argument holding the depths; a path reaches inside it: fields, keys, indices, `*` "
        "(`model_cfg.blocks.*.d`); 'multiplier' and 'fields' take a list of paths too.",
    )
    layout: Literal["counts", "levels", "block_args", "rows", "separated", "entries", "multiplier", "fields"] | None = (
        Field(
            None,
            description="'counts': a list of ints (ResNet `layers`); 'levels': a list of tree levels, a stage of "
            "level L holding 2**L blocks (DLA `levels`), deepened a whole level at a time; 'block_args': timm's decoded arch_def, a list of "
            "stages each a list of block dicts (EfficientNet); 'rows': a list of stages each a list of rows of numbers "
            "(GhostNet `cfgs`); 'separated': a flat list whose `marker` ends each stage (VGG `cfg`); 'entries': a list of stages, each a "
            "list of one entry of any kind per block (MobileOne's ByoBlockCfg lists); 'multiplier': "
            "float multipliers the constructor applies itself (`depth_mult`), times d; 'fields': int or float fields "
            "(`model_cfg.depth`), ints rounded, floats times d. The last two read the built stages back.",
        )
    )
    rounding: Literal["ceil", "round", "floor"] = "ceil"
    min: int = Field(1, ge=1, description="No stage gets fewer blocks than this.")
    fixed_stages: list[int] = Field(default_factory=list, description="Stage indices left unscaled.")
    stride_column: int | None = Field(
        None, ge=0, description="'rows': the column holding a row's stride; added rows get stride 1."
    )
    marker: str | int | None = Field(None, description="'separated': the list item that ends a stage ('M').")
    period: int = Field(
        1,
        ge=1,
        description="Blocks come in groups of this many (MobileOne: a depthwise and a pointwise block): a "
        "stage's depth changes by whole groups, so a stage of n blocks gets period x rounding(n / period x d).",
    )

    @model_validator(mode="before")
    @classmethod
    def _reason_cut_at_a_comma(cls, data: Any) -> Any:
        return _cut_at_a_comma(data, ("fixed",), cls.model_fields)

    @field_validator("arg", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        return _arg_paths(value)

    @model_validator(mode="after")
    def _layout_fields(self) -> DepthRule:
        if _fixed_alone(self, "depth"):
            return self
        _needs_policy(self, "depth")
        _check_layout_fields(self, {"stride_column": ("rows",), "marker": ("separated",)})
        return self


class WidthRule(StrictModel):
    """How w reaches the per-stage channel counts (timm's make_divisible policy), or `fixed` with why it does not."""

    fixed: Reason | None = Field(None, description=FIXED)
    arg: ArgPath | list[ArgPath] | None = Field(
        None,
        description="Constructor argument holding the widths; a path reaches inside it: fields, keys, indices, `*` "
        "(`model_cfg.stage_out_chs`, `model_cfg.blocks.*.c`); 'multiplier' and 'fields' take a list of paths, "
        "all scaled by w.",
    )
    layout: Literal["list", "scalar", "block_args", "rows", "separated", "multiplier", "fields"] | None = Field(
        None,
        description="'list': a list of ints, one per stage (ResNet `channels`); 'scalar': one int "
        "that sets every stage's width (DenseNet `growth_rate`); 'block_args': the `out_chs` of "
        "the blocks in each stage of timm's decoded arch_def; 'rows': the `column` of each row (and the "
        "`scale_columns`); 'separated': the ints of a `marker`-separated list; 'multiplier' / 'fields': "
        "values times w (ints rounded as below), the built stages read back.",
    )
    divisor: int = Field(8, ge=1, description="Widths are rounded to a multiple of this.")
    round_limit: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Round up one more divisor if rounding lost more than 1 - this; 0 never rounds up "
        "(EfficientNetV2's round_channels(round_limit=0)).",
    )
    min: int | None = Field(None, ge=1, description="Smallest width; defaults to the divisor.")
    fixed_stages: list[int] = Field(default_factory=list, description="Stage indices left unscaled.")
    column: int | None = Field(None, ge=0, description="'rows': the column holding a row's output width.")
    scale_columns: list[int] = Field(
        default_factory=list,
        description="'rows': other columns scaled by w with the width column (GhostNet's expansion size).",
    )
    marker: str | int | None = Field(None, description="'separated': the list item that ends a stage ('M').")
    per_block: list[ArgPath] = Field(
        default_factory=list,
        description="'fields': fields that add width once per block (RegNet's slope `model_cfg.wa`), scaled "
        "by w/d so that d more blocks still end w times as wide.",
    )
    scale_with: list[ArgPath] = Field(
        default_factory=list,
        description="Other widths that scale by w beside the stages' (a stage's inner width, a block's input "
        "channels): each int rounded like a width (0 stays 0), floats multiplied, lists and tuples item by item.",
    )

    @model_validator(mode="before")
    @classmethod
    def _reason_cut_at_a_comma(cls, data: Any) -> Any:
        return _cut_at_a_comma(data, ("fixed",), cls.model_fields)

    @field_validator("arg", "scale_with", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        return _arg_paths(value)

    @model_validator(mode="after")
    def _layout_fields(self) -> WidthRule:
        if _fixed_alone(self, "width"):
            return self
        _needs_policy(self, "width")
        if self.layout == "scalar" and self.fixed_stages:
            raise ValueError("layout 'scalar' is one width for all stages: fixed_stages cannot apply")
        _check_layout_fields(
            self, {"column": ("rows",), "scale_columns": ("rows",), "marker": ("separated",), "per_block": ("fields",)}
        )
        overlap = sorted(set(_args(self.arg)) & set(self.per_block))
        if overlap:
            raise ValueError(f"{overlap} is in both `arg` (scaled by w) and `per_block` (scaled by w/d)")
        again = sorted(set(self.scale_with) & (set(_args(self.arg)) | set(self.per_block)))
        if again:
            raise ValueError(f"{again} is in `scale_with` and already scaled as `arg` or `per_block`")
        if self.layout == "rows" and self.column is None:
            raise ValueError("layout 'rows' needs `column`, the row column holding the width")
        return self


class StagePart(StrictModel):
    """One stage of a per-stage list whose blocks are not all its children (EfficientViT's attention
    stages start with a down-sampling block their depth does not count)."""

    path: str = Field(description="The module whose children are this stage's blocks ('stem', 'stages.2.blocks').")
    skip: list[str] = Field(default_factory=list, description="Class names of children that are not blocks.")
    blocks: list[str] = Field(default_factory=list, description="Only children of these class names are blocks.")
    nested: bool = Field(
        False,
        description="Count the `blocks` classes at any depth below the stage, not only its "
        "children (a stage built as a tree: DLA's DlaTree of DlaTrees).",
    )

    @model_validator(mode="after")
    def _one_way_to_count(self) -> StagePart:
        _one_way_to_count(self)
        return self


def _one_way_to_count(spec: StagePart | StageModules) -> None:
    if spec.skip and spec.blocks:
        raise ValueError("give `skip` or `blocks`, not both")
    if spec.nested and not spec.blocks:
        raise ValueError("`nested` counts the `blocks` classes below each stage: name them in `blocks`")


class StageModules(StrictModel):
    """Where the stages live, and which of their children are blocks."""

    path: str | list[str | StagePart] = Field(
        description="A path whose children are the stages ('blocks'), a path with a '*' pattern for each "
        "matching child ('stages.*.blocks', 's[0-9]*'), or one path per stage, each a path or "
        "{path, skip | blocks} counting only some of that stage's children."
    )
    skip: list[str] = Field(
        default_factory=list, description="Class names of children that are not blocks (EfficientFormer's Flat)."
    )
    blocks: list[str] = Field(
        default_factory=list, description="Only children of these class names are blocks (VGG: [Conv2d])."
    )
    split_at: str | None = Field(
        None,
        description="The path's children are one flat sequence and a child of this class name ends each stage "
        "(VGG's features: MaxPool2d).",
    )
    nested: bool = Field(
        False,
        description="Count the `blocks` classes at any depth below each stage, not only its "
        "children (stages built as trees: DLA's DlaTree of DlaTrees).",
    )

    @model_validator(mode="after")
    def _one_way_to_count(self) -> StageModules:
        _one_way_to_count(self)
        if self.split_at and self.nested:
            raise ValueError("`split_at` splits one flat sequence; `nested` counts below stage modules: not both")
        if self.split_at and not isinstance(self.path, str):
            raise ValueError("`split_at` splits the children of one path: `path` must be a single path")
        return self


class PartRule(StrictModel):
    """Stem or head: scaled like a stage, fixed, or derived by the constructor from the stages."""

    policy: Literal["scale", "fixed", "derived"]
    arg: ArgPath | None = Field(
        None, description="Constructor argument holding this part's width; a path reaches inside it (`head_widths.0`)."
    )
    value: int | None = Field(None, ge=0, description="Width of a fixed part that no constructor argument holds.")
    no_shrink: bool = Field(False, description="Never scale below the base width (MobileNetV2's head).")
    note: str | None = Field(None, description="Why: required for fixed parts without `arg` and derived parts.")

    @model_validator(mode="before")
    @classmethod
    def _note_cut_at_a_comma(cls, data: Any) -> Any:
        return _cut_at_a_comma(data, ("note",), cls.model_fields)

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
    """How r reaches the input size, or `fixed` with why it does not."""

    fixed: Reason | None = Field(None, description=FIXED)
    base: int | None = Field(None, ge=8, description="Base input size; default: the base model's pretrained_cfg.")
    divisor: int = Field(8, ge=1)
    rounding: Literal["round", "ceil", "floor"] = "round"
    min: int = Field(32, ge=1)
    max: int | None = Field(None, ge=1, description="Cap; a capped plan says so (resolution_capped).")

    @model_validator(mode="before")
    @classmethod
    def _reason_cut_at_a_comma(cls, data: Any) -> Any:
        return _cut_at_a_comma(data, ("fixed",), cls.model_fields)

    @model_validator(mode="after")
    def _fixed_alone(self) -> ResolutionRule:
        _fixed_alone(self, "resolution", allowed=("base", "min"))
        return self


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


STRATEGIES = ("compound", "dWr", "depth", "width", "resolution")
DWR_ALPHA = 0.8  # Dollar, Singh and Girshick 2021: 80% of the FLOPs growth to width


class Strategy(StrictModel):
    """What a FLOPs growth s = F**phi (F: the constraint's flops_factor) does to d, w and r.

    'compound': the coefficients (d = alpha**phi, ...); 'dWr': fast compound scaling, `alpha` of
    the growth to width and the rest shared by depth and resolution (d = s**((1-alpha)/2),
    w = s**(alpha/2), r = s**((1-alpha)/4)); 'depth', 'width', 'resolution': that dimension alone.
    """

    name: Literal["compound", "dWr", "depth", "width", "resolution"] = Field(
        "compound", description="compound (the coefficients), dWr (mostly width), or one dimension alone."
    )
    alpha: float | None = Field(
        None,
        description="dWr: the share of the FLOPs growth given to width, strictly between 0 and 1 "
        f"(default {DWR_ALPHA}); depth and resolution share the rest equally.",
        json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _alpha_for_dwr(self) -> Strategy:
        if self.alpha is not None and self.name != "dWr":
            raise ValueError(f"`alpha` is dWr's share of the growth given to width; strategy {self.name!r} takes none")
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise ValueError(
                f"dWr's alpha is the share of the FLOPs growth given to width: it must lie strictly "
                f"between 0 and 1, got {self.alpha:g}"
            )
        return self

    @property
    def share(self) -> float:
        """dWr's alpha, with the paper's default."""
        return DWR_ALPHA if self.alpha is None else self.alpha

    def label(self) -> str:
        return f"dWr (alpha={self.share:g})" if self.name == "dWr" else self.name


COEFFICIENT_OF = {"depth": "alpha", "width": "beta", "resolution": "gamma"}


def scaled_by(strategy: str) -> tuple[str, ...]:
    """The dimensions a strategy grows (compound: whichever its coefficients grow, checked apart)."""
    return {
        "dWr": ("depth", "width", "resolution"),
        "depth": ("depth",),
        "width": ("width",),
        "resolution": ("resolution",),
    }.get(strategy, ())


def _builtin_timm_model(name: str) -> str:
    from timm_compound.scaling import timm_adapter

    if not timm_adapter.is_builtin_model(name):
        raise ValueError(f"unknown timm architecture {name!r}")
    return name


TimmArchitecture = Annotated[str, AfterValidator(_builtin_timm_model)]
_MODULE_PATH = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"  # bn3, conv3.bn, ghost2.primary_conv.1, gamma


class InheritRule(StrictModel):
    """How a scaled model inherits its base's weights (`timm_compound.inherit`): what makes a new block the identity."""

    identity: list[Annotated[str, Field(pattern=_MODULE_PATH)]] = Field(
        min_length=1,
        description="Block-relative names, in order of preference: a submodule whose parameters are all zeroed "
        "(a residual block's last norm) or a parameter (a layer scale). A new block uses the first name it has, "
        "so [bn3, bn2] serves both ResNet blocks (a Bottleneck's last norm is bn3, a BasicBlock's bn2).",
    )
    resolution_params: list[Annotated[str, Field(pattern=_MODULE_PATH)]] = Field(
        default_factory=list,
        description="Parameters whose shape depends on the input resolution (position embeddings, relative "
        "attention biases), by name or name suffix: inheritance refuses a plan that changes the resolution of "
        "a model that has them.",
    )


NORMS = ("batch", "group", "layer", "proxy", "proxy-layer")
_CLASS_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class NormRule(StrictModel):
    """How a family's models take a batch-independent norm in place of batch norm (`norm=` on a plan)."""

    fixed: Reason | None = Field(
        None, description="Why this family keeps its own norm: a norm choice other than 'batch' is refused with it."
    )
    arg: ArgPath | None = Field(
        None,
        description="The constructor argument (or path into one) that takes the norm layer: norm_layer, model_cfg.norm_layer.",
    )
    takes: Literal["norm_act", "norm"] = Field(
        "norm_act",
        description="'norm_act': the model binds each norm to the activation after it (timm's get_norm_act_layer: "
        "EfficientNet, RegNet); 'norm': the model calls the norm alone and keeps activations as separate modules "
        "(ResNet), listed in `activations` for Proxy Norm.",
    )
    group_size: int = Field(16, ge=1, description="Channels per group for 'group' and 'proxy'.")
    fallback: Literal["error", "divisor"] = Field(
        "error",
        description="A layer whose channels group_size does not divide: 'error' refuses the model naming each such "
        "layer, 'divisor' uses the largest group size below group_size that divides it.",
    )
    activations: dict[Annotated[str, Field(pattern=_CLASS_NAME)], list[tuple[str, str]]] = Field(
        default_factory=dict,
        description="With takes: norm, per module class, the [norm, activation] children where the activation "
        "directly follows the norm ({BasicBlock: [[bn1, act1]]}): Proxy Norm takes that activation over. A norm "
        "not listed (one before a residual addition) stays a plain group or layer norm.",
    )

    @model_validator(mode="after")
    def _fixed_or_arg(self) -> NormRule:
        if self.fixed is not None and self.arg is not None:
            raise ValueError("`fixed` says the norm cannot change, but `arg` says where it goes: give one or the other")
        if self.fixed is None and self.arg is None:
            raise ValueError('norm needs `arg` (the constructor argument that takes the norm layer) or `fixed: "why"`')
        if self.activations and self.takes != "norm":
            raise ValueError("`activations` pairs norms with separate activation modules: it needs takes: norm")
        return self


class Rule(StrictModel):
    """One architecture family's scaling rule."""

    schema_ref: str | None = Field(None, alias="$schema")
    family: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    architectures: list[TimmArchitecture] = Field(min_length=1, description="timm model names this rule applies to.")
    constraint: Constraint = Constraint()
    coefficients: Coefficients
    strategy: Strategy = Field(
        Strategy(),
        description="What phi means for this rule: 'compound' (the coefficients, the default), 'dWr' "
        "(with `alpha`, the share of FLOPs growth to width) or one dimension alone; `dWr` or {name: dWr, alpha: 0.7}.",
    )
    depth: DepthRule
    width: WidthRule
    stem: PartRule
    head: PartRule
    resolution: ResolutionRule = ResolutionRule()
    schedules: dict[str, Schedule] = Field(
        default_factory=dict, description="Constructor arguments set from phi (only when phi is given)."
    )
    recipe: dict[Literal["drop_rate", "drop_path_rate"], Schedule] = Field(
        default_factory=dict,
        description="Training regularisation that grows with phi, applied by `train` (not by create_model) unless "
        "the run sets it: drop_rate (dropout before the classifier) and drop_path_rate (stochastic depth).",
    )
    stage_modules: str | list[str | StagePart] | StageModules | None = Field(
        None,
        validate_default=True,
        description="Where the stages live in the built module, to count their blocks: one path whose "
        "children are the stages ('blocks'), a path with a '*' pattern for each matching child "
        "('stages.*.blocks'), one path per stage (['layer1', ...]; an item may be {path, skip | blocks}), or "
        "{path, skip | blocks, split_at} when not every child of a stage is a block. Required by the "
        "'multiplier' and 'fields' layouts and by a fixed depth or width.",
    )
    replaces: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]+$",
        description="Family of a loaded (e.g. shipped) rule this rule takes over for the architectures it lists.",
    )

    inherit: InheritRule | None = Field(
        None,
        description="Growing a scaled model from its base's weights (timm_compound.inherit): how a new block "
        "starts as the identity. Without it the family cannot inherit.",
    )

    norm: NormRule | None = Field(
        None,
        description="Batch-independent norms (group, layer, proxy) in place of batch norm: where the model takes "
        "its norm layer. Without it a family keeps batch norm and refuses another norm.",
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

    @field_validator("recipe")
    @classmethod
    def _recipe_not_scheduled(cls, recipe: dict[str, Schedule], info: ValidationInfo) -> dict[str, Schedule]:
        both = sorted(set(recipe) & set(info.data.get("schedules") or {}))
        if both:
            raise ValueError(
                f"{', '.join(both)} is set both by schedules (at build) and by the recipe (in training): keep one"
            )
        return recipe

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

    @field_validator("depth", "width", "resolution")
    @classmethod
    def _fixed_dimension_does_not_scale(cls, policy: Any, info: ValidationInfo) -> Any:
        """A fixed dimension's coefficient is 1, and the rule's strategy may not need it."""
        part = info.field_name
        if policy.fixed is None:
            return policy
        coefficients, strategy = info.data.get("coefficients"), info.data.get("strategy")
        name = COEFFICIENT_OF[part]
        if coefficients is not None and getattr(coefficients, name) != 1.0:
            raise ValueError(
                f"{part} is fixed ({policy.fixed}), so coefficients.{name} must be 1, "
                f"got {getattr(coefficients, name):g}"
            )
        if strategy is not None and part in scaled_by(strategy.name):
            raise ValueError(f"strategy {strategy.label()} scales {part}, which this rule fixes: {policy.fixed}")
        return policy

    @field_validator("stem", "head")
    @classmethod
    def _scaled_parts_need_width(cls, part: PartRule, info: ValidationInfo) -> PartRule:
        width = info.data.get("width")
        if part.policy == "scale" and width is not None and width.fixed is not None:
            raise ValueError(f"policy 'scale' widens with w, but width is fixed ({width.fixed}): make it 'fixed'")
        return part

    @field_validator("width")
    @classmethod
    def _one_marker_per_list(cls, width: WidthRule, info: ValidationInfo) -> WidthRule:
        depth = info.data.get("depth")
        if (
            depth is not None
            and depth.layout == width.layout == "separated"
            and depth.arg == width.arg
            and depth.marker != width.marker
        ):
            raise ValueError(
                f"width.marker {width.marker!r} and depth.marker {depth.marker!r} split the same list differently"
            )
        return width

    @field_validator("stage_modules", mode="before")
    @classmethod
    def _stage_modules_form(cls, value: Any) -> Any:
        # one error from StageModules (or a stage's StagePart), not one per member of the union
        parts = (
            [(StageModules, value, "")]
            if isinstance(value, dict)
            else [(StagePart, item, f"{index}.") for index, item in enumerate(value) if isinstance(item, dict)]
            if isinstance(value, list)
            else []
        )
        checked = {}
        for model, item, prefix in parts:
            try:
                checked[id(item)] = model.model_validate(item)
            except ValidationError as error:
                first = error.errors()[0]
                where = prefix + ".".join(str(part) for part in first["loc"])
                raise ValueError(
                    f"{where.rstrip('.') + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"
                ) from None
        if isinstance(value, dict):
            return checked[id(value)]
        return [checked.get(id(item), item) for item in value] if isinstance(value, list) else value

    @field_validator("stage_modules")
    @classmethod
    def _read_back_needs_stages(cls, value: Any, info: ValidationInfo) -> Any:
        for part in ("depth", "width"):
            rule = info.data.get(part)
            if value is None and rule is not None and rule.layout in DERIVED_LAYOUTS:
                raise ValueError(f"{part}.layout {rule.layout!r} reads the built stages back: set stage_modules")
            if value is None and rule is not None and rule.fixed is not None:
                raise ValueError(f"{part} is fixed: the plan counts its stages in the built base, so set stage_modules")
        return value

    @field_validator("replaces")
    @classmethod
    def _replaces_another_family(cls, replaces: str | None, info: ValidationInfo) -> str | None:
        if replaces is not None and replaces == info.data.get("family"):
            raise ValueError(f"a rule that replaces {replaces!r} needs a family name of its own")
        return replaces

    def structural_args(self) -> set[str]:
        """Constructor arguments the plan owns (the first part of each path); a user may not pass them."""
        paths = _args(self.depth.arg) + _args(self.width.arg) + list(self.width.per_block) + list(self.width.scale_with)
        paths += [part.arg for part in (self.stem, self.head) if part.arg and part.policy == "scale"]
        return {path.split(".")[0] for path in paths}

    def fixed(self) -> dict[str, str]:
        """{dimension: why it does not scale} for the dimensions this rule fixes."""
        return {
            part: getattr(self, part).fixed
            for part in ("depth", "width", "resolution")
            if getattr(self, part).fixed is not None
        }


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
