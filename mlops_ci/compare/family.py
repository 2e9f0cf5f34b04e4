"""The joint bootstrap of every metric on the whole test set and on each slice.

A slice is a subset of the same rows with the same weights, so one draw of weights per resample
feeds the whole set and every slice: the resampled metrics of all of them come from one joint
distribution, which `stats.bootstrap_family` needs for simultaneous intervals. A *segment* is
the whole set (segment 0) or one slice; values are keyed by (metric, segment).

Each metric family draws its own stream: counts (accuracy, precision, recall, f1) draw
Poisson(m) weights per combination of labels and slice cells, exactly at any size; scores
(roc_auc, log_loss) and regression draw one weight per row. From `NORMAL_LIMIT_ROWS` rows those
two take the one approximation of the bootstrap ("normal-limit"): the resampled AUC is its
first-order (Hajek) projection, `AUC + sum_i (w_i - 1) psi_i` with psi from the placement values
(DeLong's structural components), and the resampled sums behind it, log loss and the regression
metrics (`sum_i w_i c_i`, independent weights of mean and variance 1) are drawn from their
normal limit, mean `sum_i c_i` and covariance C'C. That costs O(n k^2) once instead of O(n)
per resample; a test holds it to the exact path just above the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from mlops_ci.compare.numeric import np
from mlops_ci.compare.predictions import Predictions
from mlops_ci.compare.resample import (
    DISCRETE,
    REGRESSION,
    SCORE,
    AucSide,
    chunks,
    discrete_values,
    poisson_rows,
    unit_weights,
)

# Rows of a group from which its score and regression families are resampled through the normal
# limit: exact resampling of 20,000 rows takes about half a second at 1,000 resamples and grows
# with rows x resamples; the normal limit takes about a second for a million rows.
NORMAL_LIMIT_ROWS = 20_000
NORMAL_LIMIT = "normal-limit"

Key = tuple[str, int]  # (metric, segment)
FamilyValues = list[dict[Key, np.ndarray]]  # per side of the group
Job = tuple[tuple[int, int], Callable[[], "SegmentGroup"]]


class SegmentGroup:
    """Rows of one or two sides sharing weights, one metric family, every segment."""

    sides: list[int]
    metrics: list[str]
    chunk_width: int = 1
    approximation: str | None = None  # NORMAL_LIMIT: resampled sums drawn from their normal limit

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        raise NotImplementedError

    def values(self, w: np.ndarray) -> FamilyValues:
        raise NotImplementedError

    def weights_of(self, rows: np.ndarray | None) -> np.ndarray:
        """(1, units) weights of the sample in which row i appears rows[i] times (None: once)."""
        raise NotImplementedError

    def point(self, rows: np.ndarray | None = None) -> list[dict[Key, float]]:
        """Metric values of the sample itself, or of the sample weighted by `rows`, per side."""
        return [
            {k: float(v[0]) for k, v in side.items()} for side in self.values(self.weights_of(rows))
        ]

    def from_sums(self, sums: np.ndarray) -> FamilyValues:
        raise NotImplementedError

    def sum_columns(self) -> np.ndarray:
        raise NotImplementedError

    def resampled(self, rng: np.random.Generator, n_resamples: int) -> FamilyValues:
        if self.approximation == NORMAL_LIMIT:
            return self.from_sums(gaussian_sums(self.sum_columns(), rng, n_resamples))
        parts = [self.values(self.draw(rng, b)) for b in chunks(n_resamples, self.chunk_width)]
        return [
            {key: np.concatenate([p[s][key] for p in parts]) for key in parts[0][s]}
            for s in range(len(self.sides))
        ]


def segment_group_jobs(
    sides: list[Predictions],
    metrics: Sequence[str],
    segments: list[list[np.ndarray]],
    *,
    paired: bool,
    labels: np.ndarray,
    binary: bool,
    normal_limit_rows: int | None = NORMAL_LIMIT_ROWS,
) -> list[Job]:
    """(random stream, a function building the group) per metric family and set of rows
    sharing weights. The stream depends on the family and the side only, so the resampled
    values of a metric do not move when other metrics are asked for too.

    `segments[s]` holds, per side s, the row indices of each segment (segment 0: every row);
    a pair shares its rows, so both sides' lists are the same. `normal_limit_rows`: from this
    many rows the score and regression families take the normal limit (None: never).
    """
    members = [[0, 1]] if paired else [[i] for i in range(len(sides))]
    out: list[Job] = []
    for idx in members:
        preds, segs = [sides[i] for i in idx], segments[idx[0]]
        normal = normal_limit_rows is not None and len(preds[0]) >= normal_limit_rows
        chosen = [m for m in DISCRETE if m in metrics]
        if chosen:
            out.append(
                ((0, idx[0]), partial(DiscreteSegments, preds, idx, chosen, segs, labels, binary))
            )
        chosen = [m for m in SCORE if m in metrics]
        if chosen:
            out.append(
                ((1, idx[0]), partial(ScoreSegments, preds, idx, chosen, segs, normal=normal))
            )
        chosen = [m for m in REGRESSION if m in metrics]
        if chosen:
            build = partial(RegressionSegments, preds, idx, chosen, segs, normal=normal)
            out.append(((2, idx[0]), build))
    return out


def make_segment_groups(*args: Any, **kwargs: Any) -> list[tuple[tuple[int, int], SegmentGroup]]:
    """(random stream, group) per job of `segment_group_jobs` (same arguments), built here."""
    return [(stream, build()) for stream, build in segment_group_jobs(*args, **kwargs)]


def run_groups(
    jobs: Sequence[Job], seed: int, n_resamples: int
) -> tuple[list[dict[Key, float]], list[dict[Key, np.ndarray]], str | None]:
    """Point values and resampled values per side (baseline, candidate) of the groups `jobs`
    build, and the approximation any of them took (None: all exact). Each group is built when
    its turn comes, so one group's columns are held at a time."""
    points: list[dict[Key, float]] = [{}, {}]
    draws: list[dict[Key, np.ndarray]] = [{}, {}]
    approximation = None
    for stream, build in jobs:
        group = build()
        resampled = group.resampled(np.random.default_rng([seed, *stream]), n_resamples)
        for side, at_point, side_draws in zip(group.sides, group.point(), resampled, strict=True):
            points[side].update(at_point)
            draws[side].update(side_draws)
        approximation = approximation or group.approximation
    return points, draws, approximation


