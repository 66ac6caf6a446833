"""Errors a user can act on: each names the file and the field that is wrong."""

from __future__ import annotations

from pathlib import Path


class CompoundError(ValueError):
    """Base class for every error timm-compound raises on bad input."""


class RuleError(CompoundError):
    """A rule or registry file is invalid; the message names the file and the field."""

    def __init__(self, source: str | Path | None, field: str | None, message: str):
        self.source = str(source) if source is not None else None
        self.field = field or None
        self.reason = message
        where = ": ".join(part for part in (self.source, self.field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class UnknownModelError(CompoundError):
    """The name is neither a registered variant nor a base that a rule covers."""


def from_validation_error(source: str | Path | None, error) -> RuleError:
    """Turn a pydantic ValidationError into one RuleError listing each field path."""
    lines = []
    first_field = None
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "<root>"
        first_field = first_field or loc
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}")
    if len(lines) == 1:
        return RuleError(source, first_field, lines[0].split(": ", 1)[1])
    return RuleError(source, None, "invalid fields:\n  " + "\n  ".join(lines))


class CompoundWarning(UserWarning):
    """Something the user should know that does not stop the work (threads capped, a cache not written)."""


def without_unsafe_advice(message: str) -> str:
    """A library's error message without advice to load a file unsafely: torch's refusal of a pickle says
    to re-run `torch.load` with `weights_only=False`, which would run whatever code the file holds.
    What the safe loader objected to is kept."""
    if "weights_only" not in message:
        return message
    found = message.split("WeightsUnpickler error:", 1)
    detail = " ".join(found[1].split("Check the documentation")[0].split()) if len(found) == 2 else ""
    sentences = [
        s
        for s in message.replace("\n", " ").split(". ")
        if "weights_only" not in s
        and "trusted source" not in s
        and "PyTorch 2.6" not in s
        and "file an issue" not in s
        and s.strip()
    ]
    kept = ". ".join(s.strip() for s in sentences).strip()
    reason = detail or kept or "it holds more than tensors and plain data"
    return f"the file is a pickle that the safe loader refused ({reason}); timm-compound never unpickles code"
