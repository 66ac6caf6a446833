"""How sure a search is of its winner: above chance at all, and better than the runner-up and than the
rule's current coefficients, by paired tests on the same validation images at the final rung.

Every trial records its candidate's per-image results at the epoch its value was measured (`CORRECT`:
right or wrong per image, packed bits), so two candidates trained to the same epoch are compared image
by image: McNemar's exact test (one seed) with a paired bootstrap interval (`timm_compound.train.statistics`),
Holm-corrected over the two comparisons. A winner whose top-1 is not significantly above chance level
(always guessing the most frequent validation class; a one-sided binomial test) is no winner at all.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from timm_compound.search.study import SAME_MODEL
from timm_compound.train.statistics import ALPHA, Paired, above_chance, holm, p_text, paired, points

CORRECT = "correct"  # user_attr: {"bits": base64 of the packed 0/1 per image, "images": n, "epoch": e, "chance": rate}


def encode(images) -> dict[str, Any]:
    """A trial's per-image results (train.predictions.ImageResults) as a small JSON value."""
    from timm_compound.train.statistics import chance_rate

    correct = images.correct.astype(np.uint8)
    return {
        "bits": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii"),
        "images": int(correct.size),
        "epoch": int(images.epoch),
        "chance": chance_rate(images.labels),
    }


def decode(value: dict[str, Any]) -> np.ndarray:
    packed = np.frombuffer(base64.b64decode(value["bits"]), dtype=np.uint8)
    return np.unpackbits(packed)[: int(value["images"])].astype(np.int8)


@dataclass(frozen=True)
class Versus:
    """The winner minus another candidate (`role`: runner-up or current), or `note` saying why not compared."""

    role: str
    key: str | None
    result: Paired | None = None
    p_holm: float | None = None
    note: str | None = None

    @property
    def significant(self) -> bool:
        return self.result is not None and self.p_holm is not None and self.p_holm < ALPHA and self.result.diff_mean > 0

    def to_dict(self) -> dict[str, Any]:
        found = self.result
        return {
            "role": self.role,
            "key": self.key,
            "diff_mean": None if found is None else found.diff_mean,
            "diff_ci": None if found is None else list(found.diff_ci),
            "p": None if found is None else found.p,
            "p_holm": self.p_holm,
            "significant": self.significant,
            "test": found.test if found is not None else None,
            "note": self.note,
        }

    def line(self, winner: str) -> str:
        name = "the runner-up" if self.role == "runner-up" else "the rule's current coefficients"
        if self.result is None:
            return f"against {name}{'' if self.key is None else f' {self.key}'}: {self.note}"
        found = self.result
        verdict = "significantly better" if self.significant else "not significantly better"
        return (
            f"against {name} {self.key}: {points(found.diff_mean)} points (95% CI {points(found.diff_ci[0])} to "
            f"{points(found.diff_ci[1])}, {p_text(self.p_holm)} Holm-corrected, {found.test}): {winner} is {verdict}"
        )


@dataclass(frozen=True)
class Confidence:
    """The winner against chance, the runner-up and the current coefficients (see the module docstring)."""

    winner: str | None
    top1: float | None
    chance: float | None  # percent
    p_chance: float | None
    runner_up: Versus
    current: Versus

    @property
    def at_chance(self) -> bool:
        """No candidate's top-1 is significantly above chance: there is no winner to name."""
        return self.p_chance is None or self.p_chance >= ALPHA

    @property
    def better_than_current(self) -> bool:
        return not self.at_chance and self.current.significant

    def lines(self) -> list[str]:
        if self.winner is None:
            return ["no candidate has per-image results at its final epoch: nothing to say about significance"]
        if self.at_chance:
            return [
                f"at chance level: the best top-1, {self.top1:.2f}% ({self.winner}), is not significantly above "
                f"chance ({self.chance:.1f}%, always the most frequent class; {p_text(self.p_chance)}): no "
                "candidate is a winner; train longer or on more images"
            ]
        return [
            f"winner {self.winner}: top-1 {self.top1:.2f}%, above chance ({self.chance:.1f}%, {p_text(self.p_chance)})",
            self.runner_up.line(self.winner),
            self.current.line(self.winner),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "top1": self.top1,
            "chance": self.chance,
            "p_chance": self.p_chance,
            "at_chance": self.at_chance,
            "runner_up": self.runner_up.to_dict(),
            "current": self.current.to_dict(),
            "better_than_current": self.better_than_current,
        }


def _results(row, studies: list[Any]) -> dict[str, Any] | None:
    """The per-image results of the trial that gave `row` its top-1 (a twin's trial when it shared one)."""
    if row.trial is None or row.rung >= len(studies):
        return None
    trials = {trial.number: trial for trial in studies[row.rung].get_trials(deepcopy=False)}
    trial = trials.get(row.trial)
    if trial is not None and SAME_MODEL in trial.user_attrs:
        trial = trials.get(trial.user_attrs[SAME_MODEL])
    return None if trial is None else trial.user_attrs.get(CORRECT)


def _same_model(a, b) -> bool:
    return (
        a.key == b.key
        or a.shared_with == b.key
        or b.shared_with == a.key
        or (a.shared_with is not None and a.shared_with == b.shared_with)
    )


def assess(rows: list[Any], studies: list[Any], current_key: str | None) -> Confidence:
    """The winner (rows[0], best first) against chance, the runner-up and the current coefficients."""
    winner = rows[0] if rows and rows[0].state == "complete" and rows[0].top1 is not None else None
    found = None if winner is None else _results(winner, studies)
    if winner is None or found is None:
        none = Versus("runner-up", None, note="not compared")
        return Confidence(None, None, None, None, none, Versus("current", current_key, note="not compared"))
    correct = decode(found)
    p_chance = above_chance(correct, found["chance"])

    def versus(role: str, other, missing: str) -> Versus:
        if other is None:
            return Versus(role, None if role == "runner-up" else current_key, note=missing)
        if _same_model(winner, other):
            return Versus(role, other.key, note="the same trained model as the winner (they round alike)")
        theirs = _results(other, studies)
        if theirs is None or other.state not in ("complete", "pruned") or theirs["epoch"] != found["epoch"]:
            reached = "no per-image results" if theirs is None else f"trained to epoch {theirs['epoch']} only"
            return Versus(role, other.key, note=f"not compared: {reached}, the winner to epoch {found['epoch']}")
        if theirs["images"] != found["images"]:
            return Versus(role, other.key, note="not compared: evaluated on other images")
        return Versus(role, other.key, paired(correct, decode(theirs)))

    finalists = [
        row for row in rows[1:] if row.state == "complete" and row.top1 is not None and not _same_model(winner, row)
    ]
    runner_up = versus(
        "runner-up",
        finalists[0] if finalists else None,
        f"no other model was trained to the winner's epoch {found['epoch']}",
    )
    current_row = next((row for row in rows if row.key == current_key), None)
    if current_row is not None and current_row.key == winner.key:
        current = Versus("current", current_key, note="the winner is the rule's current coefficients")
    else:
        current = versus("current", current_row, "the rule's current coefficients were not among the candidates")
    adjusted = holm([None if v.result is None else v.result.p for v in (runner_up, current)])
    runner_up, current = (Versus(v.role, v.key, v.result, p, v.note) for v, p in zip((runner_up, current), adjusted))
    return Confidence(winner.key, winner.top1, 100.0 * found["chance"], p_chance, runner_up, current)
