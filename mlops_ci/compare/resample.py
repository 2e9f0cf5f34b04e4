"""The bootstrap's building blocks: Poisson(1) weights, chunks, and the two metric kernels that
are not plain weighted sums (counts of label combinations, the weighted AUC).

`family` builds its metric groups from these; see the `mlops_ci.compare.stats` docstring for
why each metric family is computed the way it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

from mlops_ci.compare.numeric import np

DISCRETE = ("accuracy", "precision", "recall", "f1")
SCORE = ("roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")

# Resamples x rows handled at once: bounds memory (~40 MB of work arrays) and keeps them in cache.
_CHUNK_CELLS = 1 << 21

Values = list[dict[str, np.ndarray]]  # per side: metric -> one value per resample


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


def chunks(n_resamples: int, n_units: int) -> list[int]:
    """Resamples per chunk, so that one chunk holds about `_CHUNK_CELLS` weights."""
    size = max(1, min(n_resamples, _CHUNK_CELLS // max(n_units, 1)))
    return [min(size, n_resamples - start) for start in range(0, n_resamples, size)]


# --- accuracy, precision, recall, f1: counts of label combinations ------------------------------


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
