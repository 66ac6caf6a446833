"""report.html: one self-contained page (figures embedded as data: URIs, no script, no network) with
the summary, the verdict and its paired comparisons, the figures, the table, the class activation
maps and every setting (defaults included); it opens from anywhere, the experiment folder or an
e-mail attachment."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from timm_compound.experiment import table
from timm_compound.experiment.results import Row

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; } .pair { display: flex; flex-wrap: wrap; gap: 1em; }
.pair figure { flex: 1 1 480px; } code, pre { background: #f6f6f6; } pre { padding: 0.8em; overflow-x: auto; }
"""
TEXT_COLUMNS = {table.COLUMNS.index(name) for name in table.TEXT}


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _figure(path: Path | None, alt: str, caption: str) -> str:
    if path is None:
        return ""
    return (
        f'<figure><img src="{data_uri(path)}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(rows: list[Row]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table.HEADERS)
    base = table.base_ms(rows)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=text' if i in TEXT_COLUMNS else ''}>{html.escape(cell)}</td>"
            for i, cell in enumerate(table.cells(row, base))
        )
        + "</tr>"
        for row in rows
    )
    timed = table.where(rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" + (
        "" if timed is None else f"<p>{html.escape(timed)}.</p>"
    )


def _comparisons(comparisons: list[Any]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table.COMPARISON_HEADERS)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=text' if i in (1, 2, 7, 8) else ''}>{html.escape(cell)}</td>"
            for i, cell in enumerate(table.comparison_cells(comparison))
        )
        + "</tr>"
        for comparison in comparisons
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(verdicts: list[str] | None, comparisons: list[Any] | None, note: str) -> str:
    if verdicts is None:
        return ""
    return (
        "<h2>Verdict</h2><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in verdicts)
        + "</ul>"
        + (_comparisons(comparisons) if comparisons else "")
        + f"<p>{html.escape(note)}</p>"
    )


def write(
    path: Path,
    *,
    title: str,
    summary: list[str],
    settings: dict[str, Any],
    rows: list[Row],
    figures: dict[str, Path],
    cam: Path | None,
    cam_note: str,
    verdicts: list[str] | None = None,
    comparisons: list[Any] | None = None,
    statistics_note: str = "",
    gmacs_caption: str | None = None,
    curves_caption: str | None = None,
) -> Path:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Summary</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary) + "</ul>",
        _verdict(verdicts, comparisons, statistics_note),
        "<h2>Accuracy against cost</h2><div class=pair>",
        _figure(
            figures.get("accuracy_vs_gmacs"),
            "top-1 accuracy against GMACs, one line per strategy",
            gmacs_caption
            or "Final top-1 against the real GMACs of each model as trained (log scale); dotted "
            "lines mark the budgets. Every strategy's line starts at the base; references are labelled stars.",
        ),
        _figure(
            figures.get("accuracy_vs_params"),
            "top-1 accuracy against parameters",
            "The same models against their parameter counts.",
        ),
        _figure(
            figures.get("accuracy_vs_latency"),
            "top-1 accuracy against measured latency",
            "The same models against their median latency measured on this machine (log scale; bars: the 95% "
            "interval). " + (table.where(rows) or ""),
        ),
        "</div><h2>Training curves</h2>",
        _figure(
            figures.get("curves"),
            "training loss and validation accuracy against epoch",
            curves_caption or "Training loss and validation top-1 of every model after each epoch.",
        ),
        "<h2>Table</h2>",
        _table(rows),
        "<p>d, w, r: realised multipliers against the base (total blocks, summed stage widths, pixels); "
        "x base: real GMACs over the base's; x base ms: median latency over the base's; training time: wall "
        "clock of all epochs, evaluation included.</p>",
        "<h2>Class activation maps</h2>",
        _figure(cam, "Grad-CAM maps, one row per model", cam_note)
        if cam is not None
        else f"<p>{html.escape(cam_note)}</p>",
        "<h2>Settings</h2>",
        "<p>Every setting, defaults included (training settings as every run received them; "
        "each run's seed is its own, listed in the table).</p>",
        f"<pre>{html.escape(json.dumps(settings, indent=2))}</pre>",
        "</body></html>",
    ]
    path.write_text("\n".join(part for part in parts if part) + "\n", encoding="utf-8")
    return path
