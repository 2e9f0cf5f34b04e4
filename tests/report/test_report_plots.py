"""The report's plots read back from report.md and held to scikit-learn: confusion charts from
counts, one line per revision and file, real points, categorical y counted, every changed plot
named. (The DVC-backed suite is tests/report/test_report_oracle.py.)"""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.metrics import recall_score, roc_curve

from mlops_ci.report import build_report
from tests.report.report_parse import charts, table_with, unescape
from tests.report.test_report_inputs import make_comparison


def _confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict]:
    """Rows as the snapshot records a confusion plot: one per (actual, predicted) with count."""
    pairs, counts = np.unique(np.stack([y_true, y_pred], axis=1), axis=0, return_counts=True)
    return [{"actual": str(a), "predicted": str(p), "count": int(n)}
            for (a, p), n in zip(pairs, counts, strict=True)]  # fmt: skip


def _plot(pid: str, template: str, x: str, y: str, base: list, cand: list) -> dict:
    status = "added" if not base else "changed"
    return {"id": pid, "title": pid, "template": template, "kind": "vega", "x": x, "y": y,
            "baseline": base, "candidate": cand, "status": status}  # fmt: skip


def _report(*plots: dict) -> str:
    return build_report(make_comparison(plots=list(plots)), None, limit=None).markdown


def test_binary_confusion_chart_is_recall_from_counts_as_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 1000)
    flip = [rng.random(1000) < rate for rate in (0.2, 0.02)]
    base_pred, cand_pred = (np.where(f, 1 - y_true, y_true) for f in flip)
    markdown = _report(
        _plot("eval/confusion.csv", "confusion", "actual", "predicted",
              _confusion_counts(y_true, base_pred), _confusion_counts(y_true, cand_pred))
    )  # fmt: skip
    (chart,) = charts(markdown)
    assert chart.categories == ["0", "1"]
    (kb, bars), (kl, line) = chart.series
    assert (kb, kl) == ("bar", "line")
    np.testing.assert_allclose(bars, recall_score(y_true, base_pred, average=None), atol=1e-5)
    np.testing.assert_allclose(line, recall_score(y_true, cand_pred, average=None), atol=1e-5)
    assert [w for w, _ in chart.legend] == ["grey bars", "blue line"]


def test_confusion_chart_without_a_baseline_says_so_and_draws_only_the_candidate() -> None:
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    markdown = _report(
        _plot("confusion.json", "confusion", "actual", "predicted", [],
              _confusion_counts(y_true, y_pred))
    )  # fmt: skip
    (chart,) = charts(markdown)
    assert [k for k, _ in chart.series] == ["line"]  # the candidate is not repeated as bars
    np.testing.assert_allclose(chart.series[0][1], recall_score(y_true, y_pred, average=None),
                               atol=1e-5)  # fmt: skip
    assert "baseline 1a2b3c4 no confusion rows, not drawn" in " ".join(
        f"{w}: {t}" if t else w for w, t in chart.legend
    ).replace(":", "")


def test_train_and_test_files_are_one_line_each_per_revision_with_real_curves() -> None:
    rng = np.random.default_rng(1)
    rows = {}
    truth = {}
    for side, noise in (("baseline", 1.0), ("candidate", 2.5)):
        rows[side] = []
        for source, n in (("eval/train/roc.json", 30), ("eval/test/roc.json", 20)):
            y = rng.integers(0, 2, n)
            fpr, tpr, _ = roc_curve(y, y + rng.normal(0, noise, n))
            truth[side, source] = (fpr, tpr)
            rows[side] += [
                {"fpr": f, "tpr": t, "source": source} for f, t in zip(fpr, tpr, strict=False)
            ]
    markdown = _report(_plot("roc", "simple", "fpr", "tpr", rows["baseline"], rows["candidate"]))
    (chart,) = charts(markdown)
    assert len(chart.series) == 4
    described = [what for _, what in chart.legend]
    assert described == [
        "baseline 1a2b3c4 eval/train/roc.json", "candidate 9f8e7d6 eval/train/roc.json",
        "baseline 1a2b3c4 eval/test/roc.json", "candidate 9f8e7d6 eval/test/roc.json",
    ]  # fmt: skip
    assert chart.note.startswith("resampled to 50 of")
    lo, hi = chart.x_range
    grid = np.linspace(lo, hi, 50)
    for (_, drawn), what in zip(chart.series, described, strict=True):
        side, source = what.split(" ")[0], what.rsplit(" ", 1)[1]
        fpr, tpr = truth[side, source]
        # a ROC curve never goes down; the pooled lines of both files did
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(drawn))
        inner = slice(1, -1)  # both ends are the clamped first/last points
        np.testing.assert_allclose(
            np.array(drawn)[inner], np.interp(grid, fpr, tpr)[inner], atol=2e-5
        )


def test_a_longer_run_keeps_the_real_points_of_both() -> None:
    base = [{"step": s, "acc": 0.5 + s / 10, "source": "dvclive/plots/metrics/acc.tsv"}
            for s in range(3)]  # fmt: skip
    cand = [{**r, "step": s, "acc": 0.5 + s / 5} for s, r in enumerate(base + base[:1])]
    (chart,) = charts(_report(_plot("acc", "linear", "step", "acc", base, cand)))
    assert chart.categories == ["0", "1", "2", "3"]
    assert [v for _, v in chart.series] == [[0.5, 0.6, 0.7], [0.5, 0.7, 0.9, 1.1]]
    assert chart.note == "real points: 3-4 per line"


def test_a_two_epoch_curve_is_two_real_points() -> None:
    base = [{"step": s, "loss": v, "source": "dvclive/plots/metrics/loss.tsv"}
            for s, v in ((0, 0.9), (1, 0.5))]  # fmt: skip
    cand = [{**r, "loss": r["loss"] - 0.1} for r in base]
    (chart,) = charts(_report(_plot("loss", "linear", "step", "loss", base, cand)))
    assert chart.categories == ["0", "1"]
    assert [v for _, v in chart.series] == [[0.9, 0.5], [0.8, 0.4]]
    assert chart.note == "real points: 2 per line"


def test_labels_are_counted_not_averaged_and_a_single_point_plot_is_named() -> None:
    rng = np.random.default_rng(2)
    labels = [{"step": i, "label": int(v)} for i, v in enumerate(rng.integers(0, 10, 500))]
    single = _plot("eval/threshold.json", "linear", "step", "thr",
                   [{"step": 0, "thr": 0.5}], [{"step": 0, "thr": 0.6}])  # fmt: skip
    markdown = _report(_plot("labels", "linear", "step", "label", labels, labels[:400]), single)
    assert charts(markdown) == []  # no line through class labels
    counts = table_with(markdown, "label")
    expected = np.bincount([r["label"] for r in labels], minlength=10)
    assert [int(r[1]) for r in counts[1:]] == expected.tolist()
    listed = {unescape(r[0]): r[1:] for r in table_with(markdown, "Plot")[1:]}
    assert listed["labels"][1] == "table of counts (categorical y)"
    assert listed["eval/threshold.json"][0] == "🔁 changed"
    assert "0.5" in listed["eval/threshold.json"][1] and "0.6" in listed["eval/threshold.json"][1]
