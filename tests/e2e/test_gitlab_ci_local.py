"""gitlab-ci-local (4.73.0) runs the GitLab template's merge request job on a copy of the
reference project, against the loopback fake GitLab: one MR note and one commit status arrive.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_ci.demo import set_param
from mlops_ci.git import Git
from tests.e2e import harness
from tests.fakes.gitlab import DEFAULT_TOKEN
from tests.lint import tools

pytestmark = pytest.mark.slow
PROJECT = "42"
MR = 7


def test_gitlab_template_posts_one_note_and_one_status(trained_template: Path, tmp_path: Path):
    exe = tools.gitlab_ci_local()
    repo = harness.make_ci_repo(trained_template, tmp_path / "project", [])
    template = harness.ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"
    (repo / "templates" / "gitlab").mkdir(parents=True)
    (repo / "templates" / "gitlab" / template.name).write_text(template.read_text())
    # As a user's .gitlab-ci.yml would: include the template, use the installed mlops-ci.
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n  - local: templates/gitlab/mlops-ci.gitlab-ci.yml\n"
        "variables:\n  MLOPS_CI_INSTALL: installed\n"
    )
    (repo / ".gitignore").open("a").write("\n.gitlab-ci-local/\n")
    base_sha = harness.commit_all(repo, "Add the mlops-ci GitLab template")
    git = Git(repo)
    git.run("push", "--quiet", "origin", "main")
    git.run("checkout", "--quiet", "-b", "feature")
    set_param(repo, "evaluate.latency_samples", 40)
    head_sha = harness.commit_all(repo, "Measure latency on 40 samples")

    with harness.fake_forge("gitlab", "--pull", f"{PROJECT}#{MR}@{head_sha}") as fake:
        variables = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{fake.url}/api/v4",
            "CI_SERVER_URL": fake.url,
            "CI_PROJECT_ID": PROJECT,
            "CI_PROJECT_URL": f"{fake.url}/group/demo",
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(MR),
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": base_sha,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": head_sha,
            "CI_MERGE_REQUEST_PROJECT_ID": PROJECT,
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": PROJECT,
            "MLOPS_CI_TOKEN": DEFAULT_TOKEN,
            "MLOPS_CI_RETRY_BASE": "0.01",
        }
        cmd = [str(exe), "--force-shell-executor", "--no-color"]
        for name, value in variables.items():
            cmd += ["--variable", f"{name}={value}"]
        cmd += ["--ignore-predefined-vars", ",".join(variables)]
        cmd += ["--job", "mlops-ci:merge-request"]
        proc = subprocess.run(
            cmd,
            cwd=repo,
            env=harness.runner_env(tmp_path / "glci"),
            capture_output=True,
            text=True,
            timeout=harness.RUN_TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    project = state["projects"][PROJECT]
    notes = project["notes"][str(MR)]
    assert len(notes) == 1
    assert "mlops-ci-report:classifier" in notes[0]["body"]
    assert len(project["statuses"]) == 1
    status = project["statuses"][0]
    assert status["sha"] == head_sha
    assert status["name"] == "mlops-ci/classifier"
