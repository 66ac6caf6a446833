"""Pydantic models for registry files: which scaled variants `import timm_compound` registers.

A name template may use only `{base}` and `{phi}` (no attribute or index lookups: a template is
data, not code), every name it makes must be a plain timm model name, phis are ints (not bools),
and Hub repo ids are `org/name`.
"""

from __future__ import annotations

import re
import string

from pydantic import Field, StrictInt, field_validator, model_validator

from timm_compound.scaling.schema import StrictModel

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class VariantSet(StrictModel):
    """Registered variants of one base: one timm name per phi."""

    base: str
    phis: list[StrictInt] = Field(min_length=1)
    name: str = Field("{base}_cs_phi{phi}", description="Name template with {base} and {phi}.")
    hub: dict[StrictInt, str] = Field(
        default_factory=dict, description="phi -> Hugging Face Hub repo id holding that variant's weights."
    )

    @field_validator("name")
    @classmethod
    def _template_names_each_phi(cls, name: str) -> str:
        try:
            fields = [
                (field, spec, conversion)
                for _, field, spec, conversion in string.Formatter().parse(name)
                if field is not None
            ]
        except ValueError as error:
            raise ValueError(f"name template {name!r} is not valid: {error}") from None
        for field, spec, conversion in fields:
            if field not in ("base", "phi") or spec or conversion:
                raise ValueError(
                    f"name template {name!r} is not valid: use {{base}} and {{phi}} only, "
                    f"got {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
                )
        return name

    @field_validator("hub")
    @classmethod
    def _repo_ids(cls, hub: dict[int, str]) -> dict[int, str]:
        for phi, repo in hub.items():
            if not _REPO_ID.match(repo) or ".." in repo:
                raise ValueError(f"hub.{phi}: {repo!r} is not a Hub repo id of the form org/name")
        return hub

    @field_validator("phis")
    @classmethod
    def _non_negative_unique(cls, phis: list[int]) -> list[int]:
        if any(phi < 0 for phi in phis):
            raise ValueError("registered phis must be >= 0")
        if len(set(phis)) != len(phis):
            raise ValueError("a phi is listed twice")
        return phis

    @model_validator(mode="after")
    def _names_are_model_names(self) -> VariantSet:
        for name in self.names().values():
            if not _NAME.match(name):
                raise ValueError(
                    f"{name!r} (from the name template) is not a timm model name: lower-case letters, digits and _ only"
                )
        return self

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
