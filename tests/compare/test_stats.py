"""Metrics against scikit-learn, bootstrap coverage and noise, and bad files.

The intervals are `bootstrap_family`'s, as `compare` computes them; without slices the family
is one segment, and for one metric its interval is a studentized bootstrap interval.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_ci.compare.family import make_segment_groups
from mlops_ci.compare.intervals import Deltas
from mlops_ci.compare.resample import DISCRETE, poisson_table
from mlops_ci.compare.stats import (
    DeltaCI,
    Predictions,
    bootstrap_family,
    load_predictions,
    point_metrics,
    task_of,
)
from mlops_ci.project.errors import ConfigError


def _overall(base: Predictions, cand: Predictions, metrics=None, **options) -> Deltas:
    """The intervals on all rows, as `compare` computes them (no slices: one segment)."""
    return bootstrap_family(base, cand, metrics, **options).overall


def _sklearn_classification(y, p, s, *, binary: bool) -> dict[str, float]:
    avg = "binary" if binary else "macro"
    out = {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, average=avg, zero_division=0),
        "recall": skm.recall_score(y, p, average=avg, zero_division=0),
        "f1": skm.f1_score(y, p, average=avg, zero_division=0),
    }
    if s is not None:
        out["roc_auc"] = skm.roc_auc_score(y, s)
        out["log_loss"] = skm.log_loss(y, s, labels=[0, 1])
    return out


def _sklearn_regression(y, p) -> dict[str, float]:
    return {
        "rmse": skm.root_mean_squared_error(y, p),
        "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p),
    }


def _assert_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want), (got, getattr(got, "skipped", None))
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


# --- point metrics are scikit-learn's ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_binary_point_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n)
    # Scores rounded to 2 places: many ties, across and within classes. Exact 0 and 1 test clipping.
    s = np.round(np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0, 1), 2)
    p = (s > 0.5).astype(int)
    preds = Predictions.from_arrays(y, p, s)
    _assert_close(point_metrics(preds), _sklearn_classification(y, p, s, binary=True))
    # Integer weights mean repeated rows: the form every bootstrap resample takes.
    w = rng.poisson(1.0, n)
    rep = [np.repeat(a, w) for a in (y, p, s)]
    _assert_close(point_metrics(preds, weights=w), _sklearn_classification(*rep, binary=True))


@pytest.mark.parametrize("seed", range(4))
def test_multiclass_point_metrics_equal_sklearn_macro(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    y = rng.integers(0, 4, n)
    # Label 4 is predicted but never true; label 5 occurs only in rows a resample may drop.
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, 5, n))
    y[:2], p[:2] = 5, 5
    preds = Predictions.from_arrays(y, p)
    got = point_metrics(preds)
    _assert_close(got, _sklearn_classification(y, p, None, binary=False))
    assert set(got.skipped) == {"roc_auc", "log_loss"}
    w = rng.poisson(1.0, n)
    w[:2] = 0
    rep = [np.repeat(a, w) for a in (y, p)]
    _assert_close(
        point_metrics(preds, weights=w), _sklearn_classification(*rep, None, binary=False)
    )


@pytest.mark.parametrize("seed", range(4))
def test_regression_point_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 250
    y = rng.normal(1e3, 2.0, n)  # a large mean: the weighted r2 must not cancel catastrophically
    p = y + rng.normal(0, 1.0, n)
    preds = Predictions.from_arrays(y, p)
    _assert_close(point_metrics(preds), _sklearn_regression(y, p))
    w = rng.poisson(1.0, n)
    _assert_close(
        point_metrics(preds, weights=w), _sklearn_regression(np.repeat(y, w), np.repeat(p, w))
    )


def test_edge_cases_follow_sklearn() -> None:
    # Nothing predicted positive: precision 0 (zero_division=0), as scikit-learn reports.
    y, p = np.array([0, 1, 1, 0]), np.zeros(4, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = _sklearn_classification(y, p, None, binary=True)
    _assert_close(
        point_metrics(Predictions.from_arrays(y, p), ["accuracy", "precision", "recall", "f1"]),
        want,
    )
    # A constant target: r2 is 1.0 for a perfect fit and 0.0 otherwise.
    y = np.full(5, 3.0)
    for pred in (y + 0.5, y):
        got = point_metrics(Predictions.from_arrays(y, pred), ["r2"], task="regression")
        assert got["r2"] == skm.r2_score(y, pred)


def test_task_rule() -> None:
    assert task_of(Predictions.from_arrays([0, 1, 2], [0, 2, 2])) == "classification"
    assert task_of(Predictions.from_arrays([0.0, 1.0], [0.0, 1.0])) == "classification"
    assert task_of(Predictions.from_arrays([1.5, 2.0], [1.4, 2.2])) == "regression"
    many = np.arange(500)
    assert task_of(Predictions.from_arrays(many, many)) == "regression"
    # An explicit task wins over the rule.
    got = point_metrics(Predictions.from_arrays([1, 2, 3], [1, 2, 4]), task="regression")
    assert set(got) == {"rmse", "mae", "r2"}


def test_uncomputable_metrics_are_left_out_with_a_reason() -> None:
    preds = Predictions.from_arrays([0, 1, 1], [0, 1, 0], source="eval/predictions.csv @ main")
    got = point_metrics(preds, ["accuracy", "roc_auc", "rmse", "latency_ms"])
    assert set(got) == {"accuracy"}
    assert "eval/predictions.csv @ main has no y_score" in got.skipped["roc_auc"]
    assert "regression metric" in got.skipped["rmse"]
    assert "not a metric computed from predictions" in got.skipped["latency_ms"]
    one_class = Predictions.from_arrays([1, 1, 1], [1, 0, 1], [0.9, 0.2, 0.7])
    assert "one class" in point_metrics(one_class, ["roc_auc"]).skipped["roc_auc"]
    scores = Predictions.from_arrays([0, 1, 1], [0, 1, 0], [-2.0, 3.0, 0.5])
    got = point_metrics(scores, ["roc_auc", "log_loss"])
    assert set(got) == {"roc_auc"}
    assert "not a probability" in got.skipped["log_loss"]


# --- coverage: the interval holds the true delta at about the nominal rate --------------------


def _covered(ci: DeltaCI, truth: float) -> bool:
    return ci.low <= truth <= ci.high


def _coverage(make, metric: str, truth: float, trials: int = 200) -> float:
    hits = 0
    for trial in range(trials):
        base, cand = make(np.random.default_rng(1000 + trial))
        ci = _overall(base, cand, [metric], seed=trial)[metric]
        hits += _covered(ci, truth)
    return hits / trials


@pytest.mark.slow
def test_coverage_of_paired_accuracy_delta() -> None:
    n = 400

    def make(rng):
        y = rng.integers(0, 2, n)
        u = rng.random(n)
        # Correlated correctness (as two models on one test set): the candidate reuses the
        # baseline's draw for 70% of rows. P(right) is exactly 0.80 and 0.83.
        v = np.where(rng.random(n) < 0.7, u, rng.random(n))
        return (
            Predictions.from_arrays(y, np.where(u < 0.80, y, 1 - y)),
            Predictions.from_arrays(y, np.where(v < 0.83, y, 1 - y)),
        )

    assert 0.91 <= _coverage(make, "accuracy", 0.03) <= 0.99


@pytest.mark.slow
def test_coverage_of_unpaired_accuracy_delta() -> None:
    def make(rng):
        y0, y1 = rng.integers(0, 2, 300), rng.integers(0, 2, 350)
        return (
            Predictions.from_arrays(y0, np.where(rng.random(300) < 0.75, y0, 1 - y0)),
            Predictions.from_arrays(
                y1, np.where(rng.random(350) < 0.80, y1, 1 - y1), ids=np.arange(350) + 10_000
            ),
        )

    base, cand = make(np.random.default_rng(0))
    assert _overall(base, cand, ["accuracy"])["accuracy"].method == "unpaired-bootstrap"
    assert 0.91 <= _coverage(make, "accuracy", 0.05) <= 0.99


@pytest.mark.slow
def test_coverage_of_paired_mae_delta() -> None:
    # Normal errors: E|e| = sigma * sqrt(2 / pi), so the true delta is known exactly.
    n = 300

    def make(rng):
        y = rng.normal(0, 3, n)
        return (
            Predictions.from_arrays(y, y + rng.normal(0, 1.0, n)),
            Predictions.from_arrays(y, y + rng.normal(0, 0.9, n)),
        )

    truth = (0.9 - 1.0) * math.sqrt(2 / math.pi)
    assert 0.91 <= _coverage(make, "mae", truth) <= 0.99


@pytest.mark.slow
def test_coverage_of_paired_roc_auc_delta() -> None:
    # Binormal scores: negatives N(0, 1), positives N(d, 1), so AUC = Phi(d / sqrt(2)).
    n = 300

    def make(rng):
        y = rng.integers(0, 2, n)
        shared = rng.normal(0, 1, n)  # the two models' scores are correlated, as on one test set
        sides = []
        for d in (1.0, 1.3):
            score = d * y + (0.8 * shared + 0.6 * rng.normal(0, 1, n))
            sides.append(Predictions.from_arrays(y, (score > d / 2).astype(int), score))
        return sides

    def phi(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    truth = phi(1.3 / math.sqrt(2)) - phi(1.0 / math.sqrt(2))
    assert 0.91 <= _coverage(make, "roc_auc", truth) <= 0.99


# --- noise: equal models are not called worse; a real drop is caught ----------------


def _accuracy_trial(rng, n: int, p_base: float, p_cand: float) -> tuple[Predictions, Predictions]:
    y = rng.integers(0, 2, n)
    return (
        Predictions.from_arrays(y, np.where(rng.random(n) < p_base, y, 1 - y)),
        Predictions.from_arrays(y, np.where(rng.random(n) < p_cand, y, 1 - y)),
    )


@pytest.mark.slow
def test_same_true_accuracy_is_rarely_called_a_regression() -> None:
    regressed = 0
    for trial in range(100):
        base, cand = _accuracy_trial(np.random.default_rng(trial), 20_000, 0.85, 0.85)
        regressed += _overall(base, cand, ["accuracy"], seed=trial)["accuracy"].regressed()
    assert regressed <= 5


@pytest.mark.slow
def test_a_true_drop_of_three_points_is_caught() -> None:
    caught = 0
    for trial in range(100):
        base, cand = _accuracy_trial(np.random.default_rng(trial), 20_000, 0.85, 0.82)
        caught += _overall(base, cand, ["accuracy"], seed=trial)["accuracy"].regressed()
    assert caught >= 95


def test_regressed_and_improved_follow_the_metric_direction() -> None:
    common = {"baseline": 0.0, "candidate": 0.0, "delta": 0.0, "method": "paired-bootstrap"}
    sizes = {"n_baseline": 10, "n_candidate": 10}
    worse_loss = DeltaCI("log_loss", low=0.01, high=0.05, **common, **sizes)
    assert worse_loss.regressed()
    assert not worse_loss.improved()
    assert not worse_loss.regressed(tolerance=0.02)
    better_auc = DeltaCI("roc_auc", low=0.01, high=0.05, **common, **sizes)
    assert better_auc.improved()
    assert not better_auc.regressed()
    unsure = DeltaCI("accuracy", low=-0.01, high=0.02, **common, **sizes)
    assert not unsure.improved()
    assert not unsure.regressed()


# --- pairing and reproducibility ----------------------------------------------------------------


def _pair(n: int = 500, seed: int = 0) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s0 = np.clip(0.5 * y + rng.normal(0.25, 0.2, n), 0, 1)
    s1 = np.clip(s0 + rng.normal(0.02, 0.05, n), 0, 1)
    ids = np.array([f"row-{i}" for i in range(n)])
    base = Predictions.from_arrays(y, (s0 > 0.5).astype(int), s0, ids=ids, source="base")
    perm = rng.permutation(n)  # the candidate file lists the same rows in another order
    cand = Predictions.from_arrays(
        y[perm], (s1[perm] > 0.5).astype(int), s1[perm], ids=ids[perm], source="cand"
    )
    return base, cand


def test_same_ids_in_any_order_are_paired_and_matched() -> None:
    base, cand = _pair()
    out = _overall(base, cand)
    assert {ci.method for ci in out.values()} == {"paired-bootstrap"}
    assert set(out) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    for name, ci in out.items():
        assert ci.baseline == pytest.approx(point_metrics(base)[name], abs=1e-12)
        assert ci.candidate == pytest.approx(point_metrics(cand)[name], abs=1e-12)
        assert ci.low <= ci.delta <= ci.high  # a misaligned pair would move the interval
        assert ci.n_baseline == ci.n_candidate == 500


def test_different_rows_are_unpaired_and_pairing_narrows_the_interval() -> None:
    base, cand = _pair()
    paired = _overall(base, cand, ["roc_auc", "accuracy"])
    fewer = Predictions.from_arrays(
        cand.y_true[:-1], cand.y_pred[:-1], cand.y_score[:-1], ids=cand.ids[:-1]
    )
    unpaired = _overall(base, fewer, ["roc_auc", "accuracy"])
    assert {ci.method for ci in unpaired.values()} == {"unpaired-bootstrap"}
    assert unpaired["roc_auc"].n_candidate == 499
    for name in ("roc_auc", "accuracy"):
        width = paired[name].high - paired[name].low
        assert width < 0.7 * (unpaired[name].high - unpaired[name].low)


def test_same_ids_with_changed_labels_are_unpaired() -> None:
    base, cand = _pair(n=50)
    relabelled = Predictions.from_arrays(1 - cand.y_true, cand.y_pred, cand.y_score, ids=cand.ids)
    assert _overall(base, relabelled, ["accuracy"])["accuracy"].method == "unpaired-bootstrap"


def test_seeded_and_reproducible() -> None:
    base, cand = _pair()
    first = bootstrap_family(base, cand, seed=7)
    assert first == bootstrap_family(base, cand, seed=7)
    assert first != bootstrap_family(base, cand, seed=8)
    # Asking for fewer metrics moves an interval only through the critical value (the intervals
    # hold together): each metric family draws its own stream, so its resampled deltas stay.
    for name in ("accuracy", "roc_auc", "log_loss"):
        alone = bootstrap_family(base, cand, [name], seed=7)
        ci, among = alone.overall[name], first.overall[name]
        assert (ci.delta, ci.n_resamples) == (among.delta, among.n_resamples)
        assert (ci.high - ci.low) / alone.critical == pytest.approx(
            (among.high - among.low) / first.critical, rel=1e-9
        )
        assert alone.critical < first.critical


def test_confidence_level_widens_the_interval() -> None:
    base, cand = _pair()
    ci90 = _overall(base, cand, ["f1"], confidence=0.90)["f1"]
    ci99 = _overall(base, cand, ["f1"], confidence=0.99)["f1"]
    assert ci99.low < ci90.low
    assert ci90.high < ci99.high
    assert ci99.confidence == 0.99


def test_bad_options_and_disagreeing_tasks_are_config_errors() -> None:
    base, cand = _pair(n=20)
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_family(base, cand, confidence=95)
    with pytest.raises(ConfigError, match="n_resamples"):
        bootstrap_family(base, cand, n_resamples=0)
    with pytest.raises(ConfigError, match="task must be classification or regression"):
        bootstrap_family(base, cand, task="clustering")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="weights must be 20 non-negative integers"):
        point_metrics(base, weights=np.full(20, -1))
    floats = Predictions.from_arrays(base.y_true, base.y_score, source="floats.csv")
    with pytest.raises(
        ConfigError, match=r"disagree on the task.*floats\.csv looks like regression"
    ):
        bootstrap_family(base, floats)
    # An explicit task is checked against the labels, and the message names the side at fault.
    with pytest.raises(ConfigError, match=r"^floats\.csv: classification labels must be whole"):
        bootstrap_family(base, floats, task="classification")


def test_a_metric_undefined_in_most_resamples_is_left_out() -> None:
    # One positive row per side, unpaired: a resample without it on either side (1 - 0.632^2
    # of them) has no ROC AUC. Paired with two positives, only both rows dropped (e^-2) does.
    y = np.zeros(30, dtype=int)
    y[0] = 1
    score = np.linspace(0, 1, 30)
    base = Predictions.from_arrays(y, y, score)
    cand = Predictions.from_arrays(y, y, score, ids=np.arange(30) + 100)
    out = _overall(base, cand, ["roc_auc", "accuracy"])
    assert set(out) == {"accuracy"}
    assert out.skipped["roc_auc"].startswith("undefined in ")
    y[1] = 1
    paired = _overall(*(Predictions.from_arrays(y, y, s) for s in (score, score[::-1])))
    assert 1000 * 0.8 < paired["roc_auc"].n_resamples < 1000 * 0.95


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_regression_deltas(metric: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, 400)
    base = Predictions.from_arrays(y, y + rng.normal(0, 2.0, 400))
    cand = Predictions.from_arrays(y, y + rng.normal(0, 1.0, 400))
    ci = _overall(base, cand, [metric])[metric]
    assert ci.method == "paired-bootstrap"
    assert ci.improved()
    assert not ci.regressed()


# --- the resampling machinery: a drawn resample is scored as scikit-learn scores its rows ------


def test_poisson_table_holds_poisson_one_to_within_one_cell() -> None:
    counts = np.bincount(poisson_table(), minlength=10)
    for k in range(10):
        want = math.exp(-1) / math.factorial(k) * (1 << 16)
        assert abs(counts[k] - want) <= 1, k


def _repeat(w_by_row: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    return [np.repeat(c, w_by_row.astype(int)) for c in columns]


# Few positives, then few negatives: the cumulative sum of the AUC runs over either class.
@pytest.mark.parametrize("n_pos", [40, 260])
def test_resampled_roc_auc_and_log_loss_equal_sklearn(n_pos: int) -> None:
    rng = np.random.default_rng(n_pos)
    n = 300
    y = rng.permutation((np.arange(n) < n_pos).astype(int))
    preds = []
    for _ in range(2):  # two sides of a pair, each in its own score order
        s = np.round(np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0, 1), 2)
        preds.append(Predictions.from_arrays(y, (s > 0.5).astype(int), s))
    metrics = ["roc_auc", "log_loss"]
    ((_, group),) = make_segment_groups(
        preds, metrics, [[np.arange(n)]] * 2, paired=True, labels=np.array([0, 1]), binary=True
    )
    w = group.draw(rng, 5)
    got = group.values(w)
    for r in range(5):
        for side, p in enumerate(preds):
            y_r, s_r = _repeat(w[r], y, p.y_score)
            want = {"roc_auc": skm.roc_auc_score(y_r, s_r), "log_loss": skm.log_loss(y_r, s_r)}
            _assert_close({m: got[side][m, 0][r] for m in metrics}, want)


# Many combinations per row (weights drawn per row) and few (Poisson(m) per combination).
@pytest.mark.parametrize(("n", "k"), [(60, 4), (5000, 3), (5000, 2)])
def test_resampled_counts_equal_sklearn(n: int, k: int) -> None:
    rng = np.random.default_rng(n + k)
    y = rng.integers(0, k, n)
    preds = [
        Predictions.from_arrays(y, np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n)))
        for _ in range(2)
    ]
    labels = np.arange(k)
    ((_, group),) = make_segment_groups(
        preds, DISCRETE, [[np.arange(n)]] * 2, paired=True, labels=labels, binary=k == 2
    )
    assert group.by_row == (n == 60)
    w = group.draw(rng, 3)
    got = group.values(w)
    for r in range(3):
        for side, pred_codes in enumerate(group.preds):
            y_r, p_r = _repeat(w[r], labels[group.true], labels[pred_codes])
            _assert_close(
                {m: got[side][m, 0][r] for m in DISCRETE},
                _sklearn_classification(y_r, p_r, None, binary=k == 2),
            )


# --- loading ------------------------------------------------------------------------------------


def test_load_csv_json_and_bytes(tmp_path: Path) -> None:
    csv = tmp_path / "predictions.csv"
    csv.write_text("id,y_true,y_pred,y_score,extra\na,1,1,0.9,x\nb,0,1,0.6,y\nc,0,0,0.1,z\n")
    preds = load_predictions(csv, source="predictions.csv @ HEAD")
    assert list(preds.ids) == ["a", "b", "c"]
    assert preds.y_score is not None
    assert preds.y_true.tolist() == [1.0, 0.0, 0.0]
    assert task_of(preds) == "classification"
    jsonl = tmp_path / "predictions.jsonl"
    jsonl.write_text(
        '{"id": 1, "y_true": 2.5, "y_pred": 2.0}\n{"id": 2, "y_true": 1.0, "y_pred": 1.5}\n'
    )
    assert task_of(load_predictions(jsonl, source="p.jsonl")) == "regression"
    from_bytes = load_predictions(csv.read_bytes(), source="bytes")
    assert from_bytes.ids.tolist() == preds.ids.tolist()
    records = b'[{"id": "a", "y_true": 1, "y_pred": 0}]'
    assert load_predictions(records, source="r").y_pred.tolist() == [0.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("id,y_true,y_pred\n", "no rows"),
        ("id,y_true\na,1\n", "missing column.*y_pred"),
        ("id,y_true,y_pred\na,cat,1\nb,dog,0\n", "non-numeric value 'cat'"),
        ("id,y_true,y_pred\na,1,1\na,0,1\n", "appear more than once.*'a'"),
        ("id,y_true,y_pred\na,1,\nb,0,1\n", "y_pred has an empty cell"),
        ("id,y_true,y_pred,y_score\na,1,1,inf\n", "y_score has the value inf"),
        ("id,y_true,y_pred\n,1,1\n", "row 1 has no id"),
    ],
)
def test_bad_prediction_files_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_predictions(io.StringIO(text), source="eval/predictions.csv @ 1a2b3c")
    assert str(info.value).startswith("eval/predictions.csv @ 1a2b3c: ")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_predictions(tmp_path / "nope.csv", source="nope.csv")
