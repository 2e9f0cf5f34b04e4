"""Metrics of per-sample predictions, and bootstrap confidence intervals for their deltas.

>>> base = Predictions.from_arrays([0, 1, 1, 0] * 50, [0, 1, 0, 0] * 50)
>>> cand = Predictions.from_arrays([0, 1, 1, 0] * 50, [0, 1, 1, 1] * 50)
>>> ci = bootstrap_deltas(base, cand, ["accuracy"])["accuracy"]
>>> ci.method, ci.delta, ci.low <= ci.delta <= ci.high
('paired-bootstrap', 0.0, True)

Definitions are scikit-learn's (tests hold them to 1e-12): accuracy; precision, recall and f1
with `pos_label=1` when every label is 0 or 1, else macro-averaged over the labels present;
roc_auc and log_loss (binary only, from `y_score`, log_loss clipped to [eps, 1 - eps]); rmse,
mae and r2 for regression. A value undefined in scikit-learn (roc_auc with one class) is NaN.

How the intervals are made (issue 3):

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
- **Percentile interval** of the resampled deltas at the chosen confidence. Every metric family
  draws from its own seeded stream, so asking for more metrics does not move an interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from mlops_ci.errors import ConfigError
from mlops_ci.predictions import (
    InvalidPredictions,
    Predictions,
    Task,
    load_predictions,
    task_of,
)

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
_DISCRETE = ("accuracy", "precision", "recall", "f1")

# Resamples x rows handled at once: bounds memory (~40 MB of work arrays) and keeps them in cache.
_CHUNK_CELLS = 1 << 21


class InvalidStatsOptions(ConfigError):
    """A bootstrap option (confidence, resamples, task) is out of range."""


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


class PointMetrics(dict[str, float]):
    """metric -> value; `skipped` says why each requested metric that is absent was left out."""

    def __init__(self, values: dict[str, float], skipped: dict[str, str]) -> None:
        super().__init__(values)
        self.skipped = skipped


class Deltas(dict[str, DeltaCI]):
    """metric -> DeltaCI; `skipped` says why each requested metric that is absent was left out."""

    def __init__(self, values: dict[str, DeltaCI], skipped: dict[str, str]) -> None:
        super().__init__(values)
        self.skipped = skipped


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
    """
    plan = _Plan([preds], metrics, task)
    w = None
    if weights is not None:
        w = np.asarray(weights)
        if w.shape != (len(preds),) or w.dtype.kind not in "iub" or (w < 0).any():
            raise InvalidStatsOptions(
                f"weights must be {len(preds)} non-negative integers, one per row of {preds.source}"
            )
    values: dict[str, float] = {}
    for _, group in plan.groups():
        (vals,) = group.values(group.point_weights(w))
        values.update({name: float(v[0]) for name, v in vals.items()})
    return PointMetrics({m: values[m] for m in plan.metrics}, plan.skipped)


def bootstrap_deltas(
    baseline: Predictions,
    candidate: Predictions,
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    task: Task | None = None,
) -> Deltas:
    """Confidence intervals for candidate - baseline of each metric (default: all of the task).

    Paired over rows matched by id when both sides hold the same ids with the same labels,
    unpaired otherwise (see the module docstring). Reproducible for a given `seed`. Metrics
    that cannot be computed (no y_score, one class only, a metric of the other task, an unknown
    name) are left out, with the reason in `.skipped`.
    """
    if not 0 < confidence < 1:
        raise InvalidStatsOptions(
            f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}"
        )
    if int(n_resamples) != n_resamples or n_resamples < 10:
        raise InvalidStatsOptions(
            f"n_resamples must be an integer of at least 10, got {n_resamples}"
        )
    paired = _same_rows(baseline, candidate)
    if paired:
        baseline, candidate = _sorted_by_id(baseline), _sorted_by_id(candidate)
    plan = _Plan([baseline, candidate], metrics, task, paired=paired)
    point: list[dict[str, float]] = [{}, {}]
    draws: list[dict[str, np.ndarray]] = [{}, {}]
    for stream, group in plan.groups():
        for side, vals in zip(group.sides, group.values(group.point_weights(None)), strict=True):
            point[side].update({name: float(v[0]) for name, v in vals.items()})
        rng = np.random.default_rng([seed, *stream])
        for side, vals in zip(group.sides, group.resampled(rng, int(n_resamples)), strict=True):
            draws[side].update(vals)
    alpha = 1 - confidence
    out: dict[str, DeltaCI] = {}
    for name in plan.metrics:
        delta = draws[1][name] - draws[0][name]
        finite = delta[np.isfinite(delta)]
        if len(finite) < n_resamples / 2:
            plan.skipped[name] = (
                f"undefined in {n_resamples - len(finite)} of {n_resamples} resamples "
                "(too few rows of one class?)"
            )
            continue
        low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
        out[name] = DeltaCI(
            metric=name,
            baseline=point[0][name],
            candidate=point[1][name],
            delta=point[1][name] - point[0][name],
            low=float(low),
            high=float(high),
            method="paired-bootstrap" if paired else "unpaired-bootstrap",
            n_baseline=len(baseline),
            n_candidate=len(candidate),
            confidence=confidence,
            n_resamples=len(finite),
        )
    return Deltas(out, plan.skipped)


