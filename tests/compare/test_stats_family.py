"""The joint bootstrap over slices and its simultaneous intervals (`stats.bootstrap_family`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_ci.compare.family import NORMAL_LIMIT, NORMAL_LIMIT_ROWS, make_segment_groups
from mlops_ci.compare.stats import Predictions, bootstrap_family

CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")


def _pair(rng: np.random.Generator, n: int, *, score_round: int = 4):
    y = (rng.random(n) < 0.4).astype(int)
    shared = rng.normal(0, 1, n)
    sides = []
    for _ in range(2):
        s = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + shared + 0.5 * rng.normal(0, 1, n))))
        s = np.round(s, score_round)
        sides.append(Predictions.from_arrays(y, (s > 0.5).astype(int), s))
    region = np.array(["eu", "us", "apac"])[rng.choice(3, n, p=[0.5, 0.3, 0.2])]
    return sides, region


def _sklearn(y, p, s) -> dict[str, float]:
    return {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, zero_division=0),
        "recall": skm.recall_score(y, p, zero_division=0),
        "f1": skm.f1_score(y, p, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, s),
        "log_loss": skm.log_loss(y, s, labels=[0, 1]),
    }


def test_every_slice_s_point_metrics_equal_sklearn_on_its_rows() -> None:
    (base, cand), region = _pair(np.random.default_rng(1), 900)
    family = bootstrap_family(base, cand, slices={"region": (region, region)}, n_resamples=50)
    assert [s.label for s in family.segments] == [
        "all rows", "region=apac", "region=eu", "region=us",
    ]  # fmt: skip
    for seg, deltas in zip(family.segments, family.deltas, strict=True):
        rows = np.arange(900) if seg.column is None else np.flatnonzero(region == seg.value)
        for side, attr in ((base, "baseline"), (cand, "candidate")):
            want = _sklearn(side.y_true[rows], side.y_pred[rows], side.y_score[rows])
            for name, value in want.items():
                assert getattr(deltas[name], attr) == pytest.approx(value, rel=1e-12), (seg, name)


def test_resampled_slices_equal_sklearn_on_repeated_rows() -> None:
    """Exact path: one weight per row, the same for the whole set and for each slice."""
    rng = np.random.default_rng(2)
    (base, cand), region = _pair(rng, 300, score_round=2)
    segs = [np.arange(300), *(np.flatnonzero(region == v) for v in ("eu", "us"))]
    groups = make_segment_groups(
        [base, cand], CLASSIFICATION, [segs, segs], paired=True, labels=np.array([0, 1]),
        binary=True,
    )  # fmt: skip
    (_, discrete), (_, score) = groups
    assert score.approximation is None
    w = score.draw(rng, 3)
    got = score.values(w)
    for r in range(3):
        for g, rows in enumerate(segs):
            for side, p in enumerate((base, cand)):
                k = w[r, rows].astype(int)
                y, s = np.repeat(p.y_true[rows], k), np.repeat(p.y_score[rows], k)
                assert got[side]["roc_auc", g][r] == pytest.approx(skm.roc_auc_score(y, s))
                assert got[side]["log_loss", g][r] == pytest.approx(skm.log_loss(y, s))
    counts = discrete.draw(rng, 2)
    got = discrete.values(counts)
    # Unit u stands for rows of one label combination and slice cell: repeat its codes.
    for r in range(2):
        for g, units in enumerate(discrete.units):
            k = counts[r, units].astype(int)
            y = np.repeat(discrete.true[units], k)
            for side, pred in enumerate(discrete.preds):
                p = np.repeat(pred[units], k)
                assert got[side]["accuracy", g][r] == pytest.approx(skm.accuracy_score(y, p))
                assert got[side]["f1", g][r] == pytest.approx(skm.f1_score(y, p))


def test_intervals_that_hold_together_are_wider_than_one_at_a_time() -> None:
    (base, cand), region = _pair(np.random.default_rng(4), 4000)
    family = bootstrap_family(base, cand, slices={"region": (region, region)}, seed=1)
    assert family.members == 6 * 4
    # Two-sided 95% for 24 correlated members: between one at a time and Bonferroni's.
    assert 1.96 < family.critical < 3.3
    for name, ci in family.overall.items():
        alone = bootstrap_family(base, cand, [name], seed=1).overall[name]  # one member
        assert ci.low <= ci.delta <= ci.high
        assert ci.high - ci.low > alone.high - alone.low
    single = bootstrap_family(base, cand, ["accuracy"], seed=1)
    assert single.members == 1 and 1.8 < single.critical < 2.1  # one member: about 1.96


def test_noise_bands_take_their_share_of_the_error() -> None:
    (base, cand), _ = _pair(np.random.default_rng(5), 2000)
    alone = bootstrap_family(base, cand, seed=2)
    shared = bootstrap_family(base, cand, seed=2, band_members=6)
    assert alone.level == pytest.approx(0.95)
    assert shared.level == pytest.approx(1 - 0.05 * 6 / 12)  # half of the error goes to bands
    assert shared.critical > alone.critical


def test_small_slices_are_reported_not_gated() -> None:
    (base, cand), region = _pair(np.random.default_rng(6), 600)
    family = bootstrap_family(
        base, cand, slices={"region": (region, region)}, min_slice=150, n_resamples=200
    )
    small = [i for i, s in enumerate(family.segments) if not s.gated]
    assert [family.segments[i].label for i in small] == ["region=apac"]  # ~120 rows
    ci = family.deltas[small[0]]["accuracy"]
    assert math.isnan(ci.low) and math.isnan(ci.high) and math.isfinite(ci.delta)
    assert family.members == 6 * 3


def test_unpaired_sides_slice_by_their_own_columns() -> None:
    rng = np.random.default_rng(7)
    (base, _), region0 = _pair(rng, 500)
    (_, cand), region1 = _pair(rng, 700)
    cand = Predictions.from_arrays(
        cand.y_true, cand.y_pred, cand.y_score, ids=np.arange(700) + 10_000
    )
    family = bootstrap_family(
        base, cand, ["accuracy"], slices={"region": (region0, region1)}, n_resamples=200
    )
    eu = family.segments.index(next(s for s in family.segments if s.value == "eu"))
    assert family.segments[eu].n_baseline == (region0 == "eu").sum()
    assert family.segments[eu].n_candidate == (region1 == "eu").sum()
    assert family.deltas[eu]["accuracy"].method == "unpaired-bootstrap"


def test_regression_slices_equal_sklearn_and_a_slice_missing_on_one_side_is_not_gated() -> None:
    rng = np.random.default_rng(8)
    y0, y1 = rng.normal(5, 2, 400), rng.normal(5, 2, 300)
    base = Predictions.from_arrays(y0, y0 + rng.normal(0, 1, 400))
    cand = Predictions.from_arrays(y1, y1 + rng.normal(0, 1, 300), ids=np.arange(300) + 1000)
    r0 = np.where(np.arange(400) < 200, "x", "y")
    r1 = np.where(np.arange(300) < 150, "x", "z")  # "y" only at the baseline, "z" only here
    family = bootstrap_family(base, cand, slices={"part": (r0, r1)}, min_slice=50, n_resamples=200)
    labels = {s.value: (i, s) for i, s in enumerate(family.segments)}
    i, x = labels["x"]
    assert x.gated and family.deltas[i]["mae"].baseline == pytest.approx(
        skm.mean_absolute_error(y0[:200], base.y_pred[:200])
    )
    assert family.deltas[i]["r2"].candidate == pytest.approx(
        skm.r2_score(y1[:150], cand.y_pred[:150])
    )
    for value in ("y", "z"):
        j, seg = labels[value]
        assert not seg.gated and min(seg.n_baseline, seg.n_candidate) == 0
        assert math.isnan(family.deltas[j]["rmse"].low)
    assert family.members == 3 * 2  # rmse, mae, r2 on all rows and on "x"


def _regression_pair(rng: np.random.Generator, n: int):
    y = rng.normal(10, 3, n)
    base = Predictions.from_arrays(y, y + rng.normal(0, 1.0, n))
    cand = Predictions.from_arrays(y, y + rng.normal(0.05, 1.1, n))
    return base, cand


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_the_normal_limit_holds_to_the_exact_path_just_above_its_threshold(kind: str) -> None:
    """From NORMAL_LIMIT_ROWS rows the score and regression families are resampled through
    their normal limit (the AUC by its projection): the only approximation. Just above the
    threshold, and with the threshold forced above the input for the exact path, the point
    deltas are the same and the intervals agree to within the Monte Carlo error of 1,000
    resamples, on all rows and every slice: two runs differ by about 3% in their critical value
    or a width (one standard deviation, over seeds of either path); the tolerances are three."""
    n = NORMAL_LIMIT_ROWS + 1
    rng = np.random.default_rng(11)
    if kind == "classification":
        (base, cand), region = _pair(rng, n)
        metrics = ["roc_auc", "log_loss"]
    else:
        base, cand = _regression_pair(rng, n)
        region = np.array(["eu", "us", "apac"])[rng.choice(3, n, p=[0.5, 0.3, 0.2])]
        metrics = ["rmse", "mae", "r2"]
    kwargs = {"slices": {"region": (region, region)}, "n_resamples": 1000, "seed": 3}
    normal = bootstrap_family(base, cand, metrics, **kwargs)
    exact = bootstrap_family(base, cand, metrics, normal_limit_rows=n + 1, **kwargs)
    assert (normal.approximation, exact.approximation) == (NORMAL_LIMIT, None)
    assert normal.critical == pytest.approx(exact.critical, rel=0.1)
    for a, b in zip(exact.deltas, normal.deltas, strict=True):
        for name in metrics:
            ea, nb = a[name], b[name]
            assert nb.delta == pytest.approx(ea.delta, abs=1e-12)
            assert nb.high + nb.low == pytest.approx(ea.high + ea.low, abs=1e-12)  # centred alike
            assert nb.high - nb.low == pytest.approx(ea.high - ea.low, rel=0.12), name
