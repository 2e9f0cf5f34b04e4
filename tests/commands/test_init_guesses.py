"""What `init` guesses on projects unlike the reference pipeline, as a new user meets them:
a model and predictions inside directory outputs, a metrics file that echoes a param, a
regression whose r2 is near zero, a DVC remote a CI runner cannot reach, outputs not pulled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mlops_ci.cli import main
from mlops_ci.init import adopt
from mlops_ci.project.settings import parse_settings
from tests.commands import adopt_projects

pytestmark = pytest.mark.integration  # builds real DVC projects of its own


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("guesses")
    kinds = ("directory-output", "weak-regression", "dvclive")
    return {kind: adopt_projects.build(kind, base / kind) for kind in kinds}


def init_json(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["init", "-C", str(repo), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_model_and_predictions_inside_directory_outputs_are_found_and_valid(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates["directory-output"].parent, tmp_path / "d")
    doc = init_json(repo, capsys)
    assert doc["detected"]["model"] == "models/model.pkl"
    assert doc["detected"]["predictions"] == "eval/predictions.csv"
    settings = parse_settings((repo / "mlops-ci.yaml").read_text())
    assert (settings.model, settings.predictions) == ("models/model.pkl", "eval/predictions.csv")
    assert (repo / ".github/workflows/mlops-ci-main.yml").is_file()
    # The echoed param `C` is not gated as if it were a quality of the model.
    assert "C" not in settings.metrics and {"accuracy", "f1"} <= set(settings.metrics)
    assert "# C: echoes the param train.C; not gated" in (repo / "mlops-ci.yaml").read_text()
    # validate agrees: a file inside a directory output is a DVC output.
    assert main(["validate", "-C", str(repo), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert not [w for w in checked["warnings"] if "not a DVC output" in w], checked["warnings"]


def test_a_regression_is_gated_on_its_error_and_never_by_a_percentage_of_r2(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates["weak-regression"].parent, tmp_path / "w")
    r2 = json.loads((repo / "metrics.json").read_text())["r2"]
    assert abs(r2) < adopt.NEAR_ZERO, r2  # the project this test is about
    init_json(repo, capsys)
    data = yaml.safe_load((repo / "mlops-ci.yaml").read_text())
    assert data["metrics"]["rmse"] == {"direction": "lower", "max_drop_pct": 5}
    assert data["metrics"]["r2"] == {"direction": "higher"}
    assert "alpha" not in data["metrics"]
    # A score near zero that is the headline gets an absolute threshold.
    found = adopt.Detected(metrics={"r2": 0.009}, directions={"r2": "higher"})
    only_r2 = yaml.safe_load(adopt.render_settings(found))["metrics"]["r2"]
    assert only_r2 == {"direction": "higher", "max_drop": adopt.HEADLINE_MAX_DROP}


def test_next_steps_name_the_unreachable_remote_intervals_and_the_deploy_target(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates["weak-regression"].parent, tmp_path / "w")
    steps = "\n".join(init_json(repo, capsys)["next_steps"])
    assert "is a path on this machine, which a CI runner does not have" in steps
    assert "confidence intervals" in steps and "mlops-ci noise" in steps
    assert "deploy.target is `deployments/`" in steps


def test_declared_metrics_that_are_not_pulled_say_dvc_pull(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh clone of a DVCLive project: its metrics are in a cached directory output that
    was never pulled."""
    repo = adopt_projects.copy(templates["dvclive"].parent, tmp_path / "c")
    shutil.rmtree(repo / "dvclive")
    shutil.rmtree(repo / ".dvc" / "cache")
    steps = "\n".join(init_json(repo, capsys)["next_steps"])
    assert "dvclive/metrics.json (declared in dvc.yaml) are not in the workspace" in steps
    assert "`dvc pull`" in steps
    assert main(["validate", "-C", str(repo), "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("not in the workspace: `dvc pull`" in w for w in warnings), warnings


def test_an_echoed_param_is_shown_as_changed_never_better_or_worse(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user adopts, then halves the penalty: the `alpha` the metrics file echoes is a
    change of input, not a quality of the model; it gets no arrow and no colour."""
    from mlops_ci.project.git import Git

    repo = adopt_projects.copy(templates["weak-regression"].parent, tmp_path / "e")
    init_json(repo, capsys)
    git = Git(repo)
    git.commit_all("Adopt mlops-ci")
    git.run("checkout", "--quiet", "-b", "less-penalty")
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("alpha: 300.0", "alpha: 150.0"))
    git.commit_all("Halve the penalty")
    run_dir = tmp_path / "run"
    main(["pr", "-C", str(repo), "--run-dir", str(run_dir), "--no-post"])
    rows = {r["name"]: r for r in json.loads((run_dir / "comparison.json").read_text())["metrics"]}
    assert (rows["alpha"]["baseline"], rows["alpha"]["candidate"]) == (300.0, 150.0)
    assert rows["alpha"]["direction"] is None
    assert rows["alpha"]["status"] == "changed"
    assert rows["rmse"]["direction"] == "lower"
    report = (run_dir / "report.md").read_text()
    assert "| alpha |" in report and "alpha ↑" not in report and "alpha ↓" not in report


def test_a_dvclive_confusion_matrix_is_named_as_the_source_of_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DVCLive's `log_sklearn_plot("confusion_matrix", ...)` holds one row per test sample:
    init says the intervals come from it, not that a predictions file is needed."""
    from tests.dvc_layouts import LAYOUTS, build_layout

    project = build_layout(LAYOUTS["dvclive-dir"], tmp_path / "live")
    doc = init_json(project, capsys)
    assert any("confusion" in name for name in doc["detected"]["plots"])
    steps = "\n".join(doc["next_steps"])
    assert "come from the per-sample rows of the confusion plot" in steps, steps
    assert "have a stage write per-sample predictions" not in steps


def test_init_writes_data_rules_that_fail_a_pr_dropping_rows(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tables the stages read get data rules; a change that loses a fifth of the training
    rows then fails the gate on them, with no edit of the policy."""
    from mlops_ci.project.git import Git

    repo = adopt_projects.copy(templates["weak-regression"].parent, tmp_path / "t")
    init_json(repo, capsys)
    settings = parse_settings((repo / "mlops-ci.yaml").read_text())
    tables = {t.path: t.rules for t in settings.data.tables}
    assert set(tables) == {"data/train.csv", "data/test.csv"}
    assert tables["data/train.csv"].max_row_drop_pct == 10
    assert tables["data/train.csv"].schema_unchanged is True
    assert main(["validate", "-C", str(repo)]) == 0
    git = Git(repo)
    git.commit_all("Adopt mlops-ci")
    git.run("checkout", "--quiet", "-b", "less-data")
    prepare = repo / "src" / "prepare.py"
    prepare.write_text(
        prepare.read_text().replace(
            "frame.insert(0, 'id'",
            "frame = frame.iloc[: len(frame) * 4 // 5]\nframe.insert(0, 'id'",
        )
    )
    git.commit_all("Keep four fifths of the rows")
    run_dir = tmp_path / "run"
    assert main(["pr", "-C", str(repo), "--run-dir", str(run_dir), "--no-post"]) == 1
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "fail"
    reasons = " ".join(r.get("reason", "") for r in verdict.get("rules", []))
    assert "data/train.csv" in reasons, verdict
