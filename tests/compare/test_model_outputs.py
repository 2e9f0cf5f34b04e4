"""Which undeclared tables are the model's outputs (`data_auto.model_outputs`), from
declarations the real `dvc.yaml` reader builds: plots of a stage (a file, a directory), top-level
plots named by file or by id with files under `x`/`y`, at either revision, and the policy's
predictions file."""

from __future__ import annotations

from types import SimpleNamespace

from mlops_ci.compare.data_auto import model_outputs
from mlops_ci.project import dvcfile


def _revision(dvc_yaml: str, path: str = "dvc.yaml") -> SimpleNamespace:
    decl = dvcfile.Declarations()
    dvcfile.declare(decl, path, dvcfile.load_pipeline_yaml(dvc_yaml, path))
    return SimpleNamespace(declarations=decl)


BASELINE = """\
stages:
  train:
    cmd: python train.py
    wdir: model
    plots: [dvclive/plots, {roc.csv: {x: fpr, y: tpr}}]
plots:
  - eval/prc.json
  - confusion:
      template: confusion
      x: {eval/pred_train.csv: actual}
      y: {eval/pred_test.csv: predicted}
"""
CANDIDATE = """\
stages:
  train:
    cmd: python train.py
plots:
  - eval/new.csv
"""


def test_every_plotted_file_and_the_predictions_file_are_the_models_outputs():
    found = model_outputs(_revision(BASELINE), _revision(CANDIDATE), "eval/predictions.csv")
    assert found == {
        "model/dvclive/plots": "plot",  # a stage's plots are relative to its wdir
        "model/roc.csv": "plot",
        "eval/prc.json": "plot",
        "eval/pred_train.csv": "plot",
        "eval/pred_test.csv": "plot",
        "eval/new.csv": "plot",  # declared at the candidate only
        "eval/predictions.csv": "predictions",
    }
    # An id plot's name is no file; a nested dvc.yaml's plots are relative to its directory.
    nested = model_outputs(_revision(BASELINE, "sub/dvc.yaml"), _revision("stages: {}"), None)
    assert "confusion" not in nested and "sub/eval/prc.json" in nested
    assert "sub/eval/pred_test.csv" in nested
