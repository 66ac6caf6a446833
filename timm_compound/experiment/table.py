"""table.csv (exact numbers, for scripts) and table.md (rounded, for a README or a paper draft):
one row per model, the achieved GMACs beside the budget asked for, each model's measured latency
(median and 95% interval) and throughput, and top-1 as the mean over the seeds with its 95% interval
and SD; table.md says under the table where the models were timed and ends with the comparisons and
the verdict per budget; table.csv repeats where they were timed on every row."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from timm_compound.experiment.results import Row

COLUMNS = (
    "run",
    "strategy",
    "budget",
    "d",
    "w",
    "r",
    "resolution",
    "depths",
    "params_m",
    "gmacs",
    "x_base",
    "latency_ms",
    "latency_interval",
    "throughput",
    "x_base_ms",
    "top1",
    "top5",
    "train_seconds",
    "status",
    "seeds",
    "top1_ci_low",
    "top1_ci_high",
    "top1_sd",
)
HEADERS = (
    "run",
    "strategy",
    "budget",
    "d",
    "w",
    "r",
    "resolution",
    "depths",
    "params (M)",
    "GMACs",
    "x base",
    "ms",
    "95% interval",
    "img/s",
    "x base ms",
    "top-1 (%)",
    "top-5 (%)",
    "training time",
    "status",
    "seeds",
    "top-1 95% CI",
    "top-1 SD",
)
TEXT = ("run", "strategy", "depths", "status")
# table.csv only: where each latency was timed, on its own row (the Markdown and HTML tables say it once)
CSV_ONLY = (
    "latency_low_ms",
    "latency_high_ms",
    "latency_device",
    "latency_threads",
    "latency_batch_size",
    "latency_dtype",
    "latency_runtime",
)


def values(row: Row, base_ms: float | None = None) -> dict[str, Any]:
    """A row's numbers by column (`base_ms`: the base's median latency, for `x_base_ms`)."""
    variant = row.variant
    found = {
        "run": variant.name,
        "strategy": variant.strategy,
        "budget": variant.budget,
        "d": variant.d,
        "w": variant.w,
        "r": variant.r,
        "resolution": variant.resolution,
        "depths": None if variant.depths is None else " ".join(str(n) for n in variant.depths),
        "params_m": variant.cost.params / 1e6,
        "gmacs": variant.cost.macs / 1e9,
        "x_base": variant.ratio,
        "top1": row.top1,
        "top5": row.top5,
        "train_seconds": row.train_seconds,
        "status": row.status,
        **_spread_values(row),
    }
    found.update(dict.fromkeys(("latency_ms", "latency_interval", "throughput", "x_base_ms", *CSV_ONLY)))
    timing = variant.latency
    if timing is not None:
        low, high = timing.ci_ms
        found.update(
            latency_ms=timing.median_ms,
            latency_interval=f"{low:.4g}-{high:.4g}",
            throughput=timing.throughput,
            x_base_ms=timing.median_ms / base_ms if base_ms else None,
            latency_low_ms=low,
            latency_high_ms=high,
            latency_device=f"{timing.device} ({timing.device_name})",
            latency_threads=timing.threads,
            latency_batch_size=timing.batch_size,
            latency_dtype=timing.dtype,
            latency_runtime=timing.runtime,
        )
    return found


def base_ms(rows: list[Row]) -> float | None:
    """The base's median latency: what `x base ms` divides by (None when the base was not timed or not trained)."""
    found = next((row.variant.latency for row in rows if row.variant.strategy == "base"), None)
    return None if found is None else found.median_ms


def where(rows: list[Row]) -> str | None:
    """'ms: median latency ... timed on cpu (AMD EPYC), 1 thread, batch 1, ...': said with every latency table."""
    timing = next((row.variant.latency for row in rows if row.variant.latency is not None), None)
    if timing is None:
        return None
    threads = f"{timing.threads} thread" + ("s" if timing.threads != 1 else "")
    capped = sum(not row.variant.latency.converged for row in rows if row.variant.latency is not None)
    return (
        f"ms: median latency of a forward pass with its 95% interval, img/s: inference throughput, timed on "
        f"{timing.device} ({timing.device_name}), {threads}, batch {timing.batch_size}, {timing.dtype}, "
        f"{timing.runtime}, each model at its own input size and class count"
        + (
            f"; {capped} timing(s) stopped by the {timing.max_seconds:g} s cap before the interval was within "
            f"{timing.precision:.0%}"
            if capped
            else ""
        )
    )


