"""GitLab forge against the loopback fake (GitLab's documented REST v4 behaviour)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from mlops_ci.forge import NoPullRequest, detect_forge
from mlops_ci.forge.gitlab import GitLabForge
from mlops_ci.project.errors import ServiceError
from mlops_ci.report import report_marker_id
from tests.fakes.gitlab import DEFAULT_LOGIN, DEFAULT_TOKEN, FakeGitLab

PROJECT = "42"
MR = 7
SHA = "a" * 40
MARKER = report_marker_id("classifier", "pr")


@pytest.fixture
def env(fake_gitlab: FakeGitLab) -> dict[str, str]:
    return fake_gitlab.ci_env(project=PROJECT, mr=MR, head_sha=SHA)


def forge_for(env: dict[str, str], tmp_path: Path) -> GitLabForge:
    forge = detect_forge(env, tmp_path / ".mlops-ci")
    assert isinstance(forge, GitLabForge)
    return forge


def ours(fake: FakeGitLab, marker: str = MARKER) -> list[dict]:
    return [n for n in fake.notes_on(PROJECT, MR) if f"<!-- {marker} -->" in n["body"]]


def test_three_runs_leave_one_note_among_250_others(fake_gitlab, env, tmp_path):
    fake_gitlab.seed_notes(PROJECT, MR, 250, login="reviewer")
    posted = []
    for run in range(3):
        fake_gitlab.clear_log()
        posted.append(forge_for(env, tmp_path).upsert_comment(f"run {run}", MARKER))
        # No MLOPS_CI_COMMENT_AUTHOR: one GET /user once the marker is found.
        lookups = len(fake_gitlab.calls("GET", "/user"))
        assert len(fake_gitlab.requests) - lookups <= math.ceil(251 / 100) + 1
    assert [p.created for p in posted] == [True, False, False]
    (note,) = ours(fake_gitlab)
    assert note["body"].endswith("run 2")
    assert note["author"]["username"] == DEFAULT_LOGIN
    assert posted[0].url == f"{fake_gitlab.url}/group/demo/-/merge_requests/7#note_{note['id']}"
    pages = [r.query.get("page") for r in fake_gitlab.calls("GET", "/notes")]
    assert pages == [None, "2", "3"]


def test_known_author_needs_no_user_lookup_and_two_artifacts_stay_apart(fake_gitlab, env, tmp_path):
    env = {**env, "MLOPS_CI_COMMENT_AUTHOR": DEFAULT_LOGIN}
    fake_gitlab.seed_notes(PROJECT, MR, 120)
    a, b = report_marker_id("a", "pr"), report_marker_id("b", "pr")
    for run in range(2):
        forge = forge_for(env, tmp_path)
        forge.upsert_comment(f"a {run}", a)
        forge.upsert_comment(f"b {run}", b)
    assert [n["body"].splitlines()[-1] for n in ours(fake_gitlab, a)] == ["a 1"]
    assert [n["body"].splitlines()[-1] for n in ours(fake_gitlab, b)] == ["b 1"]
    assert not fake_gitlab.calls("GET", "/user")


def test_job_token_alone_says_what_to_do(fake_gitlab, tmp_path):
    env = fake_gitlab.ci_env(project=PROJECT, mr=MR, token=None)
    forge = forge_for(env, tmp_path)
    with pytest.raises(
        ServiceError, match="CI_JOB_TOKEN cannot post merge request notes"
    ) as caught:
        forge.upsert_comment("x", MARKER)
    assert "MLOPS_CI_TOKEN" in str(caught.value)
    assert "job-token-value" not in str(caught.value)
    assert not fake_gitlab.requests


def test_read_only_token_gets_a_403_hint(fake_gitlab, env, tmp_path):
    fake_gitlab.add_token("glpat-reader", "reader", readonly=True)
    forge = forge_for({**env, "MLOPS_CI_TOKEN": "glpat-reader"}, tmp_path)
    with pytest.raises(ServiceError, match="403 Forbidden") as caught:
        forge.set_status(SHA, "success", "ok", "mlops-ci/classifier")
    assert "`api` scope" in str(caught.value)
    assert "glpat-reader" not in str(caught.value)


def test_rate_limit_429_honours_retry_after(fake_gitlab, env, tmp_path):
    fake_gitlab.rate_limit_next(1, retry_after=1)
    started = time.monotonic()
    forge_for(env, tmp_path).upsert_comment("x", MARKER)
    assert time.monotonic() - started >= 1.0
    assert fake_gitlab.requests[0].status == 429
    assert len(ours(fake_gitlab)) == 1


def test_bad_gateways_then_success(fake_gitlab, env, tmp_path):
    fake_gitlab.fail_next(5, status=502)
    assert forge_for(env, tmp_path).upsert_comment("x", MARKER).created
    assert len(ours(fake_gitlab)) == 1


def test_status_deployment_and_mr_lookup(fake_gitlab, env, tmp_path):
    forge = forge_for(env, tmp_path)
    forge.set_status(SHA, "failure", "d" * 300, "mlops-ci/classifier")
    (status,) = fake_gitlab.project(PROJECT)["statuses"]
    assert status["status"] == "failed"
    assert status["name"] == "mlops-ci/classifier"
    assert len(status["description"]) == 140
    assert status["target_url"] == forge.run_url == f"{fake_gitlab.url}/group/demo/-/pipelines/77"
    forge.record_deployment(SHA, "production", "classifier@v1.0.0", "success", "deployed")
    (dep,) = fake_gitlab.project(PROJECT)["deployments"]
    assert dep["status"] == "success"
    assert dep["environment"]["name"] == "production"
    assert dep["ref"] == "feature"
    assert forge.find_pr(SHA) == MR
    assert forge.find_pr("c" * 40) is None
    assert forge.commit_url(SHA) == f"{fake_gitlab.url}/group/demo/-/commit/{SHA}"
    assert forge.comment_limit == 1_000_000


def test_branch_pipeline_has_no_mr(fake_gitlab, tmp_path):
    forge = forge_for(fake_gitlab.ci_env(project=PROJECT, mr=None), tmp_path)
    with pytest.raises(NoPullRequest, match="CI_MERGE_REQUEST_IID"):
        forge.upsert_comment("x", MARKER)


def test_path_project_id_is_encoded(fake_gitlab, tmp_path):
    env = fake_gitlab.ci_env(project="group/demo", mr=MR, head_sha=SHA)
    forge_for(env, tmp_path).upsert_comment("x", MARKER)
    assert fake_gitlab.requests[0].path.startswith("/api/v4/projects/group%2Fdemo/")
    assert len(fake_gitlab.notes_on("group/demo", MR)) == 1


def test_summary_goes_to_the_run_directory(fake_gitlab, env, tmp_path):
    path = forge_for(env, tmp_path).write_summary("## Report")
    assert path == tmp_path / ".mlops-ci" / "summary.md"
    assert path.read_text() == "## Report\n"
    assert DEFAULT_TOKEN not in path.read_text()
