"""act runs the trusted workflows against the two attacks of docs/security.md that need the
whole chain: a fork's forged verdict record, and a retrain run directory with a foreign commit.

- pr-report.yml publishes a fork's run whose policy diff carries a complete verdict record for
  its own head (accuracy 0.50 under main's min); a maintainer's accept on review.yml then
  changes nothing: the status stays failure.
- retrain.yml's publish job alone gets a run directory whose bundle holds a commit on an orphan
  base adding a workflow file: it exits 2 naming why, and the origin's refs are unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.gate.verdict import RuleResult, Verdict
from mlops_ci.project.git import Git
from mlops_ci.report.waivers import encode_payload
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow
PR = 7
FORK = "mallory/classifier"
MAINTAINER, TOKEN = "maint", "ghp_maintainer_token"
RETRAIN_BRANCH = "mlops-ci/retrain/classifier"


def forged_fork_run(store: Path, head: str) -> None:
    from tests.commands.test_untrusted import ci_doc, comparison_doc

    forged = Verdict(
        "fail",
        "latency regressed",
        [RuleResult("latency", "max", 10.0, 12.0, "fail", "latency 12 > max 10")],
        artifact="classifier",
        head_sha=head,
    )
    doc = comparison_doc(
        candidate={"ref": "workspace", "sha": head, "dirty": False},
        policy_change={"changed": True, "diff": f"+# tuned\n{encode_payload(forged.to_dict())}\n"},
    )
    doc["metrics"][0].update(candidate=0.5, delta=-0.45, status="regressed")
    run = store / "mlops-ci-run"
    run.mkdir(parents=True)
    (run / "comparison.json").write_text(json.dumps(doc))
    (run / "ci.json").write_text(json.dumps({**ci_doc(pr=PR, head=head), "repository": None}))


def test_a_forks_forged_record_and_a_maintainers_accept_leave_the_status_failure(
    trained_template: Path, tmp_path: Path
):
    act_bin = tools.act()
    repo = harness.make_ci_repo(trained_template, tmp_path / "project", ["pr-report.yml", "review.yml"])  # fmt: skip
    head = "f" * 40
    forged_fork_run(tmp_path / "publish" / "artifacts", head)
    workflow_run = {
        "action": "completed",
        "workflow_run": {
            "id": 4242, "name": "pr", "event": "pull_request", "conclusion": "success",
            "head_sha": head, "head_branch": "feature", "pull_requests": [],
            "head_repository": {"full_name": FORK},
            "repository": {"full_name": harness.REPOSITORY},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }  # fmt: skip
    args = ["--token", f"{TOKEN}={MAINTAINER}", "--permission", f"{MAINTAINER}=maintain"]
    with harness.fake_forge("github", *args) as fake:
        harness.post_json(
            fake,
            "/_fake/pull",
            {"repo": harness.REPOSITORY, "number": PR, "head_sha": head, "head_repo": FORK},
        )
        act = harness.Act(act_bin, repo, fake)
        published = act.run(
            "workflow_run", workflow_run, workflow="pr-report.yml", work=tmp_path / "publish"
        )
        assert published.returncode == 0, harness.tail(published)
        path = f"/repos/{harness.REPOSITORY}/issues/{PR}/comments"
        accept = harness.post_json(fake, path, {"body": "/mlops-ci accept latency fine"}, TOKEN)
        comment = {
            "action": "created",
            "issue": {"number": PR, "pull_request": {"url": f"/pulls/{PR}"}},
            "comment": accept,
            "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
        }
        reviewed = act.run(
            "issue_comment", comment, workflow="review.yml", work=tmp_path / "review"
        )
        state = fake.state()

    assert state["violations"] == []
    statuses = [
        s["state"] for s in state["repos"][harness.REPOSITORY]["statuses"] if s["sha"] == head
    ]
    assert statuses == ["failure"], harness.tail(reviewed)
    bodies = [c["body"] for c in state["repos"][harness.REPOSITORY]["comments"][str(PR)]]
    assert not any("<!-- mlops-ci-verdict" in b for b in bodies)
    assert "fork" in bodies[-1] and "nothing changed" in bodies[-1]


def publish_job_alone(repo: Path) -> None:
    """retrain.yml with its publish job only (steps unchanged): the run directory it downloads
    is then the one this test put in the artifact store, as a poisoned reproduce job would."""
    path = repo / ".github" / "workflows" / "retrain.yml"
    text = path.read_text()
    start, end = text.index("\n  reproduce:\n"), text.index("\n  publish:\n")
    text = text[:start] + text[end:]
    assert "    needs: reproduce\n" in text
    path.write_text(text.replace("    needs: reproduce\n", ""))
    harness.commit_all(repo, "The publish job alone")
    Git(repo).run("push", "--quiet", "origin", "main")


def test_a_retrain_run_directory_with_a_foreign_commit_is_refused_and_nothing_pushed(
    trained_template: Path, tmp_path: Path
):
    act_bin = tools.act()
    project = tmp_path / "project"
    repo = harness.make_ci_repo(trained_template, project, ["retrain.yml"])
    publish_job_alone(repo)
    origin = project / "origin.git"
    before = Git(origin).out("for-each-ref", "--format=%(refname) %(objectname)")
    # What a poisoned reproduce job would upload: an orphan base, a workflow file, a bot author.
    git = Git(repo)
    git.run("checkout", "-q", "--orphan", "evil")
    git.run("rm", "-rq", "--cached", ".")
    identity = {"GIT_AUTHOR_NAME": "mlops-ci[bot]", "GIT_AUTHOR_EMAIL": "x@evil.example",
                "GIT_COMMITTER_NAME": "mlops-ci[bot]", "GIT_COMMITTER_EMAIL": "x@evil.example"}  # fmt: skip

    def commit_as(message: str) -> str:
        subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True, env={**os.environ, **identity})  # fmt: skip
        return git.out("rev-parse", "HEAD")

    (repo / "BASE").write_text("an unrelated history\n")
    git.run("add", "BASE")
    orphan = commit_as("An unrelated base")
    evil = repo / ".github" / "workflows" / "evil.yml"
    evil.parent.mkdir(parents=True, exist_ok=True)
    evil.write_text("on: push\n")
    git.run("add", ".github/workflows/evil.yml")
    commit_as("Retrain classifier\n\nSigned-off-by: mlops-ci[bot]")
    commit = git.out("rev-parse", "HEAD")
    git.run("branch", "-f", RETRAIN_BRANCH, commit)
    git.run("checkout", "-q", "-f", "main")
    evil.unlink(missing_ok=True)
    (repo / "BASE").unlink(missing_ok=True)
    store = tmp_path / "publish" / "artifacts" / "mlops-ci-retrain"
    store.mkdir(parents=True)
    git.run("bundle", "create", str(store / "retrain.bundle"), f"refs/heads/{RETRAIN_BRANCH}")
    git.run("branch", "-D", RETRAIN_BRANCH)
    from tests.commands.test_untrusted import comparison_doc

    (store / "comparison.json").write_text(json.dumps(comparison_doc()))
    doc: dict[str, Any] = {
        "schema_version": 1, "kind": "retrain", "changed": True, "artifact": "classifier",
        "target_branch": "main", "base_sha": orphan, "commit_sha": commit, "tree_sha": None,
        "bundle": "retrain.bundle", "changed_files": [".github/workflows/evil.yml"],
        "sources": [], "stages": [],
    }  # fmt: skip
    (store / "retrain.json").write_text(json.dumps(doc))

    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run(
            "schedule", {"schedule": "17 4 * * 1", "repository": {"full_name": harness.REPOSITORY}},
            workflow="retrain.yml", work=tmp_path / "publish",
        )  # fmt: skip
        state = fake.state()

    assert proc.returncode != 0, harness.tail(proc)
    log = proc.stdout + proc.stderr
    assert "target branch's tip" in log and "nothing pushed" in log, harness.tail(proc)
    assert "exit status 2" in log, harness.tail(proc)
    assert Git(origin).out("for-each-ref", "--format=%(refname) %(objectname)") == before
    assert state["repos"].get(harness.REPOSITORY, {}).get("pulls", {}) == {}
