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

from mlops_ci.commands.demo import set_param
from mlops_ci.project.git import Git
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow
PR = 7


def comments(state: dict[str, Any]) -> list[dict[str, Any]]:
    return state["repos"][harness.REPOSITORY]["comments"].get(str(PR), [])


@pytest.fixture
def act_bin() -> str:
    return tools.act()


def pr_payload(head_sha: str, base_sha: str, branch: str, head_repo: str = harness.REPOSITORY):
    return {
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "head": {"ref": branch, "sha": head_sha, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "sha": base_sha, "repo": {"full_name": harness.REPOSITORY}},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }


def headline(body: str) -> str:
    """The first line under the report's title."""
    lines = [line for line in body.splitlines() if line.strip()]
    title = next(i for i, line in enumerate(lines) if line.startswith("### "))
    return lines[title + 1]


def test_main_then_a_pull_request_on_fresh_runners(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    """Every job starts with an empty DVC cache and no outputs; the shared remote (a
    local directory, empty at first) is all they have in common. main trains, gates, pushes,
    promotes and deploys; a pull request that leaves the pipeline as it is then runs 0 stages,
    has confidence intervals and posts one comment whose headline is the verdict."""
    project = tmp_path / "project"
    repo = harness.make_ci_repo(trained_template, project, ["main.yml", "pr.yml"])
    harness.forget_dvc_state(repo)
    remote = tmp_path / "shared-remote"
    remote.mkdir()
    env = {"MLOPS_CI_DVC_REMOTE_URL": str(remote)}
    git = Git(repo)
    main_sha = git.out("rev-parse", "HEAD")
    push = {
        "ref": "refs/heads/main",
        "before": git.out("rev-parse", "HEAD~1"),
        "after": main_sha,
        "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
    }
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("push", push, workflow="main.yml", work=tmp_path / "main", env=env)
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    assert "3 ran" in proc.stdout, "main trains from scratch: nothing to restore yet"
    assert "pushed outputs and run-cache to the DVC remote" in proc.stdout
    assert (remote / "runs").is_dir(), "the run-cache reached the shared remote"
    deployments = state["repos"][harness.REPOSITORY]["deployments"]
    assert deployments and {d["sha"] for d in deployments} == {main_sha}
    origin = Git(project / "origin.git")
    tags = origin.out("tag", "--list").split()
    versions = [t for t in tags if t.startswith("classifier@v")]
    assert versions and origin.out("cat-file", "-t", versions[0]) == "tag"
    assert [t for t in tags if t.startswith("classifier#staging#")], tags
    # production runs on its own runner: it restored the model from the remote to deploy it.
    assert [t for t in tags if t.startswith("classifier#production#")], tags

    git.run("checkout", "--quiet", "-b", "docs/notes")
    (repo / "NOTES.md").write_text("The pipeline is as it was.\n")
    head_sha = harness.commit_all(repo, "Add notes")
    payload = pr_payload(head_sha, main_sha, "docs/notes")
    with harness.fake_forge("github", "--pull", f"{harness.REPOSITORY}#{PR}@{head_sha}") as fake:
        act = harness.Act(act_bin, repo, fake)
        work = tmp_path / "pr"
        proc = act.run("pull_request", payload, workflow="pr.yml", work=work, env=env)
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
        # The branch moves on: the next run updates the same comment (one per pull request).
        (repo / "NOTES.md").write_text("The pipeline is still as it was.\n")
        head_2 = harness.commit_all(repo, "Reword the notes")
        payload["pull_request"]["head"]["sha"] = head_2
        again = act.run("pull_request", payload, workflow="pr.yml", work=tmp_path / "pr2", env=env)
        assert again.returncode == 0, harness.tail(again)
        moved = fake.state()
    assert state["violations"] == [] and moved["violations"] == []
    uploaded = work / "artifacts" / "mlops-ci-run"
    train = json.loads((uploaded / "train.json").read_text())
    assert train["stages"][0]["status"] == "restored", train["stages"]
    comparison = json.loads((uploaded / "comparison.json").read_text())
    accuracy = next(m for m in comparison["metrics"] if m["name"] == "accuracy")
    assert accuracy["ci_low"] is not None and accuracy["ci_high"] is not None, accuracy
    (comment,) = comments(state)
    assert headline(comment["body"]).startswith("Gate: "), comment["body"][:400]
    verdict = json.loads((uploaded / "verdict.json").read_text())["verdict"]
    # pr.yml announces the run before training: `pending` first, then the verdict.
    pending, status = state["repos"][harness.REPOSITORY]["statuses"]
    assert (pending["sha"], pending["state"]) == (head_sha, "pending")
    assert (status["sha"], status["context"]) == (head_sha, "mlops-ci/classifier")
    assert status["state"] == ("failure" if verdict == "fail" else "success")
    assert (uploaded / "ci.json").is_file(), "pr-report.yml finds the pull request by ci.json"
    (updated,) = comments(moved)
    assert updated["id"] == comment["id"], "a second run must update, not add, the comment"
    assert updated["body"] != comment["body"] and head_2[:7] in updated["body"]
    assert [
        (s["sha"], s["state"] == "pending") for s in moved["repos"][harness.REPOSITORY]["statuses"]
    ] == [
        (head_sha, True),
        (head_sha, False),
        (head_2, True),
        (head_2, False),
    ]

    ran = [s["name"] for s in train["stages"] if s["status"] == "ran"]
    # Equal inputs give equal outputs (timing is kept out of cached outputs), so a fresh runner
    # restores every stage of an unchanged pipeline from what main pushed.
    assert not ran, f"a fresh runner re-ran {ran} of an unchanged pipeline"


def test_fork_pr_through_pr_and_pr_report_fails_under_the_default_branch_policy(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    """A fork's regression, with the fork's own policy loosened: pr.yml (read-only, no post)
    uploads the run directory with ci.json; pr-report.yml, on the default branch, posts one
    comment and a failing status, judged by the default branch's mlops-ci.yaml."""
    repo = harness.make_ci_repo(trained_template, tmp_path / "project", ["pr.yml", "pr-report.yml"])
    git = Git(repo)
    base_sha = git.out("rev-parse", "HEAD")
    git.run("checkout", "--quiet", "-b", "fork/threshold")
    set_param(repo, "evaluate.threshold", 0.995)  # predicts almost nothing positive
    policy = repo / "mlops-ci.yaml"
    policy.write_text(policy.read_text().replace("min: 0.9, max_drop: 0.01", "min: 0.1"))
    head_sha = harness.commit_all(repo, "Raise the threshold; relax the gate")
    payload = pr_payload(head_sha, base_sha, "fork/threshold", head_repo="mallory/classifier")
    work = tmp_path / "run"
    with harness.fake_forge("github", "--pull", f"{harness.REPOSITORY}#{PR}@{head_sha}") as fake:
        act = harness.Act(act_bin, repo, fake)
        pr = act.run("pull_request", payload, workflow="pr.yml", work=work)
        assert pr.returncode != 0, "the fork's own run fails on the failed gate"
        assert fake.state()["repos"].get(harness.REPOSITORY, {}).get("statuses", []) == []
        uploaded = work / "artifacts" / "mlops-ci-run"
        assert json.loads((uploaded / "ci.json").read_text())["pr_number"] == PR
        # The trusted half runs on the default branch, as GitHub runs workflow_run.
        git.run("checkout", "--quiet", "main")
        run = {
            "action": "completed",
            "workflow_run": {
                "id": 4243,
                "name": "pr",
                "event": "pull_request",
                "conclusion": "failure",
                "head_sha": head_sha,
                "head_branch": "fork/threshold",
                "pull_requests": [],  # GitHub leaves it empty for forks
                "head_repository": {"full_name": "mallory/classifier"},
                "repository": {"full_name": harness.REPOSITORY},
            },
            "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
        }
        report = act.run("workflow_run", run, workflow="pr-report.yml", work=work)
        assert report.returncode == 0, harness.tail(report)
        state = fake.state()
    assert state["violations"] == []
    (comment,) = comments(state)
    assert headline(comment["body"]).startswith("Gate: "), comment["body"][:400]
    assert "fail" in headline(comment["body"]).lower()
    (status,) = state["repos"][harness.REPOSITORY]["statuses"]
    assert (status["sha"], status["context"], status["state"]) == (
        head_sha,
        "mlops-ci/classifier",
        "failure",
    )


def fork_run_dir(store: Path, head_sha: str, *, tamper: bool) -> None:
    """What a fork's `pr` run would upload: here with HTML in names and a forged report.md,
    or (tamper) a schema-invalid comparison.json."""
    from tests.commands.test_untrusted import ci_doc, comparison_doc

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
        # The pull request's own gate already judged this commit (as pr.yml leaves it).
        verdict = {"state": "failure", "context": "mlops-ci/classifier", "description": "fail: x"}
        harness.post_json(fake, f"/repos/{harness.REPOSITORY}/statuses/{head_sha}", verdict)
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
    # The sweep reports under its own context; the PR's verdict status is left as it was.
    gate = [s for s in statuses if s["context"] == "mlops-ci/classifier"]
    assert [(s["sha"], s["state"], s["description"]) for s in gate] == [
        (head_sha, "failure", "fail: x")
    ]
    assert [s["sha"] for s in statuses if s["context"] == "mlops-ci/classifier/sweep"] == [head_sha]
