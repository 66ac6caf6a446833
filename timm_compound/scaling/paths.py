"""Paths into a constructor's arguments: `model_cfg.blocks.*.d`, `cfg.stage_out_chs`, `head_widths.0`.

A path is a constructor argument, then steps joined by dots: a name (a dataclass or named-tuple
field, a dict key), an index into a list or tuple (`2`, `-1`), `*` (every item of a list or tuple)
or a slice (`1:`, `:-1`, `2:5`: those items). With `*` or a slice the value read is a list of what
each selected item holds, and the value written is a list with one entry per selected item.

Nothing is changed in place: timm shares its configs between builds, so each container on the
way is rebuilt, a dataclass with `dataclasses.replace`, a named tuple with `_replace`, a tuple,
list or dict as a new one. A step that does not exist is a `PathError` naming the path walked so
far and what exists there; the caller (`layouts.base`) turns it into an error naming the rule file
and field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
STEP = rf"(?:{NAME}|-?[0-9]+|\*|-?[0-9]*:-?[0-9]*)"
PATTERN = rf"^{NAME}(\.{STEP})*$"
_PATH = re.compile(PATTERN)


class PathError(Exception):
    """A step of a path that the value does not have."""


def is_path(text: str) -> bool:
    return bool(_PATH.match(text))


def steps(path: str) -> list[str]:
    return path.split(".")


def fans_out(path: str) -> bool:
    """Does the path select several items (`*` or a slice), so its value is a list?"""
    return any(_selects_many(step) for step in steps(path)[1:])


def _selects_many(step: str) -> bool:
    return step == "*" or ":" in step


def _kind(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"a {type(value).__name__} dataclass"
    if _is_named_tuple(value):
        return f"a {type(value).__name__} named tuple"
    return f"{'an' if type(value).__name__[0] in 'aeiou' else 'a'} {type(value).__name__}"


def _is_named_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _names(value: Any) -> list[str] | None:
    """The names a name step may take here, or None when the value has no named parts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [f.name for f in dataclasses.fields(value)]
    if _is_named_tuple(value):
        return list(type(value)._fields)
    if isinstance(value, dict):
        return [str(key) for key in value]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _sequence(value: Any, walked: str, step: str) -> None:
    if not isinstance(value, (list, tuple)):
        raise PathError(
            f"{walked} is {_kind(value)} ({_short(value)}), not a list or tuple: `{step}` selects items of a sequence"
        )


def _selected(value: Any, step: str, walked: str) -> list[int]:
    """The indices `*` or a slice selects."""
    _sequence(value, walked, step)
    if step == "*":
        return list(range(len(value)))
    start, stop = (int(part) if part else None for part in step.split(":"))
    return list(range(len(value)))[slice(start, stop)]


def _index(value: Any, step: str, walked: str) -> int:
    _sequence(value, walked, step)
    index = int(step)
    if not -len(value) <= index < len(value):
        span = f"0-{len(value) - 1}" if value else "none"
        raise PathError(f"{walked} has {len(value)} items: index {index} is out of range (indices {span})")
    return index % len(value)


def _child(value: Any, step: str, walked: str) -> Any:
    """One name or index step."""
    if re.fullmatch(r"-?[0-9]+", step):
        if isinstance(value, dict) and int(step) in value:
            return value[int(step)]
        return value[_index(value, step, walked)]
    names = _names(value)
    if names is None:
        raise PathError(
            f"{walked} is {_kind(value)} ({_short(value)}), not a dataclass, named tuple or dict: "
            f"the path cannot reach {step!r}"
        )
    if step not in names:
        what = "keys" if isinstance(value, dict) else "fields"
        raise PathError(
            f"{walked} ({type(value).__name__}) has no {what[:-1]} {step!r}; its {what}: {', '.join(names) or 'none'}"
        )
    return value[step] if isinstance(value, dict) else getattr(value, step)


def read(value: Any, rest: list[str], walked: str) -> Any:
    """The value at the steps `rest` below `value` (a list per `*` or slice)."""
    if not rest:
        return value
    step, *deeper = rest
    if _selects_many(step):
        return [read(value[index], deeper, f"{walked}.{index}") for index in _selected(value, step, walked)]
    return read(_child(value, step, walked), deeper, f"{walked}.{step}")


def write(value: Any, rest: list[str], new: Any, walked: str) -> Any:
    """A copy of `value` whose steps `rest` hold `new` (a list per `*` or slice); nothing mutated."""
    if not rest:
        return new
    step, *deeper = rest
    if _selects_many(step):
        indices = _selected(value, step, walked)
        if not isinstance(new, (list, tuple)) or len(new) != len(indices):
            count = len(new) if isinstance(new, (list, tuple)) else "not a list"
            raise PathError(f"{walked}.{step} selects {len(indices)} items but {count} values were given")
        replaced = {index: write(value[index], deeper, item, f"{walked}.{index}") for index, item in zip(indices, new)}
        return _rebuilt(value, replaced, walked)
    if re.fullmatch(r"-?[0-9]+", step) and not (isinstance(value, dict) and int(step) in value):
        index = _index(value, step, walked)
        return _rebuilt(value, {index: write(value[index], deeper, new, f"{walked}.{step}")}, walked)
    child = _child(value, step, walked)
    key = int(step) if isinstance(value, dict) and step not in value and re.fullmatch(r"-?[0-9]+", step) else step
    return _rebuilt(value, {key: write(child, deeper, new, f"{walked}.{step}")}, walked)


def _rebuilt(value: Any, replaced: dict, walked: str) -> Any:
    """`value` with some of its items or fields replaced, as a new object of its own kind."""
    if isinstance(value, dict):
        return {**value, **replaced}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _call(lambda: dataclasses.replace(value, **replaced), value, walked, replaced)
    if _is_named_tuple(value):
        fields = type(value)._fields
        named = {fields[key] if isinstance(key, int) else key: item for key, item in replaced.items()}
        return _call(lambda: value._replace(**named), value, walked, named)
    if isinstance(value, (list, tuple)):
        items = list(value)
        for index, item in replaced.items():
            items[index] = item
        return (
            type(value)(items)
            if type(value) in (list, tuple)
            else _call(lambda: type(value)(items), value, walked, replaced)
        )
    raise PathError(f"{walked} is {_kind(value)}: the path cannot change it")


def _call(rebuild: Callable[[], Any], value: Any, walked: str, replaced: dict) -> Any:
    """Rebuild with the container's own constructor; its refusal names the path and the field."""
    try:
        return rebuild()
    except Exception as error:
        fields = ", ".join(f"{walked}.{key}={_short(item)}" for key, item in replaced.items())
        raise PathError(f"{_kind(value)} at {walked} refused {fields}: {type(error).__name__}: {error}") from None
