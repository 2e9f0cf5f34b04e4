"""Confusion plots as labels-only predictions (`compare/confusion_rows.py`), decided as compare
decides them (`decide.Judgement`, `diff.metric_rows`).

The rows are written as DVCLive writes `log_sklearn_plot("confusion_matrix", ...)`: a JSON list of
`{"actual": "<label>", "predicted": "<label>"}`, labels as text. scikit-learn is the oracle of the
point values.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from mlops_ci.compare.confusion_rows import (
    ConfusionFile,
    choose_file,
    confusion_files,
    matches,
    plot_predictions,
)
from mlops_ci.compare.decide import Judgement, plot_family
from mlops_ci.compare.diff import metric_rows
from mlops_ci.compare.snapshot import Snapshot
from mlops_ci.project.dvcfile import PlotDef
from mlops_ci.project.git import Git
from mlops_ci.project.settings import Settings

CM = "dvclive/plots/sklearn/confusion_matrix.json"
SETTINGS = Settings(trend_commits=0, noise_commits=0)


def dvclive_json(actual: list, predicted: list) -> bytes:
    rows = [{"actual": str(a), "predicted": str(p)} for a, p in zip(actual, predicted, strict=True)]
    return json.dumps(rows, indent=4).encode()


def confusion(path: str, actual: list, predicted: list) -> dict[str, ConfusionFile]:
    return {path: ConfusionFile(path, "actual", "predicted", dvclive_json(actual, predicted))}


Y = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1] * 12
BASE = [0, 1, 0, 0, 1, 1, 0, 1, 0, 1] * 12
CAND = [0, 1, 1, 0, 1, 1, 0, 1, 1, 1] * 12


def test_dvclive_rows_become_labels_only_predictions_named_by_file_and_revision() -> None:
    warnings: list[str] = []
    rows = plot_predictions(confusion(CM, Y, BASE), confusion(CM, Y, CAND), warnings)
    assert rows is not None and warnings == []
    assert rows.path == CM
    assert rows.baseline.source == f"{CM}@baseline"
    assert rows.candidate.source == f"{CM}@candidate"
    assert rows.baseline.y_true.tolist() == Y and rows.baseline.y_pred.tolist() == BASE
    assert rows.candidate.y_pred.tolist() == CAND
    assert rows.baseline.y_score is None and rows.paired


def test_point_values_are_scikit_learns_binary_and_macro() -> None:
    for actual, base, cand, average in (
        (Y, BASE, CAND, "binary"),
        (
            ["cat", "dog", "eel"] * 40,
            ["cat", "dog", "dog"] * 40,
            ["cat", "eel", "eel"] * 40,
            "macro",
        ),
    ):
        warnings: list[str] = []
        rows = plot_predictions(confusion(CM, actual, base), confusion(CM, actual, cand), warnings)
        assert rows is not None
        family = plot_family(rows, SETTINGS, warnings, band_members=0)()
        for metric, score, options in (
            ("accuracy", accuracy_score, {}),
            ("precision", precision_score, {"average": average, "zero_division": 0}),
            ("recall", recall_score, {"average": average}),
            ("f1", f1_score, {"average": average}),
        ):
            ci = family.overall[metric]
            assert ci.baseline == pytest.approx(score(actual, base, **options), abs=1e-12), metric
            assert ci.candidate == pytest.approx(score(actual, cand, **options), abs=1e-12), metric
        assert set(family.overall) == {"accuracy", "precision", "recall", "f1"}


def test_rows_pair_by_position_only_when_both_actual_sequences_are_identical() -> None:
    warnings: list[str] = []
    same = plot_predictions(confusion(CM, Y, BASE), confusion(CM, Y, CAND), warnings)
    assert same is not None and same.paired
    family = plot_family(same, SETTINGS, warnings, band_members=0)()
    assert family.overall["accuracy"].method == "paired-bootstrap"
    assert "paired: both revisions hold the same 120 rows" in warnings[0]
    assert CM in warnings[0]

    warnings = []
    # The same labels in another order: another split, so the rows cannot be matched.
    moved = plot_predictions(confusion(CM, Y, BASE), confusion(CM, Y[::-1], CAND[::-1]), warnings)
    assert moved is not None and not moved.paired
    family = plot_family(moved, SETTINGS, warnings, band_members=0)()
    assert family.overall["accuracy"].method == "unpaired-bootstrap"
    assert "unpaired: the revisions' rows differ (120 and 120 rows" in warnings[0]


def test_a_plot_of_train_and_test_files_uses_test_alone_and_never_pools() -> None:
    train = "eval/plots/sklearn/cm/train.json"
    test = "eval/plots/sklearn/cm/test.json"
    files = {train: (Y * 3, BASE * 3), test: (Y[:40], CAND[:40])}
    side = {p: next(iter(confusion(p, *rows).values())) for p, rows in files.items()}
    warnings: list[str] = []
    rows = plot_predictions(side, side, warnings)
    assert rows is not None and rows.path == test
    assert len(rows.baseline) == len(rows.candidate) == 40  # the test rows, not 40 + 360

    # One plot definition naming both files (DVC's `y: {file: field}`): each file on its own.
    plot = PlotDef(
        "cm", "dvc.yaml", ("results/train.csv", "results/test.csv"),
        {"template": "confusion", "x": "actual",
         "y": {"results/train.csv": "predicted", "results/test.csv": "predicted"}},
        path_id=False,
    )  # fmt: skip
    body = b"".join(f"{a},{p}\n".encode() for a, p in zip(Y, BASE, strict=True))
    header = b"actual,predicted\n"
    found = confusion_files(
        [plot], {"results/train.csv": header + body * 2, "results/test.csv": header + body}
    )
    assert set(found) == {"results/train.csv", "results/test.csv"}
    rows = plot_predictions(found, found, [])
    assert rows is not None and rows.path == "results/test.csv" and len(rows.baseline) == 120


@pytest.mark.parametrize(
    ("paths", "why"),
    [
        (
            ["dvclive/plots/sklearn/confusion_matrix.json", "dvclive/plots/sklearn/train/cm.json"],
            "2 files (dvclive/plots/sklearn/confusion_matrix.json, "
            "dvclive/plots/sklearn/train/cm.json) and none of them named test, eval or val; rows "
            "of different sets are never pooled",
        ),
        (["cm/test_a.json", "cm/test_b.json"], "and 2 of them named test, eval or val"),
        (
            ["eval/plots/sklearn/cm/train.json"],
            "the only one, eval/plots/sklearn/cm/train.json, is of the training set",
        ),
    ],
)
def test_no_file_is_chosen_when_the_name_does_not_single_out_the_evaluation_set(
    paths: list[str], why: str
) -> None:
    assert choose_file(paths)[0] is None
    assert why in str(choose_file(paths)[1])
    side = {p: next(iter(confusion(p, Y, BASE).values())) for p in paths}
    warnings: list[str] = []
    assert plot_predictions(side, side, warnings) is None
    assert len(warnings) == 1 and warnings[0].startswith("no confidence intervals from confusion")
    assert why in warnings[0]


def test_a_name_says_which_set_below_the_files_common_directory() -> None:
    assert choose_file(["eval/cm/train.json", "eval/cm/test.json"]) == ("eval/cm/test.json", None)
    assert choose_file(["eval/train_cm.csv", "eval/val_cm.csv"]) == ("eval/val_cm.csv", None)
    assert choose_file([CM]) == (CM, None)


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        (
            [
                {"actual": "0", "predicted": "0", "count": 50},
                {"actual": "1", "predicted": "0", "count": 7},
            ],
            "its rows carry 'count': they are counts of a matrix",
        ),
        (
            [{"actual": a, "predicted": p, "share": 0.25} for a in "01" for p in "01"],
            "each (actual, predicted) cell is listed once beside other fields",
        ),
        ([{"actual": "0"}, {"actual": "1", "predicted": "1"}], "row 1 has no actual or predicted"),
        ([], "it has no rows"),
    ],
)
def test_counts_of_a_matrix_are_not_taken_for_samples(rows: list[dict], why: str) -> None:
    bad = {CM: ConfusionFile(CM, "actual", "predicted", json.dumps(rows).encode())}
    warnings: list[str] = []
    assert plot_predictions(bad, confusion(CM, Y, CAND), warnings) is None
    assert len(warnings) == 1
    assert warnings[0].startswith(f"no confidence intervals from the confusion plot {CM}: {why}")


def test_more_labels_than_classes_are_not_taken_for_classes() -> None:
    ids = list(range(150))
    warnings: list[str] = []
    assert plot_predictions(confusion(CM, ids, ids), confusion(CM, ids, ids), warnings) is None
    assert warnings == [
        f"no confidence intervals from the confusion plot {CM}: its rows hold 150 distinct "
        "labels, more than 100 classes"
    ]


def test_only_paths_the_document_can_name_are_read() -> None:
    plot = PlotDef(
        "cm", "dvc.yaml", ("ok.json", "bad\x01.json", "x" * 600 + ".json"),
        {"template": "confusion", "x": "actual", "y": "predicted"}, path_id=False,
    )  # fmt: skip
    data = dvclive_json(Y, BASE)
    found = confusion_files([plot], dict.fromkeys(plot.files, data))
    assert list(found) == ["ok.json"]
    # Not a confusion template, or no x field: no rows are taken for samples.
    linear = PlotDef("p", "dvc.yaml", ("ok.json",), {"x": "actual", "y": "predicted"}, False)
    no_x = PlotDef("p", "dvc.yaml", ("ok.json",), {"template": "confusion", "y": "p"}, False)
    assert confusion_files([linear, no_x], {"ok.json": data}) == {}


def test_a_file_at_one_revision_only_gives_nothing_and_says_nothing() -> None:
    warnings: list[str] = []
    assert plot_predictions({}, confusion(CM, Y, CAND), warnings) is None
    assert warnings == []


def test_a_metrics_value_matches_the_plots_to_the_decimals_it_shows() -> None:
    assert matches(0.8123456789, 0.8123456789)
    assert matches(0.8123, 0.81234)  # rounded to 4 decimals in the metrics file
    assert matches(0.812, 0.8119)
    assert not matches(0.81, 0.8123)  # 2 decimals: too coarse to tell two metrics apart
    assert not matches(0.8123, 0.8127)
    assert not matches(True, 1.0)
    assert not matches("0.8", 0.8)


# --- as compare decides: Judgement.of, metric_rows, decide ----------------------------------------


def _snapshot(rev: str, metrics: dict, conf: dict, predictions: bytes | None = None) -> Snapshot:
    return Snapshot(
        rev=rev, metrics={"dvclive/metrics.json": metrics}, confusion=conf,
        predictions=predictions, declared_metrics={"dvclive/metrics.json"}, has_lock=True,
    )  # fmt: skip


def _judge(tmp_path: Path, base: Snapshot, cand: Snapshot, settings: Settings) -> tuple:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    warnings: list[str] = []
    judgement = Judgement.of(Git(tmp_path), "main", None, base, cand, settings, warnings)
    rows = judgement.decide(metric_rows(base, cand, settings, judgement.intervals))
    return {r["name"]: r for r in rows}, judgement.document()["family"], warnings


def test_an_interval_joins_only_the_metric_rows_the_plot_measures(tmp_path: Path) -> None:
    train_y, train_b, train_c = [1, 0, 1, 1] * 30, [1, 0, 1, 1] * 30, [1, 1, 1, 1] * 30
    metrics = {
        side: {
            "test.accuracy": accuracy_score(Y, pred), "test.f1": f1_score(Y, pred),
            "train.f1": f1_score(train_y, train_pred),
        }
        for side, pred, train_pred in (("base", BASE, train_b), ("cand", CAND, train_c))
    }  # fmt: skip
    base = _snapshot("b" * 40, metrics["base"], confusion(CM, Y, BASE))
    cand = _snapshot("workspace", metrics["cand"], confusion(CM, Y, CAND))
    rows, family, warnings = _judge(tmp_path, base, cand, SETTINGS)

    for name in ("test.accuracy", "test.f1"):
        assert rows[name]["decided_by"] == "interval", name
        assert rows[name]["ci_method"] == "paired-bootstrap"
        assert rows[name]["ci_low"] <= rows[name]["delta"] <= rows[name]["ci_high"]
    assert rows["train.f1"]["ci_low"] is None and rows["train.f1"]["ci_high"] is None
    assert rows["train.f1"]["decided_by"] == "none" and rows["train.f1"]["status"] == "changed"
    assert family["source"] == CM and family["source_kind"] == "confusion plot"
    assert family["interval_members"] == 4
    assert any(
        w.startswith("no confidence interval for train.f1: its values") and CM in w
        for w in warnings
    )
    assert any(w.startswith("confidence intervals of accuracy, precision") for w in warnings)


def test_a_predictions_file_wins_over_a_confusion_plot(tmp_path: Path) -> None:
    def csv(pred: list) -> bytes:
        body = "".join(f"{i},{t},{p}\n" for i, (t, p) in enumerate(zip(Y, pred, strict=True)))
        return ("id,y_true,y_pred\n" + body).encode()

    other = [1 - y for y in Y]  # the plot says something else: it must not be read
    settings = Settings(predictions="eval/predictions.csv", trend_commits=0, noise_commits=0)
    metrics = {s: {"accuracy": accuracy_score(Y, p)} for s, p in (("b", BASE), ("c", CAND))}
    base = _snapshot("b" * 40, metrics["b"], confusion(CM, Y, other), csv(BASE))
    cand = _snapshot("workspace", metrics["c"], confusion(CM, Y, other), csv(CAND))
    rows, family, warnings = _judge(tmp_path, base, cand, settings)
    assert family["source"] == "eval/predictions.csv" and family["source_kind"] == "predictions"
    assert rows["accuracy"]["decided_by"] == "interval"
    assert not any("confusion plot" in w for w in warnings)


def test_no_baseline_no_plot_intervals(tmp_path: Path) -> None:
    cand = _snapshot("workspace", {"accuracy": 0.9}, confusion(CM, Y, CAND))
    rows, family, warnings = _judge(tmp_path, Snapshot(rev="none"), cand, SETTINGS)
    assert rows["accuracy"]["status"] == "added"
    assert family["source"] is None and family["interval_members"] == 0
    assert warnings == []
