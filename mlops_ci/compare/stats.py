"""Metrics of per-sample predictions, and bootstrap confidence intervals for their deltas.

>>> base = Predictions.from_arrays([0, 1, 1, 0] * 50, [0, 1, 0, 0] * 50)
>>> cand = Predictions.from_arrays([0, 1, 1, 0] * 50, [0, 1, 1, 1] * 50)
>>> ci = bootstrap_family(base, cand, ["accuracy"]).overall["accuracy"]
>>> ci.method, ci.delta, ci.low <= ci.delta <= ci.high
('paired-bootstrap', 0.0, True)

Definitions are scikit-learn's (tests hold them to 1e-12): accuracy; precision, recall and f1
with `pos_label=1` when every label is 0 or 1, else macro-averaged over the labels present;
roc_auc and log_loss (binary only, from `y_score`, log_loss clipped to [eps, 1 - eps]); rmse,
mae and r2 for regression. A value undefined in scikit-learn (roc_auc with one class) is NaN.

How the intervals are made:

- **Pairing.** When both files hold the same set of ids, with the same `y_true` for each id, the
  rows are matched by id and every resample weighs a row equally on both sides
  ("paired-bootstrap"): the shared noise of the test set cancels out of the delta. Otherwise the
  test rows differ and each side is resampled on its own ("unpaired-bootstrap").
- **Poisson(1) weights.** A resample gives each row an independent Poisson(1) weight instead of
  drawing n rows with replacement; the two agree as n grows (the multinomial counts of a
  with-replacement draw are Poisson(1) conditioned on their sum) and tests check the coverage.
  Weights come from 16 random bits through a lookup table (each Poisson probability to within
  2^-16), which is several times faster than drawing Poisson variates.
- **Sufficient statistics.** accuracy, precision, recall and f1 depend only on how many rows
  have each (y_true, y_pred...) combination, so those few combinations get Poisson(m) weights;
  log_loss, rmse, mae and r2 are ratios of weighted sums (one matrix product per chunk); roc_auc
  is the weighted Mann-Whitney statistic from rows sorted by score once, with one cumulative sum
  over the smaller class per resample, in exact integer arithmetic (ties count one half).
- **Intervals that hold together.** Every metric on all rows and on each slice is resampled
  together (`family`); each interval is its delta plus or minus one critical value times its
  bootstrap standard deviation, the critical value holding all of them at once (studentized
  max-|t|; for one metric, a studentized interval), so that the chance of colouring anything on
  a change that did nothing stays within `1 - confidence`. Every metric family draws from its
  own seeded stream, so asking for more metrics moves an interval only through the critical
  value.
- **One approximation**, from `family.NORMAL_LIMIT_ROWS` rows: the resampled sums of the score
  and regression families come from their normal limit (`Family.approximation` says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_ci.compare.family import (
    NORMAL_LIMIT_ROWS,
    make_segment_groups,
    run_groups,
    segment_group_jobs,
)
from mlops_ci.compare.intervals import (
    METRICS,
    DeltaCI,
    Deltas,
    Family,
    Method,
    MetricInfo,
    PointMetrics,
    Segment,
)
from mlops_ci.compare.numeric import np, one_blas_thread
from mlops_ci.compare.predictions import (
    InvalidPredictions,
    Predictions,
    Task,
    distinct,
    load_predictions,
    task_of,
    whole_numbers,
)
from mlops_ci.project.errors import ConfigError


class InvalidStatsOptions(ConfigError):
    """A bootstrap option (confidence, resamples, task) is out of range."""


def point_metrics(
    preds: Predictions,
    metrics: Sequence[str] | None = None,
    *,
    task: Task | None = None,
    weights: Any = None,
) -> PointMetrics:
    """Metric values of one predictions set (default: every metric of its task).

    `weights` (non-negative integers, one per row) evaluates the sample in which row i appears
    weights[i] times. Metrics that cannot be computed are left out, with the reason in `.skipped`.
    Computed by `bootstrap_family`'s groups (one segment, every row), always exactly.
    """
    plan = _Plan([preds], metrics, task)
    w = None
    if weights is not None:
        w = np.asarray(weights)
        if w.shape != (len(preds),) or w.dtype.kind not in "iub" or (w < 0).any():
            raise InvalidStatsOptions(
                f"weights must be {len(preds)} non-negative integers, one per row of {preds.source}"
            )
    values: dict[tuple[str, int], float] = {}
    groups = make_segment_groups(
        [preds], plan.metrics, [[np.arange(len(preds))]], paired=False, labels=plan.labels,
        binary=plan.binary, normal_limit_rows=None,
    )  # fmt: skip
    for _, group in groups:
        values.update(group.point(w)[0])
    return PointMetrics({m: values[m, 0] for m in plan.metrics}, plan.skipped)


# --- the family: every metric on the whole set and on each slice, simultaneous intervals --------


def bootstrap_family(
    baseline: Predictions,
    candidate: Predictions,
    metrics: Sequence[str] | None = None,
    *,
    slices: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    min_slice: int = 100,
    confidence: float = 0.95,
    band_members: int = 0,
    n_resamples: int = 1000,
    seed: int = 0,
    task: Task | None = None,
    normal_limit_rows: int | None = NORMAL_LIMIT_ROWS,
) -> Family:
    """Intervals for candidate - baseline of each metric on all rows and on every slice that
    hold all at once.

    `slices`: column -> (its value per row of the baseline, per row of the candidate); slices
    with fewer than `min_slice` rows on a side get point deltas only. `band_members`: how many
    metrics a noise band judges besides; the error `1 - confidence` is split by count between
    them and the m members here (`noise.split_alpha`), so these hold together at
    `1 - m / (m + band_members) * (1 - confidence)`. Calibration: each member's interval is its
    delta plus or minus one critical value times its bootstrap standard deviation, the critical
    value being that error's upper quantile of the largest studentized deviation over all
    members in each resample (max-|t|, Romano and Wolf's single step); for one member, a
    studentized interval.

    Paired over rows matched by id when both sides hold the same ids with the same labels,
    unpaired otherwise (see the module docstring). Reproducible for a given `seed`. Metrics
    that cannot be computed (no y_score, one class only, a metric of the other task, an unknown
    name, undefined in most resamples) are left out, with the reason in `.skipped`.
    `normal_limit_rows`: from this many rows a side's score and regression metrics are
    resampled through their normal limit (`family`; None: never); `.approximation` names it
    when it was taken.
    """
    _check_options(confidence, n_resamples)
    n_resamples = int(n_resamples)
    orders = _paired_orders(baseline, candidate)
    columns = dict(slices or {})
    if orders is not None:
        baseline, candidate = baseline.take(orders[0]), candidate.take(orders[1])
        # A pair shares its rows: slices by the candidate's values (the data under test).
        columns = {c: (v[1][orders[1]], v[1][orders[1]]) for c, v in columns.items()}
    plan = _Plan([baseline, candidate], metrics, task, paired=orders is not None)
    segments, rows = _segments([baseline, candidate], columns, min_slice)
    jobs = segment_group_jobs(
        plan.sides, plan.metrics, rows, paired=plan.paired, labels=plan.labels,
        binary=plan.binary, normal_limit_rows=normal_limit_rows,
    )  # fmt: skip
    # One BLAS thread: the resampling is matrix products on small blocks, where threads cost
    # more in contention than they give.
    with one_blas_thread():
        point, draws, approximation = run_groups(jobs, seed, n_resamples)
    keys, columns_d = [], []
    for g, seg in enumerate(segments):
        for name in plan.metrics:
            delta = draws[1][name, g] - draws[0][name, g]
            finite = np.isfinite(delta).sum()
            if g == 0 and finite < n_resamples / 2:
                plan.skipped[name] = (
                    f"undefined in {n_resamples - finite} of {n_resamples} resamples "
                    "(too few rows of one class?)"
                )
            elif seg.gated and finite >= n_resamples / 2 and name not in plan.skipped:
                keys.append((name, g))
                columns_d.append(delta)
    bounds: dict[tuple[str, int], tuple[float, float]] = {}
    critical = math.nan
    alpha = (1 - confidence) * len(keys) / max(len(keys) + band_members, 1)
    if columns_d:
        stacked = np.stack(columns_d, axis=1)
        centre = np.array([point[1][k] - point[0][k] for k in keys])
        critical = _critical_t(stacked, centre, alpha)
        sd = np.nanstd(stacked, axis=0)
        for key, mid, half in zip(keys, centre, critical * sd, strict=True):
            bounds[key] = (float(mid - half), float(mid + half))
    method: Method = "paired-bootstrap" if plan.paired else "unpaired-bootstrap"
    out: list[dict[str, DeltaCI]] = []
    for g, seg in enumerate(segments):
        row: dict[str, DeltaCI] = {}
        for name in plan.metrics:
            if name in plan.skipped:
                continue
            # Python floats: the family is written to JSON and read by numpy-free modules.
            base = float(point[0].get((name, g), math.nan))
            cand = float(point[1].get((name, g), math.nan))
            low, high = bounds.get((name, g), (math.nan, math.nan))
            row[name] = DeltaCI(
                metric=name, baseline=base, candidate=cand, delta=cand - base, low=low,
                high=high, method=method, n_baseline=seg.n_baseline,
                n_candidate=seg.n_candidate, confidence=confidence,
                n_resamples=int(np.isfinite(draws[1][name, g] - draws[0][name, g]).sum()),
            )  # fmt: skip
        out.append(row)
    return Family(
        segments, out, plan.skipped, 1 - alpha, float(critical), len(keys),
        approximation=approximation,
    )  # fmt: skip


def _check_options(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise InvalidStatsOptions(
            f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}"
        )
    if int(n_resamples) != n_resamples or n_resamples < 10:
        raise InvalidStatsOptions(
            f"n_resamples must be an integer of at least 10, got {n_resamples}"
        )


def _segments(
    sides: list[Predictions], columns: Mapping[str, tuple[np.ndarray, np.ndarray]], min_size: int
) -> tuple[list[Segment], list[list[np.ndarray]]]:
    """Segments (all rows, then each value of each column) and their rows per side."""
    segments = [Segment(None, None, len(sides[0]), len(sides[1]))]
    rows: list[list[np.ndarray]] = [[np.arange(len(p))] for p in sides]
    for column, per_side in columns.items():
        texts = [np.asarray(v).astype(str) for v in per_side]
        for value in distinct(np.concatenate(texts)):
            at = [np.flatnonzero(t == value) for t in texts]
            n0, n1 = len(at[0]), len(at[1])
            gated = min(n0, n1) >= max(min_size, 1)
            segments.append(Segment(column, str(value), n0, n1, gated))
            for side, found in zip(rows, at, strict=True):
                side.append(found)
    return segments, rows


def _critical_t(deltas: np.ndarray, points: np.ndarray, alpha: float) -> float:
    """The `1 - alpha` quantile, over resamples, of the largest studentized distance of any
    member from its point estimate, max_j |d_bj - d_j| / sd_j: every member's interval
    d_j +- c sd_j then holds in all but `alpha` of the resamples at once. (Percentile ranks
    cannot do this at 1,000 resamples: with dozens of members the cut falls past the last draw.)
    A member's undefined (NaN) resamples and a member that never varies add nothing."""
    sd = np.nanstd(deltas, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(deltas - points) / np.where(sd > 0, sd, np.inf)
    worst = np.nanmax(np.where(np.isfinite(t), t, 0.0), axis=1)
    return float(np.quantile(worst, 1 - alpha, method="higher"))


# --- planning: which rows pair up, which metrics are computable ---------------------------------


def _paired_orders(a: Predictions, b: Predictions) -> tuple[np.ndarray, np.ndarray] | None:
    """Row orders of `a` and `b` that match them by id, when the pairing rule holds: the same
    id set, and each id has the same y_true on both sides. None: the rows cannot be paired."""
    if len(a) != len(b):
        return None
    if np.array_equal(a.ids, b.ids):  # the same rows in the same order: nothing to sort
        if np.array_equal(a.y_true, b.y_true):
            same = np.arange(len(a))
            return same, same
        return None
    ia, ib = np.argsort(a.ids), np.argsort(b.ids)  # ids are unique: one order, any sort kind
    if np.array_equal(a.ids[ia], b.ids[ib]) and np.array_equal(a.y_true[ia], b.y_true[ib]):
        return ia, ib
    return None


class _Plan:
    """Metrics to compute for one or two sides and the groups of rows that share weights."""

    def __init__(
        self,
        sides: list[Predictions],
        metrics: Sequence[str] | None,
        task: Task | None,
        *,
        paired: bool = False,
    ) -> None:
        self.sides, self.paired = sides, paired
        self.task = task or _common_task(sides)
        if self.task not in ("classification", "regression"):
            raise InvalidStatsOptions(f"task must be classification or regression, got {task!r}")
        self.skipped: dict[str, str] = {}
        self.labels, self.binary = np.zeros(0), False
        if self.task == "classification":
            # task_of infers classification from whole numbers only; an explicit task is checked.
            fractional = [p.source for p in sides if task and not whole_numbers(p.y_true, p.y_pred)]
            if fractional:
                raise InvalidPredictions(
                    f"{fractional[0]}: classification labels must be whole numbers"
                )
            self.labels = distinct(np.concatenate([a for p in sides for a in (p.y_true, p.y_pred)]))
            self.binary = bool(np.isin(self.labels, (0, 1)).all())
        names = (
            list(metrics)
            if metrics is not None
            else [m for m, info in METRICS.items() if info.task == self.task]
        )
        self.metrics = [m for m in dict.fromkeys(names) if self._computable(m)]

    def _computable(self, name: str) -> bool:
        info = METRICS.get(name)
        if info is None:
            self.skipped[name] = (
                f"not a metric computed from predictions (known: {', '.join(METRICS)})"
            )
        elif info.task != self.task:
            self.skipped[name] = f"a {info.task} metric; these predictions are {self.task}"
        elif info.needs_score and (reason := self._score_problem(name)):
            self.skipped[name] = reason
        return name not in self.skipped

    def _score_problem(self, name: str) -> str | None:
        if not self.binary:
            return f"{name} needs binary labels 0/1 (per-class scores are not read)"
        for p in self.sides:
            if p.y_score is None:
                return f"{p.source} has no y_score column"
            if name == "roc_auc" and len(distinct(p.y_true)) < 2:
                return f"y_true of {p.source} has one class only; ROC AUC is undefined"
            if name == "log_loss" and (p.y_score.min() < 0 or p.y_score.max() > 1):
                return f"y_score of {p.source} is not a probability in [0, 1]"
        return None


def _common_task(sides: list[Predictions]) -> Task:
    tasks = {p.source: task_of(p) for p in sides}
    if len(set(tasks.values())) > 1:
        shown = "; ".join(f"{src} looks like {t}" for src, t in tasks.items())
        raise InvalidPredictions(
            f"baseline and candidate predictions disagree on the task ({shown}); "
            "write whole-number labels for classification, or set the task explicitly"
        )
    return next(iter(tasks.values()))


__all__ = [
    "METRICS",
    "DeltaCI",
    "Deltas",
    "Family",
    "InvalidPredictions",
    "InvalidStatsOptions",
    "MetricInfo",
    "PointMetrics",
    "Predictions",
    "Segment",
    "bootstrap_family",
    "load_predictions",
    "point_metrics",
    "task_of",
]
