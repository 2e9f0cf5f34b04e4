"""gitlab-ci-local runs the template's scheduled retrain jobs on a copy of the reference project
whose pipeline reads a real `dvc import`, against the loopback fake GitLab: new upstream data
opens one labelled merge request with the report as its note; a rerun without new data opens
none and pushes nothing; newer data updates the same merge request (same branch, a new commit,
the note edited in place)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_ci.project.git import Git
from tests import retrain_project
from tests.e2e import harness
from tests.e2e.test_gitlab_ci_local import (
    PROJECT,
    default_image,
    gitlab_ci_local,
    gitlab_repo,
    image_path,
)
from tests.fakes.gitlab import DEFAULT_TOKEN
from tests.lint import tools

pytestmark = pytest.mark.slow
BRANCH = "mlops-ci/retrain/classifier"
JOBS = ("mlops-ci:retrain", "mlops-ci:retrain:publish")


def refs(origin: Path) -> dict[str, str]:
    lines = Git(origin).out("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return dict(line.split() for line in lines)


def test_scheduled_retrain_opens_then_keeps_then_updates_one_merge_request(
    trained_template: Path, tmp_path: Path
):
    exe = tools.gitlab_ci_local()
    project = tmp_path / "project"
    repo = gitlab_repo(trained_template, project)
    upstream = retrain_project.make_upstream(tmp_path)
    main_sha = retrain_project.add_import(repo, upstream)
    harness.forget_dvc_state(repo)
    origin = project / "origin.git"

    def retrain(fake: harness.FakeServer, name: str) -> str:
        variables = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{fake.url}/api/v4",
            "CI_SERVER_URL": fake.url,
            "CI_PROJECT_ID": PROJECT,
            "CI_PROJECT_URL": f"{fake.url}/group/demo",
            "CI_DEFAULT_BRANCH": "main",
            "CI_PIPELINE_SOURCE": "schedule",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_REF_NAME": "main",
            "CI_COMMIT_SHA": main_sha,
            "MLOPS_CI_TOKEN": DEFAULT_TOKEN,
            "MLOPS_CI_PUSH_TOKEN": "push-token-for-the-branch",
            "MLOPS_CI_PUSH_URL": str(origin),
            "MLOPS_CI_REMOTE_URL": str(project / "dvc-remote"),
            "MLOPS_CI_RETRY_BASE": "0.01",
            "PATH": image_path(default_image(), tmp_path / name / "image"),
        }
        proc = gitlab_ci_local(exe, repo, tmp_path / name, variables, *JOBS)
        assert proc.returncode == 0, harness.tail(proc, 120)
        return proc.stdout

    def mrs(state: dict[str, Any]) -> dict[str, Any]:
        return state["projects"].get(PROJECT, {}).get("mrs", {})

    with harness.fake_forge("gitlab") as fake:
        retrain_project.write_upstream(upstream, 150)
        retrain(fake, "first")
        first, first_refs = fake.state(), refs(origin)
        second_log = retrain(fake, "second")
        second, second_refs = fake.state(), refs(origin)
        retrain_project.write_upstream(upstream, 90)
        retrain(fake, "third")
        third, third_refs = fake.state(), refs(origin)

    assert first["violations"] == second["violations"] == third["violations"] == []
    ((iid, mr),) = mrs(first).items()
    assert (mr["source_branch"], mr["target_branch"], mr["labels"]) == (
        BRANCH,
        "main",
        ["mlops-ci:retrain"],
    )
    tip = first_refs[f"refs/heads/{BRANCH}"]
    assert "Signed-off-by: mlops-ci[bot]" in Git(origin).out("log", "-1", "--format=%B", tip)
    (note,) = first["projects"][PROJECT]["notes"][iid]
    assert "mlops-ci-report:classifier:retrain" in note["body"]
    assert [s["sha"] for s in first["projects"][PROJECT]["statuses"]] == [tip]

    assert second_refs == first_refs, "a rerun without new data must push nothing"
    assert list(mrs(second)) == [iid]
    assert "already holds this change" in second_log

    assert list(mrs(third)) == [iid]
    assert third_refs[f"refs/heads/{BRANCH}"] != tip
    (updated,) = third["projects"][PROJECT]["notes"][iid]
    assert updated["id"] == note["id"] and updated["body"] != note["body"]
