"""table.csv (exact numbers, for scripts) and table.md (rounded, for a README or a paper draft):
one row per model, the achieved GMACs beside the budget asked for, top-1 as the mean over the seeds
with its 95% interval and SD; table.md ends with the comparisons and the verdict per budget."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from timm_compound.experiment.results import Row

COLUMNS = ("run", "strategy", "budget", "d", "w", "r", "resolution", "depths", "params_m", "gmacs", "x_base",
           "top1", "top5", "train_seconds", "status") + ("seeds", "top1_ci_low", "top1_ci_high", "top1_sd")
HEADERS = ("run", "strategy", "budget", "d", "w", "r", "resolution", "depths", "params (M)", "GMACs", "x base",
           "top-1 (%)", "top-5 (%)", "training time", "status") + ("seeds", "top-1 95% CI", "top-1 SD")


def values(row: Row) -> dict[str, Any]:
    variant = row.variant
    return {
        "run": variant.name, "strategy": variant.strategy, "budget": variant.budget, "d": variant.d, "w": variant.w,
        "r": variant.r, "resolution": variant.resolution,
        "depths": None if variant.depths is None else " ".join(str(n) for n in variant.depths),
        "params_m": variant.cost.params / 1e6, "gmacs": variant.cost.macs / 1e9, "x_base": variant.ratio,
        "top1": row.top1, "top5": row.top5, "train_seconds": row.train_seconds, "status": row.status,
        **_spread_values(row),
    }


def _spread_values(row: Row) -> dict[str, Any]:
    """The seeds finished and top-1's 95% interval and SD over them (see experiment.verdicts)."""
    spread = row.spread
    ci = None if spread is None else spread.ci
    return {"seeds": len(row.finished), "top1_ci_low": None if ci is None else ci[0],
            "top1_ci_high": None if ci is None else ci[1], "top1_sd": None if spread is None else spread.sd}


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
        str(found["seeds"]), "–" if found["top1_ci_low"] is None else f"{found['top1_ci_low']:.2f}–{found['top1_ci_high']:.2f}",
        number("top1_sd", ".2f"),
    ]


def to_markdown(rows: list[Row]) -> str:
    left = {"run", "strategy", "depths", "status"}
    keys = [key for key in COLUMNS if key != "top1_ci_high"]   # the interval is one cell
    lines = ["| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---" if key in left else "--:" for key in keys) + "|"]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


COMPARISON_HEADERS = ("budget", "a", "b", "a - b (points)", "95% CI", "p", "p (Holm)", "significant", "test")


def comparison_cells(comparison: Any) -> list[str]:
    """One comparison (experiment.verdicts.Comparison) as the Markdown and HTML tables show it."""
    found = comparison.to_dict()

    def value(key: str, digits: str) -> str:
        return "–" if found[key] is None else format(found[key], digits)

    ci = "–" if found["diff_ci"] is None else f"{found['diff_ci'][0]:+.2f} to {found['diff_ci'][1]:+.2f}"
    return [f"{found['budget']:g}x", found["a"], found["b"], value("diff_mean", "+.2f"), ci, value("p", ".3g"),
            value("p_holm", ".3g"), "yes" if found["significant"] else "no", str(found["test"])]


def comparisons_markdown(comparisons: list[Any], verdicts: dict[float, str]) -> str:
    """The paired comparisons and the verdict per budget, for the end of table.md."""
    lines = ["", "Paired comparisons (a minus b on the same validation images and seeds; p Holm-corrected over "
             "all of them):", "", "| " + " | ".join(COMPARISON_HEADERS) + " |",
             "|---|---|---|--:|--:|--:|--:|---|---|"]
    lines += ["| " + " | ".join(comparison_cells(comparison)) + " |" for comparison in comparisons]
    if not comparisons:
        lines.append("| – | – | – | – | – | – | – | – | nothing to compare |")
    lines += ["", *(f"Verdict at {line}" for line in verdicts.values())]
    return "\n".join(lines) + "\n"


def write(rows: list[Row], folder: Path, comparisons: list[Any] | None = None,
          verdicts: dict[float, str] | None = None) -> dict[str, Path]:
    paths = {"table_csv": folder / "table.csv", "table_md": folder / "table.md"}
    paths["table_csv"].write_text(to_csv(rows), encoding="utf-8")
    markdown = to_markdown(rows)
    if comparisons is not None:
        markdown += comparisons_markdown(comparisons, verdicts or {})
    paths["table_md"].write_text(markdown, encoding="utf-8")
    return paths
