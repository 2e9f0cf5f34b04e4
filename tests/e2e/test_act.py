"""act runs this repository's workflows on a copy of the reference project, against the
loopback fake GitHub: pr.yml posts exactly one report comment and one commit status (a second
run updates the same comment); main.yml leaves a version tag and a stage tag and records a
deployment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.demo import set_param
from mlops_ci.git import Git
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow
PR = 7


def comments(state: dict[str, Any]) -> list[dict[str, Any]]:
    return state["repos"][harness.REPOSITORY]["comments"].get(str(PR), [])


@pytest.fixture
def act_bin() -> str:
    return tools.act()


def test_pr_workflow_posts_one_comment_and_one_status(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    repo = harness.make_ci_repo(trained_template, tmp_path / "project", ["pr.yml"])
    git = Git(repo)
    base_sha = git.out("rev-parse", "HEAD")
    git.run("checkout", "--quiet", "-b", "feature/fewer-latency-samples")
    # A change that re-runs `evaluate` only and leaves the quality metrics as they were.
    set_param(repo, "evaluate.latency_samples", 40)
    head_sha = harness.commit_all(repo, "Measure latency on 40 samples")
    side = {"repo": {"full_name": harness.REPOSITORY}}
    payload = {
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "head": {"ref": "feature/fewer-latency-samples", "sha": head_sha, **side},
            "base": {"ref": "main", "sha": base_sha, **side},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }
    pull = f"{harness.REPOSITORY}#{PR}@{head_sha}"
    with harness.fake_forge("github", "--pull", pull) as fake:
        act = harness.Act(act_bin, repo, fake)
        first = act.run("pull_request", payload, workflow="pr.yml", work=tmp_path / "run1")
        assert first.returncode == 0, harness.tail(first)
        state = fake.state()
        assert state["violations"] == []
        assert len(comments(state)) == 1
        comment = comments(state)[0]
        assert "mlops-ci-report:classifier:pr" in comment["body"]
        assert "latency" in comment["body"]
        statuses = state["repos"][harness.REPOSITORY]["statuses"]
        assert len(statuses) == 1
        assert statuses[0]["sha"] == head_sha
        assert statuses[0]["context"] == "mlops-ci/classifier"
        # The run directory was uploaded for the fork-safe half; the status is its verdict.
        uploaded = tmp_path / "run1" / "artifacts" / "mlops-ci-run"
        assert (uploaded / "comparison.json").is_file()
        verdict = json.loads((uploaded / "verdict.json").read_text())["verdict"]
        assert statuses[0]["state"] == ("failure" if verdict == "fail" else "success")

        # The branch moves on: the second run must update the same comment with the new report.
        set_param(repo, "evaluate.latency_samples", 30)
        head_2 = harness.commit_all(repo, "Measure latency on 30 samples")
        payload["pull_request"]["head"]["sha"] = head_2
        second = act.run("pull_request", payload, workflow="pr.yml", work=tmp_path / "run2")
        assert second.returncode == 0, harness.tail(second)
        state = fake.state()
        assert len(comments(state)) == 1, "a second run must update, not add, the comment"
        assert comments(state)[0]["id"] == comment["id"]
        assert comments(state)[0]["body"] != comment["body"]
        assert head_2[:7] in comments(state)[0]["body"]
        assert state["violations"] == []


def test_main_workflow_tags_a_version_and_a_stage_and_records_a_deployment(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    repo = harness.make_ci_repo(trained_template, tmp_path / "project", ["main.yml"])
    git = Git(repo)
    before = git.out("rev-parse", "HEAD~1")
    after = git.out("rev-parse", "HEAD")
    payload = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
    }
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("push", payload, workflow="main.yml", work=tmp_path / "main")
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    deployments = state["repos"][harness.REPOSITORY]["deployments"]
    assert deployments, "no deployment was recorded"
    assert {d["sha"] for d in deployments} == {after}
    # The tags were pushed to origin by the workflow (annotated, as GTO reads them).
    origin = Git(tmp_path / "project" / "origin.git")
    tags = origin.out("tag", "--list").split()
    versions = [t for t in tags if t.startswith("classifier@v")]
    stages = [t for t in tags if t.startswith("classifier#staging#")]
    assert versions, tags
    assert stages, tags
    # The production job (behind the `production` environment) ran after staging.
    assert [t for t in tags if t.startswith("classifier#production#")], tags
    assert origin.out("cat-file", "-t", versions[0]) == "tag"


def fork_run_dir(store: Path, head_sha: str, *, tamper: bool) -> None:
    """What a fork's `pr` run would upload: here with HTML in names and a forged report.md,
    or (tamper) a schema-invalid comparison.json."""
    from tests.test_untrusted import ci_doc, comparison_doc

    doc = comparison_doc(candidate={"ref": "workspace", "sha": head_sha, "dirty": False})
    names = ["accuracy", "f1", "roc_auc", "log_loss", "predict_latency_ms", "train_time_s"]
    doc["metrics"] = [
        {**doc["metrics"][0], "name": name, "key": name, "direction": "higher"} for name in names
    ]
    doc["params"][0]["name"] = '<img src=x onerror="alert(1)">'
    if tamper:
        doc["metrics"][0]["status"] = "<script>"
    run = store / "mlops-ci-run"
    run.mkdir(parents=True)
    (run / "comparison.json").write_text(json.dumps(doc))
    (run / "ci.json").write_text(json.dumps({**ci_doc(pr=PR, head=head_sha), "repository": None}))
    (run / "report.md").write_text("FORGED REPORT")


@pytest.mark.parametrize("tamper", [False, True], ids=["html-in-names", "schema-invalid"])
def test_pr_report_workflow_publishes_only_validated_fork_runs(
    act_bin: str, trained_template: Path, tmp_path: Path, tamper: bool
):
    repo = harness.make_ci_repo(trained_template, tmp_path / "project", ["pr-report.yml"])
    head_sha = "f" * 40  # the fork's commit; the trusted job never checks it out
    fork_run_dir(tmp_path / "run" / "artifacts", head_sha, tamper=tamper)
    payload = {
        "action": "completed",
        "workflow_run": {
            "id": 4242,
            "name": "pr",
            "event": "pull_request",
            "conclusion": "success",
            "head_sha": head_sha,
            "head_branch": "feature",
            "pull_requests": [],  # GitHub leaves it empty for forks
            "head_repository": {"full_name": "mallory/classifier"},
            "repository": {"full_name": harness.REPOSITORY},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }
    with harness.fake_forge("github", "--pull", f"{harness.REPOSITORY}#{PR}@{head_sha}") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("workflow_run", payload, workflow="pr-report.yml", work=tmp_path / "run")
        state = fake.state()
    posted = comments(state)
    if tamper:
        assert proc.returncode != 0
        assert "does not match the comparison schema" in proc.stdout
        assert posted == []
        assert state["repos"].get(harness.REPOSITORY, {}).get("statuses", []) == []
    else:
        assert proc.returncode == 0, harness.tail(proc)
        assert len(posted) == 1
        assert "FORGED" not in posted[0]["body"]
        assert '<img src=x onerror="alert(1)">' not in posted[0]["body"]
        assert len(state["repos"][harness.REPOSITORY]["statuses"]) == 1


def test_sweep_workflow_fans_out_on_the_matrix_and_posts_one_ranked_comment(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    project = tmp_path / "project"
    repo = harness.make_ci_repo(trained_template, project, ["sweep.yml"])
    git = Git(repo)
    base_sha = git.out("rev-parse", "HEAD")
    git.run("checkout", "--quiet", "-b", "sweep/regularisation")
    policy = repo / "mlops-ci.yaml"
    policy.write_text(
        policy.read_text() + "sweep:\n  grid:\n    train.logistic_regression.C: [0.1, 1.0, 10.0]\n"
    )
    head_sha = harness.commit_all(repo, "Sweep C")
    side = {"repo": {"full_name": harness.REPOSITORY}}
    payload = {
        "action": "labeled",
        "number": PR,
        "label": {"name": "sweep"},
        "pull_request": {
            "number": PR,
            "labels": [{"name": "sweep"}],
            "head": {"ref": "sweep/regularisation", "sha": head_sha, **side},
            "base": {"ref": "main", "sha": base_sha, **side},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }
    with harness.fake_forge("github", "--pull", f"{harness.REPOSITORY}#{PR}@{head_sha}") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run(
            "pull_request",
            payload,
            workflow="sweep.yml",
            work=tmp_path / "run",
            env={"MLOPS_CI_DVC_REMOTE_URL": str(project / "dvc-remote")},
        )
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    # One matrix job per candidate, each on its own (act) runner, each uploading its run dir.
    uploaded = sorted(p.name for p in (tmp_path / "run" / "artifacts").iterdir())
    assert uploaded == ["mlops-ci-sweep-c01", "mlops-ci-sweep-c02", "mlops-ci-sweep-c03"]
    (comment,) = [c for c in comments(state) if ":classifier:sweep" in c["body"]]
    rows = [
        line for line in comment["body"].splitlines() if line.startswith("| ") and "| c0" in line
    ]
    assert len(rows) == 3
    statuses = state["repos"][harness.REPOSITORY]["statuses"]
    assert [s["sha"] for s in statuses if s["context"] == "mlops-ci/classifier"] == [head_sha]
