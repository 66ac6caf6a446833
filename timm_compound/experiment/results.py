"""What an experiment plans (a `Variant` per model) and what it measured (a `Row` per trained model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timm_compound.cost.complexity import Complexity
from timm_compound.cost.latency import Latency
from timm_compound.scaling.plan import ScalePlan
from timm_compound.train.results import EpochMetrics

BASE, REFERENCE = "base", "reference"


@dataclass(frozen=True)
class Variant:
    """One model of the experiment, planned and measured as it will be trained (its class count, its pixels).

    `budget` is the multiple of the base's cost asked for (1 for the base, None for a reference);
    `ratio` is what the model really costs, as a multiple of the base's MACs. `d`, `w`, `r` are the
    realised multipliers against the base: total blocks, summed stage widths, and pixels over the
    experiment's base resolution (None for a reference without a plan of the base's rule).
    """

    name: str                  # run folder name: base, 2x-depth, ref-resnet34
    strategy: str              # base, depth, width, resolution, compound or reference
    budget: float | None
    model: str | ScalePlan     # what train() is given (a timm-only reference is built from this name)
    plan: ScalePlan | None
    resolution: int
    cost: Complexity
    ratio: float
    phi: float | None = None
    d: float | None = None
    w: float | None = None
    r: float | None = None
    timm_only: bool = False    # a timm model no rule covers: built with timm.create_model
    latency: Latency | None = None   # timed on this machine as trained (None: the experiment timed nothing)

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
            "name": self.name, "strategy": self.strategy, "budget": self.budget, "resolution": self.resolution,
            "phi": self.phi, "d": self.d, "w": self.w, "r": self.r, "depths": self.depths,
            "widths": None if self.plan is None else list(self.plan.widths),
            "model": self.model if isinstance(self.model, str) else None,
            "params": self.cost.params, "macs": self.cost.macs, "ratio": self.ratio,
            "latency": None if self.latency is None else self.latency.to_dict(),
        }


@dataclass
class Row:
    """A trained variant: its plan, its cost and its accuracy after the last epoch."""

    variant: Variant
    run_dir: Path
    history: list[EpochMetrics]
    status: str                # completed, or failed (a non-finite loss; `message` says why)
    message: str | None = None

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
        return {**self.variant.describe(), "gmacs": self.variant.cost.gmacs, "status": self.status,
                "message": self.message, "top1": self.top1, "top5": self.top5, "epochs": len(self.history),
                "train_seconds": self.train_seconds, "run_dir": str(self.run_dir)}


@dataclass
class ExperimentResult:
    """An experiment's rows, the best strategy per budget, what it cost and where its files are.

    `best` maps each budget to the strategy with the highest final top-1 (ties: every tied name,
    joined by ' = '). `compute_macs` is the sum over models of training images x epochs x MACs of
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

    @property
    def report(self) -> Path:
        return self.files["report"]

    def row(self, name: str) -> Row:
        """The row of run `name` (base, 2x-depth, ref-resnet34)."""
        for row in self.rows:
            if row.variant.name == name:
                return row
        raise KeyError(f"no run named {name!r}; runs: {', '.join(r.variant.name for r in self.rows)}")
