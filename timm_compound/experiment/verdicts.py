"""What an experiment can claim: each model's top-1 with its interval, the paired comparisons that
answer its question, corrected for their number, and one sentence per budget a person reads.

The comparisons (`pairs`): at each budget, compound against each single-dimension strategy; and
every reference against the variant nearest its real cost (the compound one when compound was
trained: "is a compound-scaled base as good as this model?"; else the nearest of any strategy, or
the base). `a` is always the scaled variant, so `diff_mean` > 0 says the variant is better. Each is
a paired test on the same validation images and the same seeds (`timm_compound.train.statistics`),
and Holm's correction runs over every comparison of the experiment together; `significant` is the
corrected p below 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from timm_compound.experiment.results import BASE, REFERENCE, Row
from timm_compound.train.statistics import ALPHA, Paired, chance_rate, holm, p_text, paired, points, spread

SINGLE = ("depth", "width", "resolution")


@dataclass(frozen=True)
class Comparison:
    """a minus b (run names) at `budget`: the paired test's result, or `note` saying why there is none."""

    budget: float
    a: str
    b: str
    result: Paired | None
    p_holm: float | None = None
    note: str | None = None

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA

    def to_dict(self) -> dict[str, Any]:
        found = self.result
        return {
            "budget": self.budget,
            "a": self.a,
            "b": self.b,
            "diff_mean": None if found is None else found.diff_mean,
            "diff_ci": None if found is None else list(found.diff_ci),
            "p": None if found is None else found.p,
            "p_holm": self.p_holm,
            "significant": self.significant,
            "test": found.test if found is not None else self.note,
            "seeds": None if found is None else found.seeds,
            "images": None if found is None else found.images,
            "diff_per_seed": None if found is None else found.per_seed,
        }


def set_spreads(rows: list[Row]) -> None:
    """Each row's top-1 over its finished seeds, with its interval (one seed: the binomial one over images)."""
    for row in rows:
        finished = row.finished
        if not finished:
            row.spread = None
            continue
        single = finished[0].images.correct if len(finished) == 1 and finished[0].images is not None else None
        row.spread = spread([run.top1 for run in finished], single)


def pairs(rows: list[Row]) -> list[tuple[float, Row, Row]]:
    """(budget, a, b) for every comparison the experiment's question asks (see the module docstring)."""
    found = []
    budgets = sorted({row.variant.budget for row in rows if row.variant.strategy not in (BASE, REFERENCE)})
    for budget in budgets:
        column = {row.variant.strategy: row for row in rows if row.variant.budget == budget}
        if "compound" in column:
            found += [(budget, column["compound"], column[name]) for name in SINGLE if name in column]
    scaled = [row for row in rows if row.variant.strategy not in (BASE, REFERENCE)]
    compound = [row for row in scaled if row.variant.strategy == "compound"]
    candidates = compound or scaled or [row for row in rows if row.variant.strategy == BASE]
    for reference in (row for row in rows if row.variant.strategy == REFERENCE):
        if not candidates:
            break
        nearest = min(candidates, key=lambda row: abs(math.log(row.variant.cost.macs / reference.variant.cost.macs)))
        found.append((nearest.variant.budget, nearest, reference))
    return found


