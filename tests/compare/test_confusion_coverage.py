"""Coverage of the intervals a confusion plot gives, by simulation.

Each of 200 seeded pairs draws a test set of 400 rows (label 1 with probability 0.4) and, per
revision, predictions that are right with a known per-class accuracy, the candidate better on
both classes: the true deltas of accuracy and f1 are known in closed form. The rows are written as
DVCLive writes its confusion-matrix plot and go through what `compare` runs on such a plot
(`confusion_rows.plot_predictions`, `decide.plot_family`, the resample count of the default
policy). The interval of accuracy and of f1 must each cover the true delta in 95 ± 4% of the
pairs: on the same test set in the same order (paired) and on two different test sets (unpaired).
The family's intervals hold together, so each alone covers a little more than its level.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops_ci.compare.confusion_rows import ConfusionFile, plot_predictions
from mlops_ci.compare.decide import plot_family
from mlops_ci.project.settings import Settings

pytestmark = pytest.mark.slow  # 200 simulated pairs per case

CM = "dvclive/plots/sklearn/confusion_matrix.json"
PAIRS, ROWS, POSITIVE = 200, 400, 0.4
BASELINE = {0: 0.85, 1: 0.75}  # accuracy on each true class
CANDIDATE = {0: 0.88, 1: 0.80}


def accuracy(per_class: dict[int, float]) -> float:
    return (1 - POSITIVE) * per_class[0] + POSITIVE * per_class[1]


def f1(per_class: dict[int, float]) -> float:
    """F1 of label 1 in the population: 2 TP / (2 TP + FN + FP) as shares of all rows."""
    tp, fn = POSITIVE * per_class[1], POSITIVE * (1 - per_class[1])
    fp = (1 - POSITIVE) * (1 - per_class[0])
    return 2 * tp / (2 * tp + fn + fp)


TRUE_DELTA = {
    "accuracy": accuracy(CANDIDATE) - accuracy(BASELINE),
    "f1": f1(CANDIDATE) - f1(BASELINE),
}


def predicted(rng: np.random.Generator, actual: np.ndarray, per_class: dict[int, float]) -> list:
    right = rng.random(len(actual)) < np.where(actual == 1, per_class[1], per_class[0])
    return np.where(right, actual, 1 - actual).tolist()


def plot_file(actual: np.ndarray, pred: list) -> dict[str, ConfusionFile]:
    """The file `Live.log_sklearn_plot("confusion_matrix", ...)` writes: labels as text."""
    rows = [
        {"actual": str(a), "predicted": str(p)} for a, p in zip(actual.tolist(), pred, strict=True)
    ]
    return {CM: ConfusionFile(CM, "actual", "predicted", json.dumps(rows).encode())}


def coverage(paired: bool) -> tuple[dict[str, float], str]:
    settings = Settings()  # the default policy: what compare resamples with
    covered = dict.fromkeys(TRUE_DELTA, 0)
    methods = set()
    for seed in range(PAIRS):
        rng = np.random.default_rng(seed)
        base_actual = (rng.random(ROWS) < POSITIVE).astype(int)
        cand_actual = base_actual if paired else (rng.random(ROWS) < POSITIVE).astype(int)
        base = plot_file(base_actual, predicted(rng, base_actual, BASELINE))
        cand = plot_file(cand_actual, predicted(rng, cand_actual, CANDIDATE))
        warnings: list[str] = []
        rows = plot_predictions(base, cand, warnings)
        assert rows is not None
        family = plot_family(rows, settings, warnings, band_members=0)()
        assert family is not None
        for metric, truth in TRUE_DELTA.items():
            ci = family.overall[metric]
            covered[metric] += ci.low <= truth <= ci.high
            methods.add(ci.method)
    (method,) = methods
    return {m: n / PAIRS for m, n in covered.items()}, method


@pytest.mark.parametrize(("paired", "method"), [(True, "paired"), (False, "unpaired")])
def test_plot_intervals_cover_the_true_delta_95_percent_of_the_time(
    paired: bool, method: str
) -> None:
    rates, used = coverage(paired)
    assert used == f"{method}-bootstrap"
    for metric, rate in rates.items():
        assert 0.91 <= rate <= 0.99, f"{metric}: {rate:.3f} of {PAIRS} pairs ({method})"