# --- planning: which metrics, which rows share weights ------------------------------------------


def _same_rows(a: Predictions, b: Predictions) -> bool:
    """The pairing rule: same id set, and each id has the same y_true on both sides."""
    if len(a) != len(b):
        return False
    ia, ib = np.argsort(a.ids), np.argsort(b.ids)
    if not np.array_equal(a.ids[ia], b.ids[ib]):
        return False
    return bool(np.array_equal(a.y_true[ia], b.y_true[ib]))


def _sorted_by_id(p: Predictions) -> Predictions:
    order = np.argsort(p.ids, kind="stable")
    score = None if p.y_score is None else p.y_score[order]
    return Predictions(p.ids[order], p.y_true[order], p.y_pred[order], score, p.source)


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
            values = np.concatenate([a for p in sides for a in (p.y_true, p.y_pred)])
            if not np.all(values == np.round(values)):
                raise InvalidPredictions(
                    f"{sides[0].source}: classification labels must be whole numbers"
                )
            self.labels = np.unique(values)
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
        elif info.needs_score:
            self.skipped.update({name: r} if (r := self._score_problem(name)) else {})
        return name not in self.skipped

    def _score_problem(self, name: str) -> str | None:
        if not self.binary:
            return f"{name} needs binary labels 0/1 (per-class scores are not read)"
        for p in self.sides:
            if p.y_score is None:
                return f"{p.source} has no y_score column"
            if name == "roc_auc" and len(np.unique(p.y_true)) < 2:
                return f"y_true of {p.source} has one class only; ROC AUC is undefined"
            if name == "log_loss" and (p.y_score.min() < 0 or p.y_score.max() > 1):
                return f"y_score of {p.source} is not a probability in [0, 1]"
        return None

    def groups(self) -> list[tuple[tuple[int, int], _Group]]:
        """(random stream, group) per metric family and set of rows sharing weights.

        A pair shares one set of weights. The stream depends on the family and the side only,
        so an interval does not move when other metrics are asked for too.
        """
        members = [[0, 1]] if self.paired else [[i] for i in range(len(self.sides))]
        wanted = set(self.metrics)
        out: list[tuple[tuple[int, int], _Group]] = []
        for sides in members:
            preds = [self.sides[i] for i in sides]
            if wanted & set(_DISCRETE):
                group = _DiscreteGroup(preds, sides, self.labels, self.binary, wanted)
                out.append(((0, sides[0]), group))
            if wanted & {"roc_auc", "log_loss"}:
                out.append(((1, sides[0]), _ScoreGroup(preds, sides, wanted)))
            if wanted & {"rmse", "mae", "r2"}:
                out.append(((2, sides[0]), _RegressionGroup(preds, sides, wanted)))
        return out


def _common_task(sides: list[Predictions]) -> Task:
    tasks = {p.source: task_of(p) for p in sides}
    if len(set(tasks.values())) > 1:
        shown = "; ".join(f"{src} looks like {t}" for src, t in tasks.items())
        raise InvalidPredictions(
            f"baseline and candidate predictions disagree on the task ({shown}); "
            "write whole-number labels for classification, or set the task explicitly"
        )
    return next(iter(tasks.values()))


# --- weights ------------------------------------------------------------------------------------


