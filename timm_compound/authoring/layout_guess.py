"""Guessing a rule's layouts from a timm constructor's arguments, for `rules new`.

Each guess looks only at the shape of the values the entrypoint passes (and the class defaults):
lists of ints, timm's block_args, per-block rows, a marker-separated list, a config dataclass,
float multipliers. Whatever is a guess is said in `checks`, which `rules new` writes as `# CHECK:`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

DEPTH_NAMES = ("layers", "depths", "block_config", "num_blocks", "stage_blocks", "depth")
WIDTH_NAMES = ("channels", "dims", "embed_dims", "widths", "stage_channels", "num_chs", "embed_dim")
SCALAR_WIDTH_NAMES = ("growth_rate",)
STEM_NAMES = ("stem_size", "stem_width", "stem_chs", "num_init_features")
HEAD_NAMES = ("num_features", "head_hidden_size", "head_chs")
DEPTH_MULTIPLIERS = ("depth_mult", "depth_multiplier")
WIDTH_MULTIPLIERS = ("width_mult", "width_multiplier", "channel_multiplier", "width")
CONFIG_ARGS = ("model_cfg", "cfg")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 1 and all(map(_is_int, value))


def _block_args(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(stage, (list, tuple)) and all(isinstance(b, dict) for b in stage) for stage in value)
    )


def _rows(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 1
        and all(
            isinstance(stage, (list, tuple))
            and stage
            and all(
                isinstance(row, (list, tuple))
                and row
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
                for row in stage
            )
            for stage in value
        )
    )


def _marker(value: Any) -> Any | None:
    """The one repeated non-int item of a flat list of ints (VGG's 'M'), if there is one."""
    if not isinstance(value, (list, tuple)) or not any(map(_is_int, value)):
        return None
    others = [item for item in value if not _is_int(item)]
    if len(others) < 2 or not isinstance(others[0], str) or any(item != others[0] for item in others):
        return None
    return others[0]


def _runs(value: list, marker: Any) -> list[int]:
    runs, current = [], 0
    for item in value:
        if item == marker:
            runs.append(current)
            current = 0
        else:
            current += 1
    return [run for run in runs + [current] if run]


def _pick(args: dict[str, Any], names: tuple[str, ...], test) -> str | None:
    for name in names:
        if name in args and test(args[name]):
            return name
    return None


def layouts(args: dict[str, Any], checks: list[str]) -> tuple[dict, dict, list[int], str | None]:
    """(depth rule, width rule, base depths if known, a dataclass argument's name if one was used)."""
    if _block_args(args.get("block_args")):
        depths = [len(stage) for stage in args["block_args"]]
        return (
            {"arg": "block_args", "layout": "block_args"},
            {"arg": "block_args", "layout": "block_args"},
            depths,
            None,
        )

    multiplier = _pick(args, WIDTH_MULTIPLIERS, lambda v: isinstance(v, float))
    rows = next((name for name, value in args.items() if _rows(value)), None)
    if rows is not None:
        found = args[rows]
        width_columns = len(found[0][0])
        stride = next(
            (c for c in reversed(range(width_columns)) if all(row[c] in (1, 2) for stage in found for row in stage)),
            None,
        )
        depth = {"arg": rows, "layout": "rows"} | ({"stride_column": stride} if stride is not None else {})
        if multiplier:
            checks.append(f"width is the constructor's own `{multiplier}` multiplier; the rows could hold it instead")
            width = {"arg": multiplier, "layout": "multiplier"}
        else:
            growing = [
                c
                for c in range(width_columns)
                if c != stride
                and all(isinstance(stage[-1][c], int) for stage in found)
                and [stage[-1][c] for stage in found] == sorted(stage[-1][c] for stage in found)
            ]
            growing.sort(key=lambda c: found[-1][-1][c])
            width = {"arg": rows, "layout": "rows", "column": growing[0] if growing else 0}
            if len(growing) > 1:
                width["scale_columns"] = growing[1:]
            checks.append(
                f"rows: column {width['column']} guessed as the width column; check `column` and `scale_columns`"
            )
        return depth, width, [len(stage) for stage in found], None

    for name, value in args.items():
        marker = _marker(value)
        if marker is not None:
            separated = {"arg": name, "layout": "separated", "marker": marker}
            return separated, dict(separated), _runs(value, marker), None

    config = next((name for name in CONFIG_ARGS if dataclasses.is_dataclass(args.get(name))), None)
    if config is not None:
        fields = {f.name: getattr(args[config], f.name) for f in dataclasses.fields(args[config])}
        depth_field = next((n for n in ("depth", "depths", "num_blocks") if _is_int(fields.get(n))), None)
        width_fields = [n for n, v in fields.items() if re.fullmatch(r"w0|width|base_width|channels", n) and _is_int(v)]
        numbers = ", ".join(
            f"{n}={v}" for n, v in fields.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        checks.append(f"{config} is a {type(args[config]).__name__} ({numbers}): check which fields d and w scale")
        depth = {"arg": f"{config}.{depth_field or 'TODO'}", "layout": "fields"}
        width = {"arg": [f"{config}.{n}" for n in width_fields] or f"{config}.TODO", "layout": "fields"}
        return depth, width, [], config

    depth_multiplier = _pick(args, DEPTH_MULTIPLIERS, lambda v: isinstance(v, float))
    if depth_multiplier or multiplier:
        depth = {"arg": depth_multiplier or "TODO", "layout": "multiplier"}
        width = {"arg": multiplier or "TODO", "layout": "multiplier"}
        checks.append("the constructor takes float multipliers: the plan reads the stages back from a build")
        return depth, width, [], None

    depth_arg = _pick(args, DEPTH_NAMES, _int_list) or next((n for n, v in args.items() if _int_list(v)), None)
    width_arg = _pick(args, WIDTH_NAMES, _int_list)
    scalar_arg = None if width_arg else _pick(args, SCALAR_WIDTH_NAMES, _is_int)
    if depth_arg is None:
        checks.append("no list-of-int constructor argument found for the stage depths; set depth.arg")
    depth = {"arg": depth_arg or "TODO", "layout": "counts"}
    if width_arg:
        width = {"arg": width_arg, "layout": "list"}
    elif scalar_arg:
        width = {"arg": scalar_arg, "layout": "scalar"}
    else:
        width = {"arg": "TODO", "layout": "list"}
        checks.append("no constructor argument found for the stage widths; set width.arg and width.layout")
    return depth, width, list(args.get(depth_arg, [])) if depth_arg else [], None


def part_arg(
    args: dict[str, Any], config: str | None, names: tuple[str, ...], positive: bool
) -> tuple[str, int] | None:
    test = (lambda v: _is_int(v) and v > 0) if positive else _is_int
    found = _pick(args, names, test)
    if found:
        return found, args[found]
    if config is not None:
        fields = {f.name: getattr(args[config], f.name) for f in dataclasses.fields(args[config])}
        found = _pick(fields, names, test)
        if found:
            return f"{config}.{found}", fields[found]
    return None
