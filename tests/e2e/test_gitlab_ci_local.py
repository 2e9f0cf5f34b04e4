"""gitlab-ci-local (4.73.0) runs the GitLab template on a copy of the reference project, against
the loopback fake GitLab, job by job in fresh build directories (no DVC cache carried between
jobs; a local directory is the shared DVC remote):

- the default branch's pipeline trains, gates, pushes outputs and run-cache, promotes a version
  to staging with its tags pushed (through MLOPS_CI_PUSH_TOKEN and MLOPS_CI_PUSH_URL, in the
  promote job only) and deploys it;
- a merge request pipeline then trains without any token (0 stages run: all restored), and the
  separate post job leaves one note whose headline is the verdict and one commit status.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_ci.project.git import Git
from tests.e2e import harness
from tests.fakes.gitlab import DEFAULT_TOKEN
from tests.lint import tools

pytestmark = pytest.mark.slow
PROJECT = "42"
MR = 7


def gitlab_ci_local(
    exe: Path, repo: Path, work: Path, variables: dict[str, str], *jobs: str
) -> subprocess.CompletedProcess[str]:
    cmd = [str(exe), "--force-shell-executor", "--no-color"]
    for name, value in variables.items():
        cmd += ["--variable", f"{name}={value}"]
    cmd += ["--ignore-predefined-vars", ",".join(variables)]
    for job in jobs:
        cmd += ["--job", job]
    return subprocess.run(
        cmd,
        cwd=repo,
        env=harness.runner_env(work),
        capture_output=True,
        text=True,
        timeout=harness.RUN_TIMEOUT,
        check=False,
    )


def test_gitlab_main_then_merge_request_on_fresh_jobs(trained_template: Path, tmp_path: Path):
    exe = tools.gitlab_ci_local()
    project = tmp_path / "project"
    repo = harness.make_ci_repo(trained_template, project, [])
    template = harness.ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"
    (repo / "templates" / "gitlab").mkdir(parents=True)
    (repo / "templates" / "gitlab" / template.name).write_text(template.read_text())
    # As a user's .gitlab-ci.yml would: include the template, use the installed mlops-ci.
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n  - local: templates/gitlab/mlops-ci.gitlab-ci.yml\n"
        "variables:\n  MLOPS_CI_INSTALL: installed\n"
    )
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write("\n.gitlab-ci-local/\n")
    git = Git(repo)
    before = git.out("rev-parse", "HEAD")
    main_sha = harness.commit_all(repo, "Add the mlops-ci GitLab template")
    git.run("push", "--quiet", "origin", "main")
    harness.forget_dvc_state(repo)
    remote = tmp_path / "shared-remote"
    remote.mkdir()
    origin = project / "origin.git"

    with harness.fake_forge("gitlab", "--pull", f"{PROJECT}#{MR}@{main_sha}") as fake:
        common = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{fake.url}/api/v4",
            "CI_SERVER_URL": fake.url,
            "CI_PROJECT_ID": PROJECT,
            "CI_PROJECT_URL": f"{fake.url}/group/demo",
            "CI_DEFAULT_BRANCH": "main",
            "MLOPS_CI_TOKEN": DEFAULT_TOKEN,
            "MLOPS_CI_REMOTE_URL": str(remote),
            "MLOPS_CI_RETRY_BASE": "0.01",
        }
        main = {
            **common,
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_REF_NAME": "main",
            "CI_COMMIT_SHA": main_sha,
            "CI_COMMIT_BEFORE_SHA": before,
            # Only the promote job may push tags: a push URL and a token, given to git there.
            "MLOPS_CI_PUSH_TOKEN": "push-token-for-tags",
            "MLOPS_CI_PUSH_URL": str(origin),
        }
        proc = gitlab_ci_local(
            exe,
            repo,
            tmp_path / "glci-main",
            main,
            "mlops-ci:main",
            "mlops-ci:promote",
            "mlops-ci:staging",
        )
        assert proc.returncode == 0, harness.tail(proc, 120)
        assert "3 ran" in proc.stdout, "main trains from scratch"
        assert "pushed outputs and run-cache to the DVC remote" in proc.stdout
        assert (remote / "runs").is_dir()
        tags = Git(origin).out("tag", "--list").split()
        assert [t for t in tags if t.startswith("classifier@v")], tags
        assert [t for t in tags if t.startswith("classifier#staging#")], tags
        state = fake.state()["projects"][PROJECT]
        assert [d["sha"] for d in state["deployments"]] == [main_sha]
        assert [s["sha"] for s in state["statuses"]] == [main_sha]

        git.run("checkout", "--quiet", "-b", "feature")
        (repo / "NOTES.md").write_text("The pipeline is as it was.\n")
        head_sha = harness.commit_all(repo, "Add notes")
        mr = {
            **common,
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(MR),
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": main_sha,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": head_sha,
            "CI_MERGE_REQUEST_PROJECT_ID": PROJECT,
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": PROJECT,
            "CI_COMMIT_SHA": head_sha,
        }
        proc = gitlab_ci_local(
            exe,
            repo,
            tmp_path / "glci-mr",
            mr,
            "mlops-ci:merge-request",
            "mlops-ci:merge-request:post",
        )
        assert proc.returncode == 0, harness.tail(proc, 120)
        state = fake.state()
    assert state["violations"] == []
    project_state = state["projects"][PROJECT]
    (note,) = project_state["notes"][str(MR)]
    assert "mlops-ci-report:classifier" in note["body"]
    lines = [line for line in note["body"].splitlines() if line.strip()]
    title = next(i for i, line in enumerate(lines) if line.startswith("### "))
    assert lines[title + 1].startswith("Gate: "), note["body"][:400]
    statuses = [s for s in project_state["statuses"] if s["sha"] == head_sha]
    assert len(statuses) == 1
    assert statuses[0]["name"] == "mlops-ci/classifier"
    # Nothing re-runs on a fresh runner: main pushed what the unchanged pipeline needs.
    summary = [
        line for line in proc.stdout.splitlines() if " in " in line and " s (mlops-ci" in line
    ]
    assert summary and all(" ran" not in line for line in summary), summary