def _spread_values(row: Row) -> dict[str, Any]:
    """The seeds finished and top-1's 95% interval and SD over them (see experiment.verdicts)."""
    spread = row.spread
    ci = None if spread is None else spread.ci
    return {
        "seeds": len(row.finished),
        "top1_ci_low": None if ci is None else ci[0],
        "top1_ci_high": None if ci is None else ci[1],
        "top1_sd": None if spread is None else spread.sd,
    }


def to_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((*COLUMNS, *CSV_ONLY))
    reference = base_ms(rows)
    for row in rows:
        found = values(row, reference)
        writer.writerow(
            [
                "" if found[key] is None else repr(found[key]) if isinstance(found[key], float) else found[key]
                for key in (*COLUMNS, *CSV_ONLY)
            ]
        )
    return buffer.getvalue()


def _seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def cells(row: Row, base: float | None = None) -> list[str]:
    """One row as the Markdown and HTML tables show it (`base`: the base's median ms, for `x base ms`)."""
    found = values(row, base)

    def number(key: str, digits: str) -> str:
        return "–" if found[key] is None else format(found[key], digits)

    return [
        found["run"],
        found["strategy"],
        "–" if found["budget"] is None else f"{found['budget']:g}x",
        number("d", ".2f"),
        number("w", ".2f"),
        number("r", ".2f"),
        f"{found['resolution']} px",
        found["depths"] or "–",
        number("params_m", ".2f"),
        number("gmacs", ".4g"),
        number("x_base", ".3f"),
        number("latency_ms", ".4g"),
        found["latency_interval"] or "–",
        number("throughput", ".4g"),
        number("x_base_ms", ".3f"),
        number("top1", ".2f"),
        number("top5", ".2f"),
        _seconds(found["train_seconds"]),
        found["status"],
        str(found["seeds"]),
        "–" if found["top1_ci_low"] is None else f"{found['top1_ci_low']:.2f}–{found['top1_ci_high']:.2f}",
        number("top1_sd", ".2f"),
    ]


def to_markdown(rows: list[Row]) -> str:
    keys = [key for key in COLUMNS if key != "top1_ci_high"]  # the interval is one cell
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" if key in TEXT else "--:" for key in keys) + "|"]
    reference = base_ms(rows)
    lines += ["| " + " | ".join(cells(row, reference)) + " |" for row in rows]
    timed = where(rows)
    if timed is not None:
        lines += ["", timed]
    return "\n".join(lines) + "\n"


COMPARISON_HEADERS = ("budget", "a", "b", "a - b (points)", "95% CI", "p", "p (Holm)", "significant", "test")


def comparison_cells(comparison: Any) -> list[str]:
    """One comparison (experiment.verdicts.Comparison) as the Markdown and HTML tables show it."""
    found = comparison.to_dict()

    def value(key: str, digits: str) -> str:
        return "–" if found[key] is None else format(found[key], digits)

    ci = "–" if found["diff_ci"] is None else f"{found['diff_ci'][0]:+.2f} to {found['diff_ci'][1]:+.2f}"
    return [
        f"{found['budget']:g}x",
        found["a"],
        found["b"],
        value("diff_mean", "+.2f"),
        ci,
        value("p", ".3g"),
        value("p_holm", ".3g"),
        "yes" if found["significant"] else "no",
        str(found["test"]),
    ]


def comparisons_markdown(comparisons: list[Any], verdicts: dict[float, str]) -> str:
    """The paired comparisons and the verdict per budget, for the end of table.md."""
    lines = [
        "",
        "Paired comparisons (a minus b on the same validation images and seeds; p Holm-corrected over all of them):",
        "",
        "| " + " | ".join(COMPARISON_HEADERS) + " |",
        "|---|---|---|--:|--:|--:|--:|---|---|",
    ]
    lines += ["| " + " | ".join(comparison_cells(comparison)) + " |" for comparison in comparisons]
    if not comparisons:
        lines.append("| – | – | – | – | – | – | – | – | nothing to compare |")
    lines += ["", *(f"Verdict at {line}" for line in verdicts.values())]
    return "\n".join(lines) + "\n"


def write(
    rows: list[Row], folder: Path, comparisons: list[Any] | None = None, verdicts: dict[float, str] | None = None
) -> dict[str, Path]:
    paths = {"table_csv": folder / "table.csv", "table_md": folder / "table.md"}
    paths["table_csv"].write_text(to_csv(rows), encoding="utf-8")
    markdown = to_markdown(rows)
    if comparisons is not None:
        markdown += comparisons_markdown(comparisons, verdicts or {})
    paths["table_md"].write_text(markdown, encoding="utf-8")
    return paths