@cache
def _poisson_table() -> np.ndarray:
    """uint16 -> Poisson(1) draw by inverse CDF at the midpoint of each of the 2^16 cells."""
    cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(20)])
    cells = (np.arange(1 << 16) + 0.5) / (1 << 16)
    return np.searchsorted(cdf, cells, side="right").astype(np.uint8)


def _poisson_rows(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    bits = np.frombuffer(rng.bytes(2 * b * n), dtype="<u2").reshape(b, n)
    return np.take(_poisson_table(), bits)  # take: ~3x faster than fancy indexing here


def _chunks(n_resamples: int, n_units: int) -> list[int]:
    size = max(1, min(n_resamples, _CHUNK_CELLS // max(n_units, 1)))
    return [min(size, n_resamples - start) for start in range(0, n_resamples, size)]


class _Group:
    """Rows of one or two sides that share weights; subclasses turn weights into metric values."""

    sides: list[int]

    def point_weights(self, row_weights: np.ndarray | None) -> Any:
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, b: int) -> Any:
        raise NotImplementedError

    def values(self, weights: Any) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError

    def resampled(self, rng: np.random.Generator, n_resamples: int) -> list[dict[str, np.ndarray]]:
        parts = [self.values(self.draw(rng, b)) for b in _chunks(n_resamples, self.chunk_width)]
        return [
            {name: np.concatenate([p[s][name] for p in parts]) for name in parts[0][s]}
            for s in range(len(self.sides))
        ]

    chunk_width: int = 1  # weights drawn per resample, to size chunks


# --- accuracy, precision, recall, f1: counts of label combinations ------------------------------


class _DiscreteGroup(_Group):
    def __init__(self, preds, sides, labels, binary, wanted) -> None:  # type: ignore[no-untyped-def]
        self.sides, self.binary = sides, binary
        self.metrics = [m for m in _DISCRETE if m in wanted]
        k = len(labels)
        codes = [np.searchsorted(labels, preds[0].y_true)]
        codes += [np.searchsorted(labels, p.y_pred) for p in preds]
        key = np.zeros(len(preds[0]), dtype=np.int64)
        for c in codes:
            key = key * k + c
        uniq, self.inverse, self.counts = np.unique(key, return_inverse=True, return_counts=True)
        decoded = []
        for _ in codes:
            decoded.append(uniq % k)
            uniq = uniq // k
        self.true, self.preds = decoded[-1], decoded[-2::-1]
        self.n_rows, self.n_units, self.k = len(key), len(self.counts), k
        self.pos = int(np.searchsorted(labels, 1)) if binary and 1 in labels else -1
        # Once combinations are nearly as many as rows, per-row table draws beat Poisson(m).
        self.by_row = self.n_units * 8 > self.n_rows
        self.chunk_width = self.n_rows if self.by_row else self.n_units

    def point_weights(self, row_weights: np.ndarray | None) -> np.ndarray:
        if row_weights is None:
            return self.counts[None, :].astype(np.float64)
        return np.bincount(self.inverse, weights=row_weights, minlength=self.n_units)[None, :]

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        if self.by_row:
            w = _poisson_rows(rng, b, self.n_rows).astype(np.float64)
            return np.stack(
                [np.bincount(self.inverse, weights=r, minlength=self.n_units) for r in w]
            )
        return rng.poisson(self.counts, size=(b, self.n_units)).astype(np.float64)

    def values(self, w: np.ndarray) -> list[dict[str, np.ndarray]]:
        total = w.sum(axis=1)
        out = []
        for pred in self.preds:
            hit = self.true == pred
            with np.errstate(invalid="ignore", divide="ignore"):
                vals = {"accuracy": w @ hit / total}
                if self.binary:  # scikit-learn's average="binary", pos_label=1
                    true_pos = self.true == self.pos
                    tp = (w @ (hit & true_pos))[:, None]
                    npred = (w @ (pred == self.pos))[:, None]
                    ntrue = (w @ true_pos)[:, None]
                    present = np.ones_like(tp, dtype=bool)
                else:
                    tp = self._by_label(w, self.true, hit)
                    npred = self._by_label(w, pred, None)
                    ntrue = self._by_label(w, self.true, None)
                    present = (npred + ntrue) > 0
                per_label = {
                    "precision": np.where(npred > 0, tp / npred, 0.0),
                    "recall": np.where(ntrue > 0, tp / ntrue, 0.0),
                    "f1": np.where(npred + ntrue > 0, 2 * tp / (npred + ntrue), 0.0),
                }
                n_present = present.sum(axis=1)
                for name, v in per_label.items():
                    vals[name] = np.where(present, v, 0.0).sum(axis=1) / n_present
            out.append({m: vals[m] for m in self.metrics})
        return out

    def _by_label(self, w: np.ndarray, codes: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """(b, k) weighted counts of units per label code, over units where `mask` holds."""
        rows = np.arange(self.n_units) if mask is None else np.flatnonzero(mask)
        if self.n_units * self.k <= 4_000_000:
            onehot = np.zeros((self.n_units, self.k))
            onehot[rows, codes[rows]] = 1.0
            return w @ onehot
        from scipy import sparse  # only for very many labels and combinations

        onehot = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, codes[rows])), shape=(self.n_units, self.k)
        )
        return np.asarray((onehot.T @ w.T).T)


