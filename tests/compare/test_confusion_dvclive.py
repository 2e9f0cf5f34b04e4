"""A real DVCLive project without a predictions file gets intervals from its confusion plot.

The project trains a scikit-learn classifier, logs accuracy and f1 with `Live.log_metric` and the
confusion matrix with `Live.log_sklearn_plot` (the real dvclive package), in a git repository with
`dvc init`: once as a DVC stage whose cached output is DVCLive's directory (the default plot
name), once as a plain script whose files git tracks, logging a train and a test confusion plot
(`cm/train.json`, `cm/test.json`, as iterative/example-get-started does). The candidate changes
the regularisation.

Oracles: the same rows given another way. The script also writes `predictions.csv`
(`id, y_true, y_pred`); a commit on main then names it in `mlops-ci.yaml` (`predictions:`) and
compare runs again: the intervals must be the same numbers. The point values are scikit-learn's
`accuracy_score` and `f1_score` of those rows, read at each revision through DVC's API.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score

from tests.dvc_layouts import Layout, build_layout

pytestmark = pytest.mark.slow  # real DVC projects, trained twice

TRAIN = """\
import csv
import yaml
from dvclive import Live
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

p = yaml.safe_load(open("params.yaml"))["train"]
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
model = LogisticRegression(C=p["C"], max_iter=5000).fit(X_train, y_train)
y_pred = model.predict(X_test)
with open("predictions.csv", "w", newline="") as out:
    rows = csv.writer(out)
    rows.writerow(["id", "y_true", "y_pred"])
    rows.writerows(zip(range(len(y_test)), y_test, y_pred))
with Live(save_dvc_exp=False) as live:
    live.log_params(p)
    if SPLITS:
        train_pred = model.predict(X_train)
        live.log_metric("train/accuracy", accuracy_score(y_train, train_pred), plot=False)
        live.log_metric("train/f1", f1_score(y_train, train_pred), plot=False)
        live.log_sklearn_plot("confusion_matrix", y_train, train_pred, name="cm/train.json")
        live.log_metric("test/accuracy", accuracy_score(y_test, y_pred), plot=False)
        live.log_metric("test/f1", f1_score(y_test, y_pred), plot=False)
        live.log_sklearn_plot("confusion_matrix", y_test, y_pred, name="cm/test.json")
    else:
        live.log_metric("accuracy", accuracy_score(y_test, y_pred), plot=False)
        live.log_metric("f1", f1_score(y_test, y_pred), plot=False)
        live.log_sklearn_plot("confusion_matrix", y_test, y_pred)
"""

PARAMS = "train:\n  C: 1.0\n"
CANDIDATE = {"params.yaml": "train:\n  C: 0.002\n"}

STAGE = Layout(
    name="dvclive-confusion-stage",
    about="DVCLive in a stage, dvclive/ a cached output, the default confusion plot",
    files={
        "params.yaml": PARAMS,
        "train.py": TRAIN.replace("SPLITS", "False"),
        "dvc.yaml": "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n"
        "    params: [train]\n    outs: [dvclive, predictions.csv]\n",
    },
    candidate=CANDIDATE,
    needs=("dvclive", "sklearn"),
)
SCRIPT = Layout(
    name="dvclive-confusion-script",
    about="DVCLive as a plain script writing its own dvc.yaml; train and test confusion plots",
    files={"params.yaml": PARAMS, "train.py": TRAIN.replace("SPLITS", "True")},
    candidate=CANDIDATE,
    script="train.py",
    needs=("dvclive", "sklearn"),
)
CASES = {
    "stage": (STAGE, "dvclive/plots/sklearn/confusion_matrix.json", ("accuracy", "f1")),
    "script": (SCRIPT, "dvclive/plots/sklearn/cm/test.json", ("test.accuracy", "test.f1")),
}


def compare(project: Path, run_dir: Path) -> dict:
    subprocess.run(
        [sys.executable, "-m", "mlops_ci.cli", "compare", "--baseline", "main", "--run-dir",
         str(run_dir), "-C", str(project)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads((run_dir / "comparison.json").read_text())


def name_predictions_on_main(project: Path, tmp_path: Path) -> None:
    """Commit `predictions: predictions.csv` on main (the policy is read at the baseline),
    leaving the candidate's trained workspace as it is."""
    other = tmp_path / "main-worktree"
    subprocess.run(["git", "worktree", "add", "-q", str(other), "main"], cwd=project, check=True)
    (other / "mlops-ci.yaml").write_text("predictions: predictions.csv\n")
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "add", "mlops-ci.yaml"], cwd=other, check=True)
    subprocess.run(["git", *identity, "commit", "-qm", "policy"], cwd=other, check=True)
    subprocess.run(["git", "worktree", "remove", str(other)], cwd=project, check=True)


def labels(text: str) -> tuple[list[int], list[int]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [int(r["y_true"]) for r in rows], [int(r["y_pred"]) for r in rows]


@pytest.mark.parametrize("case", list(CASES))
def test_dvclive_confusion_plot_gives_the_intervals_a_predictions_file_gives(
    case: str, tmp_path: Path
) -> None:
    import dvc.api

    layout, plot, names = CASES[case]
    project = build_layout(layout, tmp_path)
    from_plot = compare(project, tmp_path / "run-plot")
    rows = {r["name"]: r for r in from_plot["metrics"]}

    assert from_plot["family"]["source"] == plot
    assert from_plot["family"]["source_kind"] == "confusion plot"
    assert any(
        w.startswith("confidence intervals of accuracy, precision, recall, f1") and plot in w
        and "paired: both revisions hold the same 228 rows" in w
        for w in from_plot["warnings"]
    )  # fmt: skip
    truth = {
        "baseline": labels(dvc.api.read("predictions.csv", repo=str(project), rev="main")),
        "candidate": labels((project / "predictions.csv").read_text()),
    }
    for name, score in zip(names, (accuracy_score, f1_score), strict=True):
        row = rows[name]
        assert row["ci_method"] == "paired-bootstrap" and row["decided_by"] == "interval"
        assert row["delta"] != 0 and row["ci_low"] <= row["delta"] <= row["ci_high"]
        for side, (y_true, y_pred) in truth.items():
            assert row[side] == score(y_true, y_pred), (name, side)
    if case == "script":  # the training set's rows are another set: no interval of theirs
        for name in ("train.accuracy", "train.f1"):
            assert rows[name]["ci_low"] is None and rows[name]["decided_by"] != "interval"

    name_predictions_on_main(project, tmp_path)
    from_file = compare(project, tmp_path / "run-file")
    assert from_file["family"]["source"] == "predictions.csv"
    assert from_file["family"]["source_kind"] == "predictions"
    file_rows = {r["name"]: r for r in from_file["metrics"]}
    for name in names:
        for field in ("baseline", "candidate", "ci_low", "ci_high", "ci_method", "status"):
            assert rows[name][field] == file_rows[name][field], (name, field)
