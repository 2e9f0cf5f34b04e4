"""What a bootstrap comparison of predictions hands back, without numpy.

The metrics that get intervals (`METRICS`), one delta with its interval (`DeltaCI`) and the
whole family of them (`Family`). `stats` computes them; `decide`, the report and the gate
read them. They live apart from `stats` so that a process that only reads a family (the
report, the gate) never loads numpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Generic, Literal, TypeVar

Task = Literal["classification", "regression"]

Direction = Literal["higher", "lower"]
Method = Literal["paired-bootstrap", "unpaired-bootstrap"]


@dataclass(frozen=True)
class MetricInfo:
    task: Task
    direction: Direction
    needs_score: bool = False  # binary only, from y_score


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("classification", "higher"),
    "precision": MetricInfo("classification", "higher"),
    "recall": MetricInfo("classification", "higher"),
    "f1": MetricInfo("classification", "higher"),
    "roc_auc": MetricInfo("classification", "higher", needs_score=True),
    "log_loss": MetricInfo("classification", "lower", needs_score=True),
    "rmse": MetricInfo("regression", "lower"),
    "mae": MetricInfo("regression", "lower"),
    "r2": MetricInfo("regression", "higher"),
}
_V = TypeVar("_V")


@dataclass(frozen=True)
class DeltaCI:
    """candidate - baseline for one metric, with a bootstrap interval [low, high]."""

    metric: str
    baseline: float
    candidate: float
    delta: float
    low: float
    high: float
    method: Method
    n_baseline: int
    n_candidate: int
    confidence: float = 0.95
    n_resamples: int = 0  # resamples in which the metric was defined on both sides

    @property
    def direction(self) -> Direction:
        return METRICS[self.metric].direction

    def regressed(self, tolerance: float = 0.0) -> bool:
        """The whole interval is worse than `-tolerance` (in the metric's direction)."""
        if self.direction == "higher":
            return self.high < -tolerance
        return self.low > tolerance

    def improved(self, tolerance: float = 0.0) -> bool:
        """The whole interval is better than `tolerance` (in the metric's direction)."""
        if self.direction == "higher":
            return self.low > tolerance
        return self.high < -tolerance

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "direction": self.direction}


class _WithSkipped(dict[str, _V], Generic[_V]):
    """metric -> value; `skipped` says why each requested metric that is absent was left out."""

    def __init__(self, values: dict[str, _V], skipped: dict[str, str]) -> None:
        super().__init__(values)
        self.skipped = skipped


class PointMetrics(_WithSkipped[float]):
    """metric -> value of one predictions set, with `.skipped`."""


class Deltas(_WithSkipped[DeltaCI]):
    """metric -> DeltaCI, with `.skipped`."""


@dataclass(frozen=True)
class Segment:
    """The whole test set (`column` None) or one slice: the rows whose `column` is `value`."""

    column: str | None
    value: str | None
    n_baseline: int
    n_candidate: int
    gated: bool = True  # false: under the minimum size, reported but not gated

    @property
    def label(self) -> str:
        return "all rows" if self.column is None else f"{self.column}={self.value}"


@dataclass
class Family:
    """Deltas of every metric on every segment, with intervals that hold simultaneously.

    `deltas[g][metric]`: segment g (0 is all rows). A segment under the minimum size has point
    deltas only (low and high NaN). `level` is the share of the family's confidence all gated
    intervals hold at together, `critical` the calibrated critical value, `members` how many
    intervals it holds.
    `approximation`: None when every resample was drawn exactly, else the approximation taken
    for very large inputs ("normal-limit", `family.NORMAL_LIMIT_ROWS`).
    """

    segments: list[Segment]
    deltas: list[dict[str, DeltaCI]]
    skipped: dict[str, str]
    level: float
    critical: float
    members: int
    method: str = "simultaneous bootstrap intervals (studentized max-|t| over joint resamples)"
    approximation: str | None = None

    @property
    def overall(self) -> Deltas:
        return Deltas(self.deltas[0], self.skipped)
