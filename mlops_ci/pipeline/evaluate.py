"""Stage `evaluate`: metrics, plots data and per-sample predictions on the test split."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd
from sklearn import metrics

from .common import (
    ID,
    METRICS_FILE,
    MODEL_FILE,
    PLOTS_DIR,
    PREDICTIONS_FILE,
    TARGET,
    TEST_CSV,
    feature_columns,
    load_params,
    write_json,
)

# Curves are cut to this many points: enough to draw, small enough to commit and compare.
MAX_CURVE_POINTS = 200


def thin(rows: list[dict], limit: int = MAX_CURVE_POINTS) -> list[dict]:
    if len(rows) <= limit:
        return rows
    keep = np.unique(np.linspace(0, len(rows) - 1, limit).round().astype(int))
    return [rows[i] for i in keep]


def predict_latency_ms(model, features: pd.DataFrame, samples: int) -> float:
    """Median wall time of single-row predictions: what one online request costs."""
    rows = features.iloc[: max(1, min(samples, len(features)))]
    timings = []
    for i in range(len(rows)):
        one = rows.iloc[i : i + 1]
        start = time.perf_counter()
        model.predict_proba(one)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000.0)


def main() -> None:
    params = load_params("evaluate")
    threshold = float(params.get("threshold", 0.5))
    test = pd.read_csv(TEST_CSV)
    with MODEL_FILE.open("rb") as fh:
        model = pickle.load(fh)  # noqa: S301 - the stage's own output, written by `train`
    features = test[feature_columns(list(test.columns))]
    y_true = test[TARGET].to_numpy()
    y_score = model.predict_proba(features)[:, 1]
    y_pred = (y_score >= threshold).astype(int)

    scores = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "precision": metrics.precision_score(y_true, y_pred, zero_division=0),
        "recall": metrics.recall_score(y_true, y_pred, zero_division=0),
        "f1": metrics.f1_score(y_true, y_pred, zero_division=0),
        "roc_auc": metrics.roc_auc_score(y_true, y_score),
        "log_loss": metrics.log_loss(y_true, y_score, labels=[0, 1]),
        "predict_latency_ms": predict_latency_ms(
            model, features, int(params.get("latency_samples", 50))
        ),
    }
    write_json(METRICS_FILE, {k: round(float(v), 6) for k, v in scores.items()})

    fpr, tpr, _ = metrics.roc_curve(y_true, y_score)
    roc = [
        {"fpr": round(float(a), 5), "tpr": round(float(b), 5)}
        for a, b in zip(fpr, tpr, strict=True)
    ]
    precision, recall, _ = metrics.precision_recall_curve(y_true, y_score)
    prc = [
        {"recall": round(float(r), 5), "precision": round(float(p), 5)}
        for p, r in zip(precision, recall, strict=True)
    ]
    write_json(PLOTS_DIR / "roc.json", {"roc": thin(roc)})
    write_json(PLOTS_DIR / "prc.json", {"prc": thin(prc)})

    PREDICTIONS_FILE.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {ID: test[ID], "y_true": y_true, "y_pred": y_pred, "y_score": np.round(y_score, 6)}
    ).to_csv(PREDICTIONS_FILE, index=False)
    print("evaluate: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
