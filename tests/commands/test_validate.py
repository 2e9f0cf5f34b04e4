"""`mlops-ci validate`: the schema and the repository checks, one typo per rule kind, each a
mistake that otherwise surfaces only when the gate or a deploy runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mlops_ci.cli import main
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings import parse_settings, schema_problems

ROOT = Path(__file__).parents[2]


def validate(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["validate", "-C", str(repo), "--json"])
    return code, json.loads(capsys.readouterr().out)


def edit(repo: Path, old: str, new: str) -> None:
    path = repo / "mlops-ci.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_reference_settings_are_valid(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = validate(trained_repo, capsys)
    assert code == 0, doc
    assert doc["valid"] and doc["problems"] == []
    assert {"schema", "metrics", "model", "predictions", "test_data", "plots"} <= set(
        doc["checked"]
    )


TYPOS = {
    "metric name": (
        "  f1: {direction",
        "  f_1: {direction",
        "metrics.f_1 names no metric of eval/train_metrics.json, eval/metrics.json (read at the "
        "workspace); did you mean 'f1'?",
    ),
    "model path": (
        "model: models/model.pkl",
        "model: models/modle.pkl",
        "model models/modle.pkl is neither a DVC output nor a file of the repository; did you "
        "mean 'models/model.pkl'?",
    ),
    "predictions path": (
        "predictions: eval/predictions.csv",
        "predictions: eval/prediction.csv",
        "predictions eval/prediction.csv is neither a DVC output nor a file of the repository",
    ),
    "test data path": (
        "test_data: data/prepared/test.csv",
        "test_data: data/prepared/tests.csv",
        "test_data data/prepared/tests.csv does not exist and no stage writes it",
    ),
    "test data missing": (
        "test_data: data/prepared/test.csv",
        "",
        "test_data is required when deploy.verify is predictions; set `test_data: "
        "data/prepared/test.csv` (the pipeline's test split)",
    ),
    "sweep param": (
        "intended_use:",
        "sweep:\n  grid:\n    train.logistic_regresion.C: [0.1, 1]\nintended_use:",
        "sweep param 'train.logistic_regresion.C' is in no params file the pipeline tracks; did "
        "you mean 'train.logistic_regression.C'?",
    ),
    "sweep rank_by": (
        "intended_use:",
        "sweep:\n  rank_by: acuracy\n  candidates: [{train.seed: 1}]\nintended_use:",
        "sweep.rank_by 'acuracy' names no metric",
    ),
    "registry stage": (
        "baseline: merge-base",
        "baseline: stage:prodution",
        "baseline 'stage:prodution' names a stage that is not in promote.stages (staging, "
        "production); did you mean 'production'?",
    ),
    "unknown key": (
        "on_missing_metric: fail",
        "on_missing_metric: fail\non_inconclusiv: neutral",
        "unknown key 'on_inconclusiv'",
    ),
    "wrong choice": (
        "bump: minor",
        "bump: minr",
        "promote.bump must be one of major, minor, patch, not 'minr'",
    ),
    "out of range": (
        "confidence: 0.95",
        "confidence: 95",
        "confidence must be",
    ),
    "verify without a command": (
        "  target: deployments/",
        "  target: deployments/\n  verify: command",
        "deploy.verify_command must be a program to run when deploy.verify is command",
    ),
}


@pytest.mark.parametrize("kind", list(TYPOS))
def test_validate_catches_each_kind_of_typo(
    kind: str, trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new, expected = TYPOS[kind]
    edit(trained_repo, old, new)
    code, doc = validate(trained_repo, capsys)
    assert code == 2, doc
    assert any(expected in p for p in doc["problems"]), doc["problems"]
    assert all(p.startswith("mlops-ci.yaml") for p in doc["problems"])
    # Without --json the problems go to stderr, one per line, and the exit code is the same.
    assert main(["validate", "-C", str(trained_repo)]) == 2
    assert expected in capsys.readouterr().err


def test_validate_lists_every_schema_problem_at_once(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(trained_repo, "bump: minor", "bump: minr\n  colour: red")
    edit(trained_repo, "confidence: 0.95", "confidence: high")
    code, doc = validate(trained_repo, capsys)
    assert code == 2
    text = "\n".join(doc["problems"])
    assert "promote.bump" in text and "promote.colour" in text and "confidence" in text


def test_a_schema_error_does_not_hide_the_repository_problems(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user with a typo in a choice and a metric spelt with the wrong case: both at once,
    and the metric gets its "did you mean"."""
    edit(trained_repo, "bump: minor", "bump: minr")
    edit(trained_repo, "  f1: {", "  F1: {")
    edit(trained_repo, "model: models/model.pkl", "model: models/Model.pkl")
    code, doc = validate(trained_repo, capsys)
    assert code == 2
    text = "\n".join(doc["problems"])
    assert "promote.bump" in text
    assert "metrics.F1 names no metric" in text and "did you mean 'f1'?" in text
    assert "did you mean 'models/model.pkl'?" in text


def test_artifact_not_declared_in_dvc_yaml_is_a_warning(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(trained_repo / "dvc.yaml", "a") as fh:
        fh.write("artifacts:\n  classifer:\n    path: models/model.pkl\n    type: model\n")
    code, doc = validate(trained_repo, capsys)
    assert code == 0, doc
    assert any("artifact 'classifier' is not among" in w for w in doc["warnings"])


def test_no_settings_file_says_to_run_init(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (trained_repo / "mlops-ci.yaml").unlink()
    code, doc = validate(trained_repo, capsys)
    assert code == 2 and "does not exist; write one with `mlops-ci init`" in doc["problems"][0]


# --- the schema is the loader's source of truth ------------------------------------------------


def test_a_schema_limit_names_file_and_key() -> None:
    """Whatever the schema forbids is refused, naming file and key (here a sweep candidate
    that is empty inside a list)."""
    with pytest.raises(ConfigError, match=r"sweep\.candidates"):
        parse_settings("sweep: {candidates: [{}]}\n")
    (problem,) = schema_problems({"metrics": {"acc": {"min": "high"}}}, "mlops-ci.yaml")
    assert problem.startswith("mlops-ci.yaml: metrics.acc.min must be a number")


def test_pre_commit_hook_runs_validate() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "mlops-ci-validate"]
    assert hook["entry"] == "mlops-ci validate"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    assert re.search(hook["files"], "mlops-ci.yaml") and re.search(hook["files"], "dvc.yaml")
    assert not re.search(hook["files"], "README.md")


def test_a_plot_reading_a_file_no_stage_writes_is_caught(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dvc_yaml = trained_repo / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(
            "eval/plots/prc.json: precision", "eval/plots/pcr.json: precision"
        )
    )
    code, doc = validate(trained_repo, capsys)
    assert code == 2
    assert doc["problems"] == [
        "dvc.yaml: plot 'Precision-recall' reads eval/plots/pcr.json, which no stage writes and "
        "the repository does not have; did you mean 'eval/plots/prc.json'?"
    ]
