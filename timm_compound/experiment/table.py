"""table.csv (exact numbers, for scripts) and table.md (rounded, for a README or a paper draft):
one row per model, the achieved GMACs beside the budget asked for."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from timm_compound.experiment.results import Row

COLUMNS = ("run", "strategy", "budget", "d", "w", "r", "resolution", "depths", "params_m", "gmacs", "x_base",
           "top1", "top5", "train_seconds", "status")
HEADERS = ("run", "strategy", "budget", "d", "w", "r", "resolution", "depths", "params (M)", "GMACs", "x base",
           "top-1 (%)", "top-5 (%)", "training time", "status")


def values(row: Row) -> dict[str, Any]:
    variant = row.variant
    return {
        "run": variant.name, "strategy": variant.strategy, "budget": variant.budget, "d": variant.d, "w": variant.w,
        "r": variant.r, "resolution": variant.resolution,
        "depths": None if variant.depths is None else " ".join(str(n) for n in variant.depths),
        "params_m": variant.cost.params / 1e6, "gmacs": variant.cost.macs / 1e9, "x_base": variant.ratio,
        "top1": row.top1, "top5": row.top5, "train_seconds": row.train_seconds, "status": row.status,
    }


def to_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        found = values(row)
        writer.writerow(["" if found[key] is None else repr(found[key]) if isinstance(found[key], float) else found[key]
                         for key in COLUMNS])
    return buffer.getvalue()


def _seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def cells(row: Row) -> list[str]:
    """One row as the Markdown and HTML tables show it."""
    found = values(row)

    def number(key: str, digits: str) -> str:
        return "–" if found[key] is None else format(found[key], digits)

    return [
        found["run"], found["strategy"], "–" if found["budget"] is None else f"{found['budget']:g}x",
        number("d", ".2f"), number("w", ".2f"), number("r", ".2f"), f"{found['resolution']} px",
        found["depths"] or "–", number("params_m", ".2f"), number("gmacs", ".4g"), number("x_base", ".3f"),
        number("top1", ".2f"), number("top5", ".2f"), _seconds(found["train_seconds"]), found["status"],
    ]


def to_markdown(rows: list[Row]) -> str:
    left = {"run", "strategy", "depths", "status"}
    lines = ["| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---" if key in left else "--:" for key in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(rows: list[Row], folder: Path) -> dict[str, Path]:
    paths = {"table_csv": folder / "table.csv", "table_md": folder / "table.md"}
    paths["table_csv"].write_text(to_csv(rows), encoding="utf-8")
    paths["table_md"].write_text(to_markdown(rows), encoding="utf-8")
    return paths