def _membership(n: int, segs: list[np.ndarray]) -> np.ndarray:
    """(n, segments - 1) bool: row i is in slice segment g + 1."""
    member = np.zeros((n, max(len(segs) - 1, 0)), dtype=bool)
    for g, rows in enumerate(segs[1:]):
        member[rows, g] = True
    return member


def gaussian_sums(columns: np.ndarray, rng: np.random.Generator, b: int) -> np.ndarray:
    """`b` draws of the resampled column sums sum_i w_i c_i, from their normal limit: mean
    sum_i c_i, covariance C'C (Poisson(1) weights: mean and variance 1, independent)."""
    point = columns.sum(axis=0)
    cov = columns.T @ columns
    # eigh, not Cholesky: columns repeat (one segment weight per side) and C'C is singular.
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return point + rng.standard_normal((b, len(point))) @ root.T


# --- accuracy, precision, recall, f1: counts per label combination and slice cell --------------


class DiscreteSegments(SegmentGroup):
    def __init__(
        self,
        preds: list[Predictions],
        sides: list[int],
        metrics: list[str],
        segs: list[np.ndarray],
        labels: np.ndarray,
        binary: bool,
    ) -> None:
        self.sides, self.metrics, self.binary = sides, metrics, binary
        n, k = len(preds[0]), len(labels)
        # A cell is the set of slices a row belongs to: rows of one cell and one label
        # combination are interchangeable, so they share one Poisson(count) weight.
        member = _membership(n, segs)
        if member.shape[1] <= 62:  # one integer per row: far cheaper than unique rows
            bits = member @ (np.int64(1) << np.arange(member.shape[1], dtype=np.int64))
            _, first, cell = np.unique(bits, return_index=True, return_inverse=True)
            cells = member[first]
        else:
            cells, cell = np.unique(member, axis=0, return_inverse=True)
        cell = cell.reshape(-1)
        codes = [np.searchsorted(labels, preds[0].y_true)]
        codes += [np.searchsorted(labels, p.y_pred) for p in preds]
        key = np.zeros(n, dtype=np.int64)
        for c in codes:
            key = key * k + c
        key = key * len(cells) + cell
        uniq, self.inverse, self.counts = np.unique(key, return_inverse=True, return_counts=True)
        unit_cell, uniq = uniq % len(cells), uniq // len(cells)
        decoded = []
        for _ in codes:
            decoded.append(uniq % k)
            uniq = uniq // k
        self.true, self.preds = decoded[-1], decoded[-2::-1]
        self.k, self.n_rows, self.n_units = k, n, len(self.counts)
        self.pos = int(np.searchsorted(labels, 1)) if binary and 1 in labels else -1
        self.units = [np.arange(self.n_units)]
        self.units += [np.flatnonzero(cells[unit_cell, g]) for g in range(cells.shape[1])]
        self.by_row = self.n_units * 8 > self.n_rows
        self.chunk_width = self.n_rows if self.by_row else self.n_units

    def weights_of(self, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            return self.counts[None, :].astype(np.float64)
        return np.bincount(self.inverse, weights=rows, minlength=self.n_units)[None, :]

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        return unit_weights(rng, b, self.inverse, self.counts, by_row=self.by_row)

    def values(self, w: np.ndarray) -> FamilyValues:
        out: FamilyValues = [{} for _ in self.preds]
        for g, units in enumerate(self.units):
            sub = w if g == 0 else w[:, units]
            preds = self.preds if g == 0 else [p[units] for p in self.preds]
            true = self.true if g == 0 else self.true[units]
            got = discrete_values(
                sub, true, preds, metrics=self.metrics, k=self.k, binary=self.binary,
                pos=self.pos,
            )  # fmt: skip
            for side, vals in zip(out, got, strict=True):
                side.update({(m, g): v for m, v in vals.items()})
        return out


# --- roc_auc and log_loss --------------------------------------------------------------------------


class ScoreSegments(SegmentGroup):
    def __init__(
        self,
        preds: list[Predictions],
        sides: list[int],
        metrics: list[str],
        segs: list[np.ndarray],
        *,
        normal: bool,
    ) -> None:
        self.sides, self.metrics = sides, metrics
        self.approximation = NORMAL_LIMIT if normal else None
        n, y = len(preds[0]), preds[0].y_true
        self.n_rows = self.chunk_width = n
        self.n_sides = len(preds)
        eps = np.finfo(np.float64).eps
        cols: list[np.ndarray] = []
        # Log loss: per side and segment, sum of w * loss and sum of w, one product for all.
        self.loss_at: dict[tuple[int, int], tuple[int, int]] = {}
        if "log_loss" in metrics:
            dens = []
            for rows in segs:  # the weight of a segment, shared by both sides
                den = np.zeros(n)
                den[rows] = 1.0
                dens.append(len(cols))
                cols.append(den)
            for s, p in enumerate(preds):
                loss = -np.log(np.clip(np.where(y == 1, p.y_score, 1 - p.y_score), eps, 1 - eps))
                for g, rows in enumerate(segs):
                    num = np.zeros(n)
                    num[rows] = loss[rows]
                    self.loss_at[s, g] = (len(cols), dens[g])
                    cols.append(num)
        # AUC: exact per segment (weighted Mann-Whitney), or its projection (columns of psi).
        self.blocks = [(rows[y[rows] == 0], rows[y[rows] == 1]) for rows in segs]
        self.aucs: dict[tuple[int, int], AucSide] = {}
        self.auc_point: dict[tuple[int, int], float] = {}
        self.auc_at: dict[tuple[int, int], int] = {}
        if "roc_auc" in metrics:
            scores = np.stack([p.y_score for p in preds])
            for g, (neg, pos) in enumerate(self.blocks):
                if not len(neg) or not len(pos):
                    continue  # one class in this segment: undefined (NaN)
                if normal:
                    for s, (psi, auc) in enumerate(_auc_projection(scores, neg, pos, n)):
                        self.auc_point[s, g], self.auc_at[s, g] = auc, len(cols)
                        cols.append(psi)
                else:
                    for s in range(len(preds)):
                        self.aucs[s, g] = AucSide(scores[s, neg], scores[s, pos])
        self.columns = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        # The projection weighs (w_i - 1): its sums are read minus sum_i psi_i.
        self.column_sums = self.columns.sum(axis=0)

    def weights_of(self, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            return np.ones((1, self.n_rows), dtype=np.uint8)
        return rows[None, :].astype(np.int64)

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        return poisson_rows(rng, b, self.n_rows)

    def sum_columns(self) -> np.ndarray:
        return self.columns

    def from_sums(self, sums: np.ndarray) -> FamilyValues:
        return self._values(sums, None)

    def values(self, w: np.ndarray) -> FamilyValues:
        return self._values(w.astype(np.float64) @ self.columns, w)

    def _values(self, sums: np.ndarray, w: np.ndarray | None) -> FamilyValues:
        """Values from the column sums and, on the exact path, the weights themselves (None:
        the sums were drawn from their normal limit)."""
        out: FamilyValues = [{} for _ in range(self.n_sides)]
        for (s, g), (num, den) in self.loss_at.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s]["log_loss", g] = sums[:, num] / sums[:, den]
        if "roc_auc" not in self.metrics:
            return out
        for g, (neg, pos) in enumerate(self.blocks):
            # Both sides weigh the segment's rows alike: gather its weights once.
            wn = wp = None
            for s in range(self.n_sides):
                if (s, g) in self.auc_at:
                    col = self.auc_at[s, g]
                    if w is None:
                        shift = sums[:, col] - self.column_sums[col]
                    else:  # (w - 1) psi: exactly zero at the sample itself
                        shift = (w - 1.0) @ self.columns[:, col]
                    out[s]["roc_auc", g] = self.auc_point[s, g] + shift
                elif (s, g) in self.aucs:
                    assert w is not None  # an exact group is never drawn from sums
                    if wn is None:
                        wn, wp = np.take(w, neg, axis=1), np.take(w, pos, axis=1)
                    out[s]["roc_auc", g] = self.aucs[s, g].value(wn, wp)
                else:
                    out[s]["roc_auc", g] = np.full(len(sums), np.nan)
        return out


def _auc_projection(
    scores: np.ndarray, neg: np.ndarray, pos: np.ndarray, n: int
) -> list[tuple[np.ndarray, float]]:
    """(psi over all n rows, AUC) of one segment for each side (a row of `scores`), both sides
    sorted in one call: psi_i = (V_i - AUC) / n_pos for a positive (V_i: the share of negatives
    scored below it, ties half), (Q_j - AUC) / n_neg for a negative (Q_j: the share of positives
    scored above it); zero outside the segment."""
    s_neg, s_pos = scores[:, neg], scores[:, pos]
    # Sorted queries: searchsorted then walks both arrays in order (3x faster at 1M rows than
    # queries in row order); the orders put the answers back in row order.
    order_neg, order_pos = np.argsort(s_neg, axis=1), np.argsort(s_pos, axis=1)
    sorted_neg = np.take_along_axis(s_neg, order_neg, axis=1)
    sorted_pos = np.take_along_axis(s_pos, order_pos, axis=1)
    out = []
    for sn, sp, on, op in zip(sorted_neg, sorted_pos, order_neg, order_pos, strict=True):
        v = np.empty(len(sp))
        v[op] = np.searchsorted(sn, sp, "left") + np.searchsorted(sn, sp, "right")
        v = v / (2 * len(sn))
        below = np.empty(len(sn))
        below[on] = np.searchsorted(sp, sn, "left") + np.searchsorted(sp, sn, "right")
        q = 1 - below / (2 * len(sp))
        auc = float(v.mean())
        psi = np.zeros(n)
        psi[pos] = (v - auc) / len(pos)
        psi[neg] = (q - auc) / len(neg)
        out.append((psi, auc))
    return out


# --- rmse, mae, r2 ---------------------------------------------------------------------------------


class RegressionSegments(SegmentGroup):
    def __init__(
        self,
        preds: list[Predictions],
        sides: list[int],
        metrics: list[str],
        segs: list[np.ndarray],
        *,
        normal: bool,
    ) -> None:
        self.sides, self.metrics = sides, metrics
        self.approximation = NORMAL_LIMIT if normal else None
        n = self.n_rows = self.chunk_width = len(preds[0])
        self.n_sides, self.n_segs = len(preds), len(segs)
        cols = []
        for p in preds:
            err = p.y_true - p.y_pred
            for rows in segs:
                # Centring (per segment) keeps sum(w y^2) - sum(w y)^2 / sum(w) exact enough.
                yc = np.zeros(n)
                if len(rows):
                    yc[rows] = p.y_true[rows] - p.y_true[rows].mean()
                mask = np.zeros(n)
                mask[rows] = 1.0
                cols += [err * err * mask, np.abs(err) * mask, yc, yc * yc, mask]
        self.features = np.stack(cols, axis=1)

    def weights_of(self, rows: np.ndarray | None) -> np.ndarray:
        return np.ones((1, self.n_rows)) if rows is None else rows[None, :].astype(np.float64)

    def draw(self, rng: np.random.Generator, b: int) -> np.ndarray:
        return poisson_rows(rng, b, self.n_rows).astype(np.float64)

    def sum_columns(self) -> np.ndarray:
        return self.features

    def values(self, w: np.ndarray) -> FamilyValues:
        return self.from_sums(w.astype(np.float64) @ self.features)

    def from_sums(self, sums: np.ndarray) -> FamilyValues:
        out: FamilyValues = []
        for s in range(self.n_sides):
            vals: dict[Key, np.ndarray] = {}
            for g in range(self.n_segs):
                at = 5 * (s * self.n_segs + g)
                sse, sae, sy, syy, total = (sums[:, at + j] for j in range(5))
                with np.errstate(invalid="ignore", divide="ignore"):
                    sst = syy - sy * sy / total
                    flat = sst <= 1e-12 * syy
                    r2 = np.where(
                        sse == 0, 1.0, np.where(flat, 0.0, 1 - sse / np.where(flat, 1, sst))
                    )
                    got = {"rmse": np.sqrt(sse / total), "mae": sae / total, "r2": r2}
                vals.update({(m, g): got[m] for m in self.metrics})
            out.append(vals)
        return out
