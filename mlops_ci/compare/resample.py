"""The bootstrap machinery behind `mlops_ci.compare.stats`: Poisson(1) weights, chunks, metric groups.

A *group* is a set of rows that share weights (both sides of a pair, or one side) together with
one family of metrics; it turns a (resamples x units) weight matrix into metric values per side.
See the `mlops_ci.compare.stats` docstring for why each family is computed the way it is.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from mlops_ci.compare.numeric import np
from mlops_ci.compare.predictions import Predictions

DISCRETE = ("accuracy", "precision", "recall", "f1")
SCORE = ("roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")

# Resamples x rows handled at once: bounds memory (~40 MB of work arrays) and keeps them in cache.
_CHUNK_CELLS = 1 << 21

Values = list[dict[str, np.ndarray]]  # per side of the group: metric -> one value per resample

# Rows per side from which the groups are built and resampled on two threads: their sorts and
# products let go of the interpreter, and a million rows a side take 0.6 s to build one after
# the other. Each group draws from its own stream, so the answer does not depend on the order.
THREADED_ROWS = 20_000


def run_groups(
    jobs: Sequence[tuple[tuple[int, int], Callable[[], Any]]],
    seed: int,
    n_resamples: int,
    *,
    rows: int,
) -> tuple[list[dict[Any, float]], list[dict[Any, np.ndarray]]]:
    """Point values and resampled values per side (baseline, candidate) of the groups `jobs`
    build; job = (random stream, a function building the group). On two threads from
    `THREADED_ROWS` rows when the process may use two cores."""

    def run(job: tuple[tuple[int, int], Callable[[], Any]]) -> tuple[Any, Any, Any]:
        stream, build = job
        group = build()
        resampled = group.resampled(np.random.default_rng([seed, *stream]), n_resamples)
        return group.sides, group.point(), resampled

    if rows < THREADED_ROWS or len(jobs) < 2 or _usable_cores() < 2:
        done = [run(job) for job in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(pool.map(run, jobs))
    points: list[dict[Any, float]] = [{}, {}]
    draws: list[dict[Any, np.ndarray]] = [{}, {}]
    for sides, at_points, at_draws in done:
        for side, at_point, side_draws in zip(sides, at_points, at_draws, strict=True):
            points[side].update(at_point)
            draws[side].update(side_draws)
    return points, draws


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_groups(
    sides: list[Predictions],
    metrics: Sequence[str],
    *,
    paired: bool,
    labels: np.ndarray,
    binary: bool,
) -> list[tuple[tuple[int, int], Group]]:
    """(random stream, group) per metric family and set of rows sharing weights.

    A pair shares one set of weights. The stream depends on the family and the side only,
    so an interval does not move when other metrics are asked for too.
    """
    families: list[tuple[tuple[str, ...], Callable[..., Group]]] = [
        (DISCRETE, lambda *args: DiscreteGroup(*args, labels=labels, binary=binary)),
        (SCORE, ScoreGroup),
        (REGRESSION, RegressionGroup),
    ]
    members = [[0, 1]] if paired else [[i] for i in range(len(sides))]
    out: list[tuple[tuple[int, int], Group]] = []
    for idx in members:
        preds = [sides[i] for i in idx]
        for stream, (family, build) in enumerate(families):
            chosen = [m for m in family if m in metrics]
            if chosen:
                out.append(((stream, idx[0]), build(preds, idx, chosen)))
    return out


# --- weights ------------------------------------------------------------------------------------


@cache
def poisson_table() -> np.ndarray:
    """uint16 -> Poisson(1) draw by inverse CDF at the midpoint of each of the 2^16 cells."""
    cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(20)])
    cells = (np.arange(1 << 16) + 0.5) / (1 << 16)
    return np.searchsorted(cdf, cells, side="right").astype(np.uint8)


def poisson_rows(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """(b, n) uint8 Poisson(1) weights from 16 random bits each."""
    bits = np.frombuffer(rng.bytes(2 * b * n), dtype="<u2").reshape(b, n)
    return np.take(poisson_table(), bits)  # take: ~3x faster than fancy indexing here


# 256 cells whose counts give weights 0..5 with mean 1, variance 1 and third central moment
# 0.96 (Poisson(1): 1, 1, 1): one random byte per weight, half the bits and lookups of the
# 16-bit table, for the resamples where millions of rows make drawing the cost.
POISSON_BYTE_COUNTS = (95, 92, 49, 15, 4, 1)


def poisson_bytes(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """(b, n) uint8 weights from one random byte each (see POISSON_BYTE_COUNTS): the weight is
    how many of the cumulative counts the byte reaches, five comparisons being cheaper than
    a table lookup per byte."""
    out = np.empty((b, n), dtype=np.uint8)
    edges = np.cumsum(POISSON_BYTE_COUNTS)[:-1].astype(np.uint8)
    step = max(1, (1 << 19) // max(n, 1))  # slabs that stay in cache across the comparisons
    for start in range(0, b, step):
        rows = min(step, b - start)
        bits = np.frombuffer(rng.bytes(rows * n), dtype=np.uint8).reshape(rows, n)
        slab = out[start : start + rows]
        np.greater_equal(bits, edges[0], out=slab)
        for edge in edges[1:]:
            slab += bits >= edge
    return out


def chunks(n_resamples: int, n_units: int) -> list[int]:
    """Resamples per chunk, so that one chunk holds about `_CHUNK_CELLS` weights."""
    size = max(1, min(n_resamples, _CHUNK_CELLS // max(n_units, 1)))
    return [min(size, n_resamples - start) for start in range(0, n_resamples, size)]


class Group:
    """Rows of one or two sides that share weights; subclasses turn weights into metric values."""

    sides: list[int]  # indices of the sides (0 baseline, 1 candidate) this group computes
    metrics: list[str]
    chunk_width: int = 1  # weights drawn per resample, to size chunks

    def point_weights(self, row_weights: np.ndarray | None) -> Any:
        """Weights of the one sample in which row i appears row_weights[i] times (default once)."""
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, b: int) -> Any:
        raise NotImplementedError

    def values(self, weights: Any) -> Values:
        raise NotImplementedError

    def point(self, row_weights: np.ndarray | None = None) -> list[dict[str, float]]:
        """Metric values of the (weighted) sample itself, per side."""
        return [
            {name: float(v[0]) for name, v in side.items()}
            for side in self.values(self.point_weights(row_weights))
        ]

    def resampled(self, rng: np.random.Generator, n_resamples: int) -> Values:
        parts = [self.values(self.draw(rng, b)) for b in chunks(n_resamples, self.chunk_width)]
        return [
            {name: np.concatenate([p[s][name] for p in parts]) for name in parts[0][s]}
            for s in range(len(self.sides))
        ]


# --- accuracy, precision, recall, f1: counts of label combinations ------------------------------


class DiscreteGroup(Group):
    def __init__(
        self,
        preds: list[Predictions],
        sides: list[int],
        metrics: list[str],
        *,
        labels: np.ndarray,
        binary: bool,
    ) -> None:
        self.sides, self.metrics, self.binary = sides, metrics, binary
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
        pos = int(np.searchsorted(labels, 1)) if binary and 1 in labels else -1
        self.pos, self.true_pos = pos, self.true == pos
        # Once combinations are nearly as many as rows, per-row table draws beat Poisson(m).
        self.by_row = self.n_units * 8 > self.n_rows
        self.chunk_width = self.n_rows if self.by_row else self.n_units

    def point_weights(self, row_weights: np.ndarray | None) -> np.ndarray:
        if row_weights is None:
            return self.counts[None, :].astype(np.float64)
        return np.bincount(self.inverse, weights=row_weights, minlength=self.n_units)[None, :]

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        return unit_weights(rng, b, self.inverse, self.counts, by_row=self.by_row)

    def values(self, w: np.ndarray) -> Values:
        return discrete_values(
            w, self.true, self.preds, metrics=self.metrics, k=self.k, binary=self.binary,
            pos=self.pos,
        )  # fmt: skip


def unit_weights(
    rng: np.random.Generator, b: int, inverse: np.ndarray, counts: np.ndarray, *, by_row: bool
) -> np.ndarray:
    """`b` resampled weights of each unit (rows sharing labels, and slice cell): Poisson(count)
    per unit, or with `by_row` (units nearly as many as rows) one Poisson(1) per row summed
    into its unit (`inverse`: the unit of each row)."""
    if by_row:
        w = poisson_rows(rng, b, len(inverse)).astype(np.float64)
        return np.stack([np.bincount(inverse, weights=r, minlength=len(counts)) for r in w])
    return rng.poisson(counts, size=(b, len(counts))).astype(np.float64)


def discrete_values(
    w: np.ndarray,
    true: np.ndarray,
    preds: list[np.ndarray],
    *,
    metrics: Sequence[str],
    k: int,
    binary: bool,
    pos: int,
) -> Values:
    """accuracy, precision, recall, f1 per side from a (resamples x units) weight matrix, where
    unit u stands for the rows whose label code is true[u] and prediction codes preds[s][u]."""
    total = w.sum(axis=1)
    true_pos = true == pos
    out = []
    for pred in preds:
        hit = true == pred
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = {"accuracy": w @ hit / total}
            if binary:  # scikit-learn's average="binary", pos_label=1
                tp = (w @ (hit & true_pos))[:, None]
                npred = (w @ (pred == pos))[:, None]
                ntrue = (w @ true_pos)[:, None]
                present = np.ones_like(tp, dtype=bool)
            else:
                tp = _by_label(w, true, hit, k)
                npred = _by_label(w, pred, None, k)
                ntrue = _by_label(w, true, None, k)
                present = (npred + ntrue) > 0
            per_label = {
                "precision": np.where(npred > 0, tp / npred, 0.0),
                "recall": np.where(ntrue > 0, tp / ntrue, 0.0),
                "f1": np.where(npred + ntrue > 0, 2 * tp / (npred + ntrue), 0.0),
            }
            n_present = present.sum(axis=1)
            for name, v in per_label.items():
                vals[name] = np.where(present, v, 0.0).sum(axis=1) / n_present
        out.append({m: vals[m] for m in metrics})
    return out


def _by_label(w: np.ndarray, codes: np.ndarray, mask: np.ndarray | None, k: int) -> np.ndarray:
    """(b, k) weighted counts of units per label code, over units where `mask` holds."""
    n_units = w.shape[1]
    rows = np.arange(n_units) if mask is None else np.flatnonzero(mask)
    if n_units * k <= 4_000_000:
        onehot = np.zeros((n_units, k))
        onehot[rows, codes[rows]] = 1.0
        return w @ onehot
    from scipy import sparse  # only for very many labels and combinations

    onehot = sparse.csr_matrix((np.ones(len(rows)), (rows, codes[rows])), shape=(n_units, k))
    return np.asarray((onehot.T @ w.T).T)


# --- roc_auc and log_loss: rows sorted by score, negatives and positives apart -----------------


class ScoreGroup(Group):
    def __init__(self, preds: list[Predictions], sides: list[int], metrics: list[str]) -> None:
        self.sides, self.metrics = sides, metrics
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
                [
                    -np.log(
                        np.clip(p.y_score[rows] if label else 1 - p.y_score[rows], eps, 1 - eps)
                    )
                    for p in preds
                ],
                axis=1,
            )
            for label, rows in enumerate(self.blocks)
        ]
        self.aucs = [AucSide(p.y_score[self.blocks[0]], p.y_score[self.blocks[1]]) for p in preds]

    def point_weights(self, row_weights: np.ndarray | None) -> list[np.ndarray]:
        if row_weights is None:
            return [np.ones((1, len(rows)), dtype=np.uint8) for rows in self.blocks]
        return [row_weights[rows][None, :].astype(np.int64) for rows in self.blocks]

    def draw(self, rng: np.random.Generator, b: int) -> list[np.ndarray]:
        return [poisson_rows(rng, b, len(rows)) for rows in self.blocks]

    def values(self, w: list[np.ndarray]) -> Values:
        out: Values = [{} for _ in self.aucs]
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


class AucSide:
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


class RegressionGroup(Group):
    def __init__(self, preds: list[Predictions], sides: list[int], metrics: list[str]) -> None:
        self.sides, self.metrics = sides, metrics
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
        return poisson_rows(rng, b, self.n_units).astype(np.float64)

    def values(self, w: np.ndarray) -> Values:
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
