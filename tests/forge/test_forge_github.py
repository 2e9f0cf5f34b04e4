"""GitHub forge against the loopback fake (validated against GitHub's OpenAPI description)."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import time
from pathlib import Path

import pytest

from mlops_ci.forge import NoPullRequest, detect_forge, status_context
from mlops_ci.forge.github import GitHubForge
from mlops_ci.project.errors import EXIT_SERVICE, ServiceError
from mlops_ci.report import report_marker_id
from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub

REPO = "octo/demo"
PR = 7
SHA = "a" * 40
MARKER = report_marker_id("classifier", "pr")


@pytest.fixture
def env(fake_github: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    return fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR, head_sha=SHA)


def forge_for(env: dict[str, str], tmp_path: Path) -> GitHubForge:
    forge = detect_forge(env, tmp_path / ".mlops-ci")
    assert isinstance(forge, GitHubForge)
    return forge


def ours(fake: FakeGitHub, marker: str = MARKER) -> list[dict]:
    return [c for c in fake.comments_on(REPO, PR) if f"<!-- {marker} -->" in c["body"]]


def test_three_runs_leave_one_comment_among_250_others(fake_github, env, tmp_path):
    fake_github.seed_comments(REPO, PR, 250, login="reviewer")
    posted = []
    for run in range(3):
        fake_github.clear_log()
        forge = forge_for(env, tmp_path)  # a fresh process each run
        posted.append(forge.upsert_comment(f"## Report\nrun {run}", MARKER))
        # Listing 250 earlier comments takes 3 pages of 100; then one PATCH or POST.
        assert len(fake_github.requests) <= math.ceil(250 / 100) + 1
    assert [p.created for p in posted] == [True, False, False]
    assert len({p.id for p in posted}) == 1
    mine = ours(fake_github)
    assert len(mine) == 1
    assert mine[0]["body"].endswith("run 2")
    assert mine[0]["user"]["login"] == "github-actions[bot]"
    assert len(fake_github.comments_on(REPO, PR)) == 251
    assert [(r.query["per_page"], r.query.get("page")) for r in fake_github.calls("GET")] == [
        ("100", None),
        ("100", "2"),
        ("100", "3"),
    ]


@pytest.mark.parametrize("existing", [1, 99, 100, 101, 250, 301])
def test_api_calls_per_upsert_are_bounded(fake_github, env, tmp_path, existing):
    fake_github.seed_comments(REPO, PR, existing)
    forge = forge_for(env, tmp_path)
    forge.upsert_comment("first", MARKER)  # not found: list every page, then POST
    assert len(fake_github.requests) <= math.ceil(existing / 100) + 1
    fake_github.clear_log()
    now = len(fake_github.comments_on(REPO, PR))
    forge.upsert_comment("second", MARKER)  # found on the last page: PATCH
    assert len(fake_github.requests) <= math.ceil(now / 100) + 1
    assert len(fake_github.calls("PATCH")) == 1


def test_two_artifacts_keep_two_comments(fake_github, env, tmp_path):
    fake_github.seed_comments(REPO, PR, 3)
    regressor = report_marker_id("regressor", "pr")
    for run in range(2):
        forge = forge_for(env, tmp_path)
        forge.upsert_comment(f"classifier run {run}", MARKER)
        forge.upsert_comment(f"regressor run {run}", regressor)
    assert [c["body"].splitlines()[-1] for c in ours(fake_github)] == ["classifier run 1"]
    assert [c["body"].splitlines()[-1] for c in ours(fake_github, regressor)] == ["regressor run 1"]
    # A marker that is a prefix of another must not match it.
    forge_for(env, tmp_path).upsert_comment("c", report_marker_id("classifier", "p"))
    assert len(fake_github.comments_on(REPO, PR)) == 3 + 3


def test_five_bad_gateways_then_success_posts_once(fake_github, env, tmp_path):
    fake_github.fail_next(5, status=502)
    forge = forge_for(env, tmp_path)
    posted = forge.upsert_comment("report", MARKER)
    assert posted.created
    assert len(ours(fake_github)) == 1
    assert [r.status for r in fake_github.requests] == [502] * 5 + [200, 201]


def test_bad_gateways_on_the_post_itself_post_once(fake_github, env, tmp_path):
    fake_github.fail_next(3, status=503, method="POST")
    forge = forge_for(env, tmp_path)
    assert forge.upsert_comment("report", MARKER).created
    fake_github.fail_next(2, status=502, method="PATCH")
    assert not forge.upsert_comment("report 2", MARKER).created
    (comment,) = ours(fake_github)
    assert comment["body"].endswith("report 2")
    assert [r.status for r in fake_github.calls("POST")] == [503, 503, 503, 201]


def test_secondary_rate_limit_waits_for_retry_after(fake_github, env, tmp_path):
    fake_github.rate_limit_next(1, retry_after=2, status=403)
    forge = forge_for(env, tmp_path)
    started = time.monotonic()
    posted = forge.upsert_comment("report", MARKER)
    waited = time.monotonic() - started
    assert waited >= 2.0
    assert posted.created
    assert len(ours(fake_github)) == 1
    assert fake_github.requests[0].status == 403


def test_persistent_500_fails_with_exit_3_and_keeps_the_report(
    fake_github, env, tmp_path, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    env = {**env, "MLOPS_CI_RETRIES": "3"}
    forge = forge_for(env, tmp_path)
    forge.write_summary("## Report\nall the numbers")  # what `report` does before posting
    fake_github.fail_next(100, status=500)
    with pytest.raises(ServiceError) as caught:
        forge.upsert_comment("## Report\nall the numbers", MARKER)
    error = caught.value
    assert error.exit_code == EXIT_SERVICE == 3
    assert "failed after 4 attempts" in str(error)
    assert "500" in str(error)
    assert "still in the run directory and the job summary" in str(error)
    assert len(fake_github.requests) == 4
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "all the numbers" in summary
    out = capsys.readouterr()
    everything = [out.out, out.err, caplog.text, str(error), repr(error), repr(forge), summary]
    assert all(DEFAULT_TOKEN not in text for text in everything)
    assert caplog.text.count("retry") == 3


def test_bad_token_is_a_clear_error_without_the_token(fake_github, env, tmp_path):
    forge = forge_for({**env, "GITHUB_TOKEN": "ghp_wrong_token_value"}, tmp_path)
    with pytest.raises(ServiceError) as caught:
        forge.upsert_comment("x", MARKER)
    assert "401" in str(caught.value)
    assert "Bad credentials" in str(caught.value)
    assert "MLOPS_CI_TOKEN or GITHUB_TOKEN" in str(caught.value)
    assert "ghp_wrong_token_value" not in str(caught.value) + repr(forge)
    assert len(fake_github.requests) == 1  # 4xx are never retried


def test_too_long_comment_is_shrunk_not_rejected(fake_github, env, tmp_path):
    forge = forge_for(env, tmp_path)
    body = "\n".join(f"| row {i} | {'x' * 80} |" for i in range(2000))
    forge.upsert_comment(body, MARKER)
    (comment,) = ours(fake_github)
    assert len(comment["body"]) <= forge.comment_limit == 65536
    assert "65,536-character comment limit" in comment["body"]
    assert comment["body"].startswith(f"<!-- {MARKER} -->")


def test_personal_token_finds_its_login_and_skips_a_spoofed_marker(fake_github, env, tmp_path):
    fake_github.add_token("ghp_maintainer", "maintainer")
    env = {**env, "MLOPS_CI_TOKEN": "ghp_maintainer"}
    fake_github.seed_comments(REPO, PR, 1, login="intruder", body=f"<!-- {MARKER} --> fake report")
    forge = forge_for(env, tmp_path)
    assert forge.upsert_comment("real", MARKER).created
    assert forge.upsert_comment("real again", MARKER).created is False
    bodies = {c["user"]["login"]: c["body"] for c in ours(fake_github)}
    assert bodies["intruder"].endswith("fake report (1)")
    assert bodies["maintainer"].endswith("real again")
    assert len(fake_github.calls("GET", "/user")) == 1


def test_push_event_finds_the_pr_through_the_commit(fake_github, tmp_path):
    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=None, event="push", head_sha=SHA)
    forge = forge_for(env, tmp_path)
    with pytest.raises(NoPullRequest):
        forge.upsert_comment("x", MARKER)
    fake_github.add_pull(REPO, 12, head_sha=SHA)
    forge = forge_for(env, tmp_path)
    assert forge.find_pr(SHA) == 12
    assert forge.find_pr("c" * 40) is None
    forge.upsert_comment("on push", MARKER)
    assert len(fake_github.comments_on(REPO, 12)) == 1


def test_status_description_is_cut_to_140_and_links_the_run(fake_github, env, tmp_path):
    forge = forge_for(env, tmp_path)
    result = forge.set_status(
        SHA, "failure", "accuracy dropped " * 20, status_context("classifier")
    )
    (status,) = fake_github.repo(REPO).statuses
    assert status["context"] == "mlops-ci/classifier"
    assert status["state"] == "failure"
    assert len(status["description"]) == 140
    assert status["description"].endswith("…")
    assert status["target_url"] == forge.run_url == f"{fake_github.url}/{REPO}/actions/runs/4242"
    assert result["url"] == forge.run_url
    with pytest.raises(ValueError, match="not one of"):
        forge.set_status(SHA, "passed", "x", "mlops-ci/classifier")


def test_check_run_with_app_token_and_none_with_a_pat(fake_github, env, tmp_path):
    forge = forge_for(env, tmp_path)
    url = forge.create_check_run(SHA, "mlops-ci/classifier", "success", "Gate passed", "y" * 70_000)
    assert url
    assert "/runs/" in url
    (run,) = fake_github.repo(REPO).check_runs
    assert len(run["output"]["summary"]) <= 65535
    fake_github.add_token("ghp_person", "person")
    pat = forge_for({**env, "MLOPS_CI_TOKEN": "ghp_person"}, tmp_path)
    assert pat.create_check_run(SHA, "mlops-ci/classifier", "failure", "t", "s") is None


def test_deployment_and_its_status(fake_github, env, tmp_path):
    forge = forge_for(env, tmp_path)
    record = forge.record_deployment(
        SHA, "production", "classifier@v1.2.0", "success", "deployed", url="file:///models"
    )
    (dep,) = fake_github.repo(REPO).deployments
    assert dep["environment"] == "production"
    assert dep["payload"]["version"] == "classifier@v1.2.0"
    (status,) = fake_github.repo(REPO).deployment_statuses[dep["id"]]
    assert status["state"] == "success"
    assert status["environment_url"] == "file:///models"
    assert record["id"] == dep["id"]
    assert record["state"] == "success"


def test_step_summary_is_appended_and_held_under_1_mib(fake_github, env, tmp_path):
    forge = forge_for(env, tmp_path)
    path = Path(env["GITHUB_STEP_SUMMARY"])
    path.write_text("earlier step\n")
    assert forge.write_summary("## first") == path
    forge.write_summary("é" * 2_000_000)
    text = path.read_text()
    assert text.startswith("earlier step\n## first\n")
    assert len(text.encode()) <= 1024 * 1024
    assert "1 MiB limit" in text


def test_commit_url_and_run_url(fake_github, env, tmp_path):
    forge = forge_for(env, tmp_path)
    assert forge.commit_url(SHA) == f"{fake_github.url}/{REPO}/commit/{SHA}"
    assert forge.name == "github"
    assert forge.comment_limit == 65536


def test_persistent_500_through_report_post_exits_3(fake_github, tmp_path, capsys, monkeypatch):
    from mlops_ci.cli import main
    from tests.report.test_report_inputs import make_comparison

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "commit", "--quiet", "--allow-empty", "-m", "c"], check=True
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "comparison.json").write_text(json.dumps(make_comparison()))
    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR, head_sha=SHA)
    for key, value in {**env, "MLOPS_CI_RETRIES": "2"}.items():
        monkeypatch.setenv(key, value)
    fake_github.fail_next(100, status=500)
    code = main(["report", "-C", str(repo), "--run-dir", str(run_dir), "--post"])
    out = capsys.readouterr()
    assert code == EXIT_SERVICE
    assert "failed after 3 attempts, last: answered 500: Server Error" in out.err
    assert "rerun `mlops-ci report --post` once the forge answers" in out.err
    assert (run_dir / "report.md").is_file()
    assert Path(env["GITHUB_STEP_SUMMARY"]).read_text().strip()
    assert len(fake_github.requests) == 3
    files = [
        p.read_text(errors="replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and ".git" not in p.parts
    ]
    assert all(DEFAULT_TOKEN not in text for text in [out.out, out.err, *files])
