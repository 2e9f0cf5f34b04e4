"""`mlops-ci init` on existing DVC projects: what it detects, what it writes, that running it
twice changes nothing, that it never overwrites without --force, and that everything it writes
passes actionlint and the schemas (the shipped mlops-ci.yaml schema, GitHub's and GitLab's).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.cli import main
from mlops_ci.init import adopt, adopt_gitlab
from mlops_ci.project.git import Git
from mlops_ci.project.settings import parse_settings
from tests.commands import adopt_projects
from tests.lint import tools

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

ROOT = Path(__file__).parents[2]
SCHEMA = ROOT / "mlops_ci" / "project" / "schemas" / "mlops-ci.schema.json"


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("adopt")
    return {kind: adopt_projects.build(kind, base / kind) for kind in adopt_projects.KINDS}


def init(repo: Path, *args: str) -> int:
    return main(["init", "-C", str(repo), *args])


def written(repo: Path) -> dict[str, str]:
    """Every file init may write, by path, as it is now."""
    paths = [adopt.SETTINGS_FILE, ".gitignore", adopt.GITLAB_CI_FILE]
    workflows = repo / adopt.GITHUB_WORKFLOWS
    paths += [f"{adopt.GITHUB_WORKFLOWS}/{p.name}" for p in sorted(workflows.glob("*.yml"))]
    return {p: (repo / p).read_text() for p in paths if (repo / p).is_file()}


EXPECTED = {
    "reference": {
        "artifact": "model",
        "model": "models/model.pkl",
        "predictions": "eval/predictions.csv",
        "test_data": "data/prepared/test.csv",
        "metrics": {"accuracy", "f1", "roc_auc", "log_loss", "train_time_s"},
        "headline": "accuracy",
        "verify": "predictions",
        "workflows": {"mlops-ci-pr.yml", "mlops-ci-pr-report.yml", "mlops-ci-main.yml"},
    },
    "dvclive": {
        "artifact": "model",
        "model": None,
        "predictions": None,
        "test_data": None,
        "metrics": {"acc", "f1", "train.loss"},
        "headline": "acc",
        "verify": "checksums",
        "workflows": {"mlops-ci-pr.yml", "mlops-ci-pr-report.yml"},  # no model: no release
    },
    "regression": {
        "artifact": "diabetes-regressor",
        "model": "models/regressor.pkl",
        "predictions": None,
        "test_data": None,
        "metrics": {"rmse", "mae", "r2"},
        "headline": "rmse",  # a regression is gated on its error
        "verify": "checksums",
        "workflows": {"mlops-ci-pr.yml", "mlops-ci-pr-report.yml", "mlops-ci-main.yml"},
    },
}


@pytest.mark.parametrize("kind", adopt_projects.KINDS)
def test_init_detects_the_pipeline_and_writes_a_valid_policy(
    kind: str, templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates[kind].parent, tmp_path / kind)
    assert init(repo) == 0
    out = capsys.readouterr().out
    assert "wrote     mlops-ci.yaml" in out and "next steps:" in out
    expected = EXPECTED[kind]
    text = (repo / "mlops-ci.yaml").read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={adopt.SCHEMA_URL}"
    settings = parse_settings(text)
    data = yaml.safe_load(text)
    assert settings.artifact == expected["artifact"]
    assert settings.model == expected["model"]
    assert settings.predictions == expected["predictions"]
    assert settings.test_data == expected["test_data"]
    assert settings.deploy.verify == expected["verify"]
    assert expected["metrics"] <= set(settings.metrics), sorted(settings.metrics)
    assert "step" not in settings.metrics, "DVCLive's step counter is not a metric"
    headline = data["metrics"][expected["headline"]]
    assert headline["max_drop_pct"] == adopt.HEADLINE_MAX_DROP_PCT
    for name, rule in settings.metrics.items():
        lower = any(w in name for w in ("loss", "rmse", "mae", "time", "latency"))
        assert rule.direction == ("lower" if lower else "higher"), name
    workflows = {p.name for p in (repo / ".github" / "workflows").iterdir()}
    assert workflows == expected["workflows"]
    assert "/.mlops-ci/" in (repo / ".gitignore").read_text().splitlines()
    # What init wrote passes its own repository checks.
    assert main(["validate", "-C", str(repo)]) == 0, capsys.readouterr().err


def test_regression_artifact_description_becomes_the_intended_use(
    templates: dict[str, Path], tmp_path: Path
) -> None:
    repo = adopt_projects.copy(templates["regression"].parent, tmp_path / "r")
    assert init(repo) == 0
    settings = parse_settings((repo / "mlops-ci.yaml").read_text())
    assert settings.intended_use and "Ridge regression" in settings.intended_use


def test_init_twice_writes_nothing_and_keeps_every_edit(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates["reference"].parent, tmp_path / "ref")
    assert init(repo) == 0
    first = written(repo)
    capsys.readouterr()
    assert init(repo, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["written"] == [] and set(again["unchanged"]) == set(first)
    assert written(repo) == first
    # The user tightens a rule, drops a key and a workflow; init again keeps the edit, adds
    # back only what is missing, and writes only the missing workflow.
    edited = first["mlops-ci.yaml"].replace("max_drop_pct: 5", "max_drop_pct: 1")
    edited = edited.replace("on_inconclusive: neutral", "# on_inconclusive: gone")
    (repo / "mlops-ci.yaml").write_text(edited)
    (repo / ".github/workflows/mlops-ci-pr.yml").unlink()
    assert init(repo, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["added"] == ["on_inconclusive"]
    assert "metrics.accuracy" in doc["settings"]["kept"]
    assert doc["written"] == [".github/workflows/mlops-ci-pr.yml", "mlops-ci.yaml"] or set(
        doc["written"]
    ) == {".github/workflows/mlops-ci-pr.yml", "mlops-ci.yaml"}
    text = (repo / "mlops-ci.yaml").read_text()
    assert text.startswith(edited) and "max_drop_pct: 1" in text
    assert yaml.safe_load(text)["on_inconclusive"] == "neutral"
    assert (
        written(repo)[".github/workflows/mlops-ci-pr.yml"]
        == first[".github/workflows/mlops-ci-pr.yml"]
    )
    # An edited workflow is the user's: kept, and said so; --force rewrites it.
    workflow = repo / ".github/workflows/mlops-ci-main.yml"
    workflow.write_text(workflow.read_text() + "# mine\n")
    assert init(repo) == 0
    assert "kept      .github/workflows/mlops-ci-main.yml" in capsys.readouterr().out
    assert workflow.read_text().endswith("# mine\n")
    assert init(repo, "--force") == 0
    assert workflow.read_text() == first[".github/workflows/mlops-ci-main.yml"]


def test_a_metric_that_changed_since_init_is_no_difference(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `# now <value>` comments: retraining changes them, and init again is still a no-op,
    then `--forge gitlab` adds the GitLab file beside the kept policy."""
    repo = adopt_projects.copy(templates["regression"].parent, tmp_path / "r")
    assert init(repo) == 0
    policy = (repo / "mlops-ci.yaml").read_text()
    metrics = json.loads((repo / "metrics.json").read_text())
    metrics["rmse"] += 1.0
    (repo / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert init(repo) == 0
    assert "unchanged mlops-ci.yaml" in capsys.readouterr().out
    assert init(repo, "--forge", "gitlab") == 0
    assert (repo / "mlops-ci.yaml").read_text() == policy
    assert (repo / ".gitlab-ci.yml").is_file()


def test_following_the_advice_for_a_model_init_cannot_find_keeps_the_policy(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No model found: init says how to name it; doing so keeps the user's edits and adds the
    release workflow."""
    repo = adopt_projects.copy(templates["dvclive"].parent, tmp_path / "d")
    assert init(repo) == 0
    out = capsys.readouterr().out
    assert "mlops-ci init --model PATH" in out and "--force" not in out
    assert not (repo / ".github/workflows/mlops-ci-main.yml").exists()
    policy = repo / "mlops-ci.yaml"
    edited = policy.read_text().replace("artifact: model", "artifact: my-model")
    policy.write_text(edited)
    (repo / "dvclive" / "model.txt").write_text("weights\n")
    assert init(repo, "--model", "dvclive/model.txt") == 0
    out = capsys.readouterr().out
    settings = parse_settings(policy.read_text())
    assert (settings.artifact, settings.model) == ("my-model", "dvclive/model.txt")
    assert (repo / ".github/workflows/mlops-ci-main.yml").is_file()
    assert re.search(r"(set  |added) .*\bmodel\b", out), out
    # Setting `model:` by hand and rerunning plain init does the same.
    other = adopt_projects.copy(templates["dvclive"].parent, tmp_path / "e")
    assert init(other) == 0
    text = (other / "mlops-ci.yaml").read_text().replace("artifact: model", "artifact: mine")
    (other / "mlops-ci.yaml").write_text(text + "model: dvclive/model.txt\n")
    assert init(other) == 0
    assert parse_settings((other / "mlops-ci.yaml").read_text()).artifact == "mine"
    assert (other / ".github/workflows/mlops-ci-main.yml").is_file()


USER_GITLAB_CI = """\
workflow:
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
stages: [test]
unit-tests:
  stage: test
  script: [pytest]
"""


def test_an_existing_gitlab_pipeline_is_kept_and_init_says_what_to_add(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates["regression"].parent, tmp_path / "g")
    (repo / ".gitlab-ci.yml").write_text(USER_GITLAB_CI)
    assert init(repo, "--forge", "gitlab", "--force") == 0
    out = capsys.readouterr().out
    assert (repo / ".gitlab-ci.yml").read_text() == USER_GITLAB_CI
    assert f"- remote: {adopt.GITLAB_TEMPLATE_URL}" in out
    assert "MLOPS_CI_INSTALL" in out
    assert "workflow: rules" in out and "merge_request_event" in out
    assert "add mlops-ci, mlops-ci-post, mlops-ci-release, mlops-ci-deploy" in out
    # Once the user has added them, init has nothing more to say about the file.
    with_include = (
        USER_GITLAB_CI.replace(
            "stages: [test]", "stages: [test, " + ", ".join(adopt_gitlab.GITLAB_STAGES) + "]"
        ).replace(
            "  rules:\n", '  rules:\n    - if: $CI_PIPELINE_SOURCE == "merge_request_event"\n'
        )
        + f"include:\n  - remote: {adopt.GITLAB_TEMPLATE_URL}\n"
    )
    (repo / ".gitlab-ci.yml").write_text(with_include)
    assert init(repo, "--forge", "gitlab") == 0
    out = capsys.readouterr().out
    assert "add to your" not in out and "workflow: rules" not in out
    assert "its own `stages:`" not in out


def test_a_self_hosted_gitlab_project_with_its_pipeline_gets_gitlab_steps(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An origin that names no forge (a self-hosted GitLab) and a `.gitlab-ci.yml` of the
    user's: plain `init` speaks GitLab, and writes no GitHub workflows beside their pipeline."""
    repo = adopt_projects.copy(templates["regression"].parent, tmp_path / "s")
    Git(repo).run("remote", "set-url", "origin", "git@git.example.com:ml/forecast.git")
    (repo / ".gitlab-ci.yml").write_text(USER_GITLAB_CI)
    assert init(repo) == 0
    out = capsys.readouterr().out
    assert not (repo / ".github").exists()
    assert (repo / ".gitlab-ci.yml").read_text() == USER_GITLAB_CI
    assert f"- remote: {adopt.GITLAB_TEMPLATE_URL}" in out


def test_gitignore_gets_the_run_directory_once(templates: dict[str, Path], tmp_path: Path) -> None:
    repo = adopt_projects.copy(templates["regression"].parent, tmp_path / "r")
    assert not (repo / ".gitignore").exists()
    assert init(repo) == 0
    assert (repo / ".gitignore").read_text().count("/.mlops-ci/") == 1
    (repo / ".gitignore").write_text("*.tmp\n.mlops-ci/")  # the user's own spelling, no newline
    assert init(repo) == 0
    assert (repo / ".gitignore").read_text() == "*.tmp\n.mlops-ci/"
    assert adopt.gitignore_text("a") == "a\n# mlops-ci run directory\n/.mlops-ci/\n"


def test_gitlab_from_the_remote_url_or_forced(
    templates: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(templates["dvclive"].parent, tmp_path / "d")
    Git(repo).run("remote", "set-url", "origin", "https://gitlab.example.com/team/model.git")
    assert init(repo, "--json") == 0
    assert '"forge": "gitlab"' in capsys.readouterr().out
    ci = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert ci["include"] == [{"remote": adopt.GITLAB_TEMPLATE_URL}]
    assert f"/{adopt.RELEASE_REF}/templates/gitlab/" in adopt.GITLAB_TEMPLATE_URL
    assert (ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml").is_file()
    assert not (repo / ".github").exists()
    other = adopt_projects.copy(templates["dvclive"].parent, tmp_path / "e")
    assert init(other, "--forge", "gitlab") == 0
    assert (other / ".gitlab-ci.yml").read_text() == (repo / ".gitlab-ci.yml").read_text()


def test_generated_files_point_at_the_released_ref_and_the_shipped_schema() -> None:
    assert "v" + __import__("mlops_ci").__version__.split(".")[0] == adopt.RELEASE_REF
    assert adopt.SCHEMA_URL.endswith("/mlops_ci/project/schemas/mlops-ci.schema.json")
    assert json.loads(SCHEMA.read_text())["$id"] == adopt.SCHEMA_URL
    text = "\n".join(adopt.render_github_workflows(adopt.Detected(model="m.pkl")).values())
    for workflow in ("reusable-pr.yml", "reusable-pr-report.yml", "reusable-main.yml"):
        assert f"{adopt.REPOSITORY}/.github/workflows/{workflow}@{adopt.RELEASE_REF}" in text
        assert (ROOT / ".github" / "workflows" / workflow).is_file()


def test_not_a_dvc_project_or_no_pipeline_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "plain"
    repo.mkdir()
    Git(repo).run("init", "--quiet")
    assert init(repo) == 2
    assert "run `dvc init` first" in capsys.readouterr().err
    from dvc.repo import Repo

    Repo.init(str(repo)).close()
    assert init(repo) == 2
    assert "has no dvc.yaml" in capsys.readouterr().err
    assert not (repo / "mlops-ci.yaml").exists()


def _check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if not exe:
        tools.missing("check-jsonschema", "pip install check-jsonschema")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_everything_init_writes_passes_actionlint_and_the_schemas(
    templates: dict[str, Path], tmp_path: Path
) -> None:
    settings_files = [ROOT / "mlops-ci.yaml", ROOT / "mlops_ci" / "reference" / "mlops-ci.yaml"]
    workflows: dict[str, str] = {}
    workflow_files: list[Path] = []
    gitlab_files = []
    for kind in adopt_projects.KINDS:
        for forge in adopt.FORGES:
            repo = adopt_projects.copy(templates[kind].parent, tmp_path / f"{kind}-{forge}")
            assert init(repo, "--forge", forge) == 0
            settings_files.append(repo / "mlops-ci.yaml")
            for path in (repo / ".github" / "workflows").glob("*.yml"):
                workflows[f"{kind}/{path.name}"] = path.read_text()
                workflow_files.append(path)
            if forge == "gitlab":
                gitlab_files.append(repo / ".gitlab-ci.yml")
    assert len(workflows) == 8
    assert tools.actionlint(workflows) == []
    proc = _check_jsonschema("--schemafile", str(SCHEMA), *map(str, settings_files))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _check_jsonschema(
        "--builtin-schema", "vendor.github-workflows", *map(str, workflow_files)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _check_jsonschema("--builtin-schema", "vendor.gitlab-ci", *map(str, gitlab_files))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The schema check can fail: a typo in a key is caught.
    bad = tmp_path / "mlops-ci.yaml"
    bad.write_text((ROOT / "mlops-ci.yaml").read_text() + "on_missing_metirc: fail\n")
    proc = _check_jsonschema("--schemafile", str(SCHEMA), str(bad))
    assert proc.returncode == 1 and "on_missing_metirc" in proc.stdout + proc.stderr


def test_names_that_yaml_would_misread_are_quoted() -> None:
    found = adopt.Detected(
        metrics={"yes": 1.0, "1.5": 0.5, "eval/a.json:acc": 0.9, "train.loss": 0.1},
        directions={"yes": "higher", "1.5": "higher", "eval/a.json:acc": "higher"},
        model="models/on",
        target_branch="release/1.x",
    )
    settings = parse_settings(adopt.render_settings(found))
    assert set(settings.metrics) == set(found.metrics)
    assert settings.model == "models/on"
    assert settings.target_branch == "release/1.x"
    assert adopt.forge_from_remote("git@gitlab.example.com:a/b.git") == "gitlab"
    assert adopt.forge_from_remote("https://github.com/a/b") == "github"
    assert adopt.forge_from_remote(None) == "github"