# --- roc_auc and log_loss: rows sorted by score, negatives and positives apart -----------------


class _ScoreGroup(_Group):
    def __init__(self, preds: list[Predictions], sides: list[int], wanted: set[str]) -> None:
        self.sides = sides
        self.metrics = [m for m in ("roc_auc", "log_loss") if m in wanted]
        first = preds[0]
        # Blocks of negatives and positives, each in the first side's score order, so that side
        # needs no permutation; the other side of a pair permutes the weights once per chunk.
        self.blocks = []
        for label in (0, 1):
            rows = np.flatnonzero(first.y_true == label)
            self.blocks.append(rows[np.argsort(first.y_score[rows], kind="stable")])
        self.chunk_width = len(first)
        eps = np.finfo(np.float64).eps
        # Per-row log loss of every side, one column per side: one product per block and chunk.
        self.losses = [
            np.stack(
                [-np.log(np.clip(1 - p.y_score[self.blocks[0]], eps, 1 - eps)) for p in preds], 1
            ),
            np.stack([-np.log(np.clip(p.y_score[self.blocks[1]], eps, 1 - eps)) for p in preds], 1),
        ]
        self.aucs = [_AucSide(p.y_score[self.blocks[0]], p.y_score[self.blocks[1]]) for p in preds]

    def point_weights(self, row_weights: np.ndarray | None) -> list[np.ndarray]:
        if row_weights is None:
            return [np.ones((1, len(rows)), dtype=np.uint8) for rows in self.blocks]
        return [row_weights[rows][None, :].astype(np.int64) for rows in self.blocks]

    def draw(self, rng: np.random.Generator, b: int) -> list[np.ndarray]:
        return [_poisson_rows(rng, b, len(rows)) for rows in self.blocks]

    def values(self, w: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        out: list[dict[str, np.ndarray]] = [{} for _ in self.aucs]
        if "log_loss" in self.metrics:
            total = sum(x.sum(axis=1, dtype=np.int64) for x in w)
            sums = sum(x.astype(np.float64) @ loss for x, loss in zip(w, self.losses, strict=True))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sums / total[:, None]
            for s, vals in enumerate(out):
                vals["log_loss"] = mean[:, s]
        if "roc_auc" in self.metrics:
            for auc, vals in zip(self.aucs, out, strict=True):
                vals["roc_auc"] = auc.value(w[0], w[1])
        return out


class _AucSide:
    """Weighted Mann-Whitney statistic of one side, rows already in block order.

    AUC = sum over positive i of w_i * (negative weight scored below i + half of that tied with i),
    divided by (positive weight * negative weight). One cumulative sum runs over the smaller class
    (sorted by this side's score); the other class reads it at precomputed positions.
    """

    def __init__(self, neg_score: np.ndarray, pos_score: np.ndarray) -> None:
        self.cum_neg = len(neg_score) <= len(pos_score)
        cum, other = (neg_score, pos_score) if self.cum_neg else (pos_score, neg_score)
        order = np.argsort(cum, kind="stable")
        self.perm = None if np.all(order == np.arange(len(order))) else order
        sorted_cum = cum[order]
        # Positions in the zero-padded cumulative sum: weight strictly below / up to each score.
        self.lo = np.searchsorted(sorted_cum, other, side="left")
        self.hi = np.searchsorted(sorted_cum, other, side="right")
        self.ties = bool(np.any(self.lo != self.hi))

    def value(self, w_neg: np.ndarray, w_pos: np.ndarray) -> np.ndarray:
        w_cum, w_other = (w_neg, w_pos) if self.cum_neg else (w_pos, w_neg)
        if self.perm is not None:
            w_cum = np.take(w_cum, self.perm, axis=1)
        b, n = w_cum.shape
        # Exact integers. uint8 weights are ones or table draws (<= 9), so int32 cannot overflow
        # below 2^22 cells: sums <= 9 * 2^22, products with a weight <= 2 * 81 * 2^22 < 2^31.
        acc = np.int32 if w_cum.dtype == np.uint8 and b * n < (1 << 22) else np.int64
        # One flat cumulative sum (faster than one per row); row r's prefix sums are
        # flat[r*n : r*n + n + 1] minus flat[r*n], a strided view whose rows overlap by one.
        flat = np.zeros(b * n + 1, dtype=acc)
        np.cumsum(w_cum.reshape(-1), dtype=acc, out=flat[1:])
        cum = np.lib.stride_tricks.as_strided(
            flat, shape=(b, n + 1), strides=(n * flat.itemsize, flat.itemsize), writeable=False
        )
        at = np.take(cum, self.lo, axis=1)
        if self.ties:
            at += np.take(cum, self.hi, axis=1)
        else:
            at *= 2
        n_other = w_other.sum(axis=1, dtype=np.int64)
        start = cum[:, 0].astype(np.int64)
        # 2 * sum over the other class of w * (cum weight below + half tied), offsets removed.
        twice = (at * w_other).sum(axis=1, dtype=np.int64) - 2 * start * n_other
        n_cum = cum[:, -1].astype(np.int64) - start
        pairs = n_cum * n_other
        if not self.cum_neg:  # counted negatives against positives above: flip to "below"
            twice = 2 * pairs - twice
        with np.errstate(invalid="ignore", divide="ignore"):
            return twice / (2.0 * pairs)


# --- rmse, mae, r2 ------------------------------------------------------------------------------


class _RegressionGroup(_Group):
    def __init__(self, preds: list[Predictions], sides: list[int], wanted: set[str]) -> None:
        self.sides = sides
        self.metrics = [m for m in ("rmse", "mae", "r2") if m in wanted]
        self.n_units = self.chunk_width = len(preds[0])
        cols = []
        for p in preds:
            err = p.y_true - p.y_pred
            # Centring keeps sum(w y^2) - sum(w y)^2 / sum(w) free of cancellation.
            yc = p.y_true - p.y_true.mean()
            cols += [err * err, np.abs(err), yc, yc * yc]
        self.features = np.stack(cols, axis=1)

    def point_weights(self, row_weights: np.ndarray | None) -> np.ndarray:
        if row_weights is None:
            return np.ones((1, self.n_units))
        return row_weights[None, :].astype(np.float64)

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        return _poisson_rows(rng, b, self.n_units).astype(np.float64)

    def values(self, w: np.ndarray) -> list[dict[str, np.ndarray]]:
        sums = w @ self.features
        total = w.sum(axis=1)
        out = []
        for s in range(len(self.sides)):
            sse, sae, sy, syy = (sums[:, 4 * s + j] for j in range(4))
            with np.errstate(invalid="ignore", divide="ignore"):
                sst = syy - sy * sy / total
                # scikit-learn: perfect fit -> 1.0; constant target with errors -> 0.0.
                flat = sst <= 1e-12 * syy
                r2 = np.where(sse == 0, 1.0, np.where(flat, 0.0, 1 - sse / np.where(flat, 1, sst)))
                vals = {"rmse": np.sqrt(sse / total), "mae": sae / total, "r2": r2}
            out.append({m: vals[m] for m in self.metrics})
        return out


__all__ = [
    "METRICS",
    "DeltaCI",
    "Deltas",
    "InvalidPredictions",
    "InvalidStatsOptions",
    "MetricInfo",
    "PointMetrics",
    "Predictions",
    "bootstrap_deltas",
    "load_predictions",
    "point_metrics",
    "task_of",
]