def _matrix(row: Row, seeds: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """(image positions, seeds x images 0/1) of `row`'s runs with these seeds, or None if one lacks them."""
    by_seed = {run.seed: run for run in row.finished}
    if any(seed not in by_seed or by_seed[seed].images is None for seed in seeds):
        return None
    images = by_seed[seeds[0]].images.images
    if any(not np.array_equal(by_seed[seed].images.images, images) for seed in seeds):
        return None
    return images, np.stack([by_seed[seed].images.correct for seed in seeds])


def compare(rows: list[Row]) -> list[Comparison]:
    """Every comparison of `pairs`, tested on the seeds both models finished, Holm-corrected together."""
    tested: list[Comparison] = []
    for budget, a, b in pairs(rows):
        seeds = sorted({run.seed for run in a.finished} & {run.seed for run in b.finished})
        if not seeds:
            tested.append(
                Comparison(
                    budget, a.variant.name, b.variant.name, None, note="not compared: no seed finished for both models"
                )
            )
            continue
        left, right = _matrix(a, seeds), _matrix(b, seeds)
        if left is None or right is None:
            tested.append(
                Comparison(
                    budget,
                    a.variant.name,
                    b.variant.name,
                    None,
                    note="not compared: a run has no per-image results (predictions.csv)",
                )
            )
            continue
        if not np.array_equal(left[0], right[0]):
            tested.append(
                Comparison(
                    budget,
                    a.variant.name,
                    b.variant.name,
                    None,
                    note="not compared: the two models were evaluated on different images",
                )
            )
            continue
        tested.append(Comparison(budget, a.variant.name, b.variant.name, paired(left[1], right[1])))
    adjusted = holm([None if c.result is None else c.result.p for c in tested])
    return [Comparison(c.budget, c.a, c.b, c.result, p_holm, c.note) for c, p_holm in zip(tested, adjusted)]


def _name(row: Row) -> str:
    if row.variant.strategy == REFERENCE:
        return str(row.variant.model)
    if row.variant.strategy == BASE:
        return "the base"
    return row.variant.strategy


def _clause(comparison: Comparison, names: dict[str, Row]) -> str:
    a, b = _name(names[comparison.a]), _name(names[comparison.b])
    found = comparison.result
    if found is None:
        return f"{a} and {b} {comparison.note}"
    seeds = f"{found.seeds} seed{'s' if found.seeds != 1 else ''}"
    if comparison.significant:
        low, high = found.diff_ci
        winner, loser, diff, low, high = (
            (a, b, found.diff_mean, low, high) if found.diff_mean > 0 else (b, a, -found.diff_mean, -high, -low)
        )
        return (
            f"{winner} beats {loser} by {points(diff)} points (95% CI {points(low)} to {points(high)}, "
            f"{p_text(comparison.p_holm)}, {seeds})"
        )
    return (
        f"no significant difference between {a} and {b} ({points(found.diff_mean)} points, "
        f"95% CI {points(found.diff_ci[0])} to {points(found.diff_ci[1])}, {p_text(comparison.p_holm)}, {seeds})"
    )


def seed_spread(rows: list[Row]) -> float | None:
    """The models' seed-to-seed standard deviation, pooled (root mean of their variances), in points."""
    values = [row.spread.sd for row in rows if row.spread is not None and row.spread.sd is not None]
    return math.sqrt(sum(value**2 for value in values) / len(values)) if values else None


def verdicts(rows: list[Row], comparisons: list[Comparison]) -> dict[float, str]:
    """One sentence per budget: what its comparisons found (p-values Holm-corrected), and the seed spread."""
    names = {row.variant.name: row for row in rows}
    found = {}
    budgets = sorted(
        {row.variant.budget for row in rows if row.variant.strategy not in (BASE, REFERENCE)}
        | {c.budget for c in comparisons}
    )
    for budget in budgets:
        mine = [c for c in comparisons if c.budget == budget]
        head = f"{budget:g}x the base's GMACs: "
        if not mine:
            trained = ", ".join(_name(row) for row in rows if row.variant.budget == budget)
            found[budget] = (
                head + f"nothing to compare ({trained} alone; compound and another strategy make a comparison)"
            )
            continue
        involved = {names[c.a].variant.name: names[c.a] for c in mine} | {
            names[c.b].variant.name: names[c.b] for c in mine
        }
        sd = seed_spread(list(involved.values()))
        tail = (
            f"seed-to-seed spread is {sd:.1f} points"
            if sd is not None
            else "one seed, so no seed-to-seed spread was measured (--seeds 3 or more gives one)"
        )
        found[budget] = (
            head + "; ".join(_clause(c, names) for c in mine) + f"; {tail} (p-values Holm-corrected "
            f"for {sum(c.result is not None for c in comparisons)} comparisons)."
        )
    return found


def chance(rows: list[Row]) -> float | None:
    """Top-1 (percent) of always guessing the most frequent validation class, from any run's per-image labels."""
    for row in rows:
        for run in row.runs:
            if run.images is not None and len(run.images.labels):
                return 100.0 * chance_rate(run.images.labels)
    return None
