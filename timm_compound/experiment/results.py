"""What an experiment plans (a `Variant` per model) and what it measured (a `Row` per model, a `Run` per seed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timm_compound.cost.complexity import Complexity
from timm_compound.cost.latency import Latency
from timm_compound.scaling.plan import ScalePlan
from timm_compound.train.predictions import ImageResults
from timm_compound.train.results import EpochMetrics
from timm_compound.train.statistics import Spread

BASE, REFERENCE = "base", "reference"


@dataclass(frozen=True)
class Variant:
    """One model of the experiment, planned and measured as it will be trained (its class count, its pixels).

    `budget` is the multiple of the base's cost asked for (1 for the base, None for a reference);
    `ratio` is what the model really costs, as a multiple of the base's MACs. `d`, `w`, `r` are the
    realised multipliers against the base: total blocks, summed stage widths, and pixels over the
    experiment's base resolution (None for a reference without a plan of the base's rule).
    """

    name: str  # run folder name: base, 2x-depth, ref-resnet34
    strategy: str  # base, depth, width, resolution, compound or reference
    budget: float | None
    model: str | ScalePlan  # what train() is given (a timm-only reference is built from this name)
    plan: ScalePlan | None
    resolution: int
    cost: Complexity
    ratio: float
    phi: float | None = None
    d: float | None = None
    w: float | None = None
    r: float | None = None
    timm_only: bool = False  # a timm model no rule covers: built with timm.create_model
    latency: Latency | None = None  # timed on this machine as trained (None: the experiment timed nothing)

    @property
    def depths(self) -> list[int] | None:
        return None if self.plan is None else list(self.plan.depths)

    @property
    def label(self) -> str:
        if self.strategy == REFERENCE:
            return f"{self.model} ({self.resolution} px)"
        if self.strategy == BASE:
            return f"base ({self.resolution} px)"
        return f"{self.budget:g}x {self.strategy}"

    def describe(self) -> dict[str, Any]:
        """JSON for experiment.json: enough to see what was planned without rebuilding anything."""
        return {
            "name": self.name,
            "strategy": self.strategy,
            "budget": self.budget,
            "resolution": self.resolution,
            "phi": self.phi,
            "d": self.d,
            "w": self.w,
            "r": self.r,
            "depths": self.depths,
            "widths": None if self.plan is None else list(self.plan.widths),
            "model": self.model if isinstance(self.model, str) else None,
            "params": self.cost.params,
            "macs": self.cost.macs,
            "ratio": self.ratio,
            "latency": None if self.latency is None else self.latency.to_dict(),
        }


@dataclass
class Run:
    """One training of a model with one seed, read back from its run folder.

    `status`: completed, failed (a non-finite loss; `message` says why) or unfinished (the report
    was written while it trains, or before it started). `images`: its per-image results after the
    last epoch (None for a run written before they were recorded).
    """

    seed: int
    run_dir: Path
    history: list[EpochMetrics]
    status: str
    message: str | None = None
    images: ImageResults | None = None

    @property
    def last(self) -> EpochMetrics | None:
        return self.history[-1] if self.history else None

    @property
    def top1(self) -> float | None:
        return None if self.last is None else self.last.top1

    @property
    def top5(self) -> float | None:
        return None if self.last is None else self.last.top5

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds of every epoch (training, evaluation and checkpoint), over all sessions."""
        return sum(row.seconds for row in self.history)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "status": self.status,
            "message": self.message,
            "top1": self.top1,
            "top5": self.top5,
            "epochs": len(self.history),
            "train_seconds": self.train_seconds,
            "run_dir": str(self.run_dir),
        }


@dataclass
class Row:
    """A model of the experiment: its plan, its cost and its runs (one per seed, the same seeds for
    every model). Its accuracies are means over the finished runs; `spread` holds their interval."""

    variant: Variant
    runs: list[Run]
    spread: Spread | None = None  # top-1 over the finished seeds (set when the statistics are computed)

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.status == "completed" and run.history]

    @property
    def run_dir(self) -> Path:
        """The first seed's run folder (its curves and maps stand for the model)."""
        return self.runs[0].run_dir

    @property
    def history(self) -> list[EpochMetrics]:
        return self.runs[0].history

    @property
    def seeds(self) -> list[int]:
        return [run.seed for run in self.runs]

    @property
    def status(self) -> str:
        """completed (every seed), failed (a seed's loss diverged) or 'k/n seeds finished'."""
        if all(run.status == "completed" for run in self.runs):
            return "completed"
        if any(run.status == "failed" for run in self.runs):
            return "failed"
        return f"{len(self.finished)}/{len(self.runs)} seeds finished"

    @property
    def message(self) -> str | None:
        return next((run.message for run in self.runs if run.message), None)

    @property
    def top1(self) -> float | None:
        """Mean top-1 (percent) over the finished seeds."""
        values = [run.top1 for run in self.finished]
        return sum(values) / len(values) if values else None

    @property
    def top5(self) -> float | None:
        values = [run.top5 for run in self.finished]
        return sum(values) / len(values) if values else None

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds of every epoch of every seed (training, evaluation and checkpoint), over all sessions."""
        return sum(run.train_seconds for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        spread = self.spread
        return {
            **self.variant.describe(),
            "gmacs": self.variant.cost.gmacs,
            "status": self.status,
            "message": self.message,
            "seeds": self.seeds,
            "top1": [run.top1 for run in self.finished],
            "top1_mean": self.top1,
            "top1_ci": None if spread is None or spread.ci is None else list(spread.ci),
            "top1_sd": None if spread is None else spread.sd,
            "top1_interval": None if spread is None else spread.method,
            "top5": self.top5,
            "epochs": max((len(run.history) for run in self.runs), default=0),
            "train_seconds": self.train_seconds,
            "run_dir": str(self.run_dir),
            "runs": [run.to_dict() for run in self.runs],
        }


@dataclass
class ExperimentResult:
    """An experiment's rows, the best strategy per budget, what it cost and where its files are.

    `best` maps each budget to the strategy with the highest final top-1, the mean over seeds (ties:
    every tied name, joined by ' = '); `verdicts` says per budget whether that is significant. `compute_macs` is the sum over models of training images x epochs x MACs of
    one forward pass (a training step costs about three times that).
    """

    out: Path
    settings: dict[str, Any]
    base_macs: int
    rows: list[Row]
    best: dict[float, str]
    compute_macs: float
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    comparisons: list[Any] = field(default_factory=list)  # experiment.verdicts.Comparison, as in results.json
    verdicts: dict[float, str] = field(default_factory=dict)  # one sentence per budget
    seeds: list[int] = field(default_factory=list)
    disk_bytes: int = 0  # the run folders' size when the report was written
    chance: float | None = None  # top-1 (%) of always the most frequent class

    @property
    def report(self) -> Path:
        return self.files["report"]

    def row(self, name: str) -> Row:
        """The row of run `name` (base, 2x-depth, ref-resnet34)."""
        for row in self.rows:
            if row.variant.name == name:
                return row
        raise KeyError(f"no run named {name!r}; runs: {', '.join(r.variant.name for r in self.rows)}")
