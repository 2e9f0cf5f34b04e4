"""Progress of a pull request run: the status `pending` and the "in progress" comment reach the
forge before any stage runs (a stage here calls the fake GitHub, so the fake's request log
orders them), the final report then replaces that comment, and the job log and summary show
each stage as it starts and finishes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_ci.cli import main
from mlops_ci.commands.pr import IN_PROGRESS_DESCRIPTION, run_pr
from mlops_ci.project.git import Git

REPO = "octo/demo"
PR = 7
pytestmark = pytest.mark.slow

# The stage reports in to the fake GitHub without a token (it has none): the request is logged.
PING = (
    "import os, urllib.error, urllib.request\n"
    "try:\n"
    "    urllib.request.urlopen(os.environ['PING_URL'])\n"
    "except urllib.error.HTTPError:\n"
    "    pass\n"
)


def add_ping_stage(repo: Path) -> tuple[str, str]:
    """A branch whose pipeline has a stage that always runs and calls PING_URL."""
    git = Git(repo)
    base = git.head_sha()
    git.run("checkout", "--quiet", "-b", "feature")
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    (repo / "ping.py").write_text(PING)
    pipeline["stages"]["ping"] = {"cmd": "python ping.py", "always_changed": True}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return base, git.commit_all("A stage that reports in")


def test_pending_and_in_progress_come_before_training(
    fake_github, trained_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
):
    base, head = add_ping_stage(trained_repo)
    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR, head_sha=head, base_sha=base)
    ping_path = f"/repos/{REPO}/commits/{head}/status"
    monkeypatch.setenv("PING_URL", fake_github.url + ping_path)

    result = run_pr(trained_repo, trained_repo / ".mlops-ci", env=env)

    log = fake_github.requests
    pending = next(
        i
        for i, r in enumerate(log)
        if r.method == "POST" and "/statuses/" in r.path and r.body["state"] == "pending"
    )
    in_progress = next(
        i
        for i, r in enumerate(log)
        if r.method == "POST" and r.path.endswith("/comments") and "In progress" in r.body["body"]
    )
    (stage,) = [i for i, r in enumerate(log) if r.path == ping_path]
    final = max(i for i, r in enumerate(log) if "/statuses/" in r.path)
    assert pending < stage and in_progress < stage, "progress is posted before training"
    assert log[stage].status == 401, "the stage ran without a token"
    assert stage < final and log[final].body["state"] != "pending"
    assert log[pending].body["description"] == IN_PROGRESS_DESCRIPTION
    (comment,) = fake_github.comments_on(REPO, PR)
    assert "In progress" not in comment["body"], "the report replaced the progress comment"
    assert comment["body"].count("Gate") >= 1 and result.report.comment_url

    err = capfd.readouterr()
    log_text = err.out + err.err
    assert "mlops-ci: stage ping started" in log_text
    assert "mlops-ci: stage ping finished in " in log_text
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "#### Stages" in summary and "| ping | ran |" in summary
    assert summary.index("#### Stages") < summary.index("Gate")


def test_announce_alone_posts_progress_and_runs_nothing(
    fake_github, trained_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """`mlops-ci pr --announce`: the workflow's step before training (it alone has the token)."""
    base, head = add_ping_stage(trained_repo)
    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR, head_sha=head, base_sha=base)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ping_path = f"/repos/{REPO}/commits/{head}/status"
    monkeypatch.setenv("PING_URL", fake_github.url + ping_path)
    run_dir = trained_repo / ".mlops-ci"
    (run_dir / "train.json").unlink(missing_ok=True)  # the template's training
    assert main(["pr", "--announce", "-C", str(trained_repo), "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["announced"]
    assert notes == [f"status pending on {head[:12]}", "comment: in progress"]
    assert not any(r.path == ping_path for r in fake_github.requests), "no stage ran"
    assert not (run_dir / "train.json").exists()
    statuses = fake_github.state()["repos"][REPO]["statuses"]
    assert [(s["sha"], s["state"], s["context"]) for s in statuses] == [
        (head, "pending", "mlops-ci/classifier")
    ]


def test_gitlab_announce_sets_pending_and_an_in_progress_note(
    fake_gitlab, trained_repo: Path, tmp_path: Path
):
    from mlops_ci.commands.pr import announce_pr

    head = Git(trained_repo).head_sha()
    env = fake_gitlab.ci_env(mr=PR, head_sha=head)
    notes = announce_pr(trained_repo, trained_repo / ".mlops-ci", env=env)
    assert notes == [f"status pending on {head[:12]}", "comment: in progress"]
    project = fake_gitlab.state()["projects"]["42"]
    assert [(s["sha"], s["status"], s["name"]) for s in project["statuses"]] == [
        (head, "pending", "mlops-ci/classifier")
    ]
    (note,) = fake_gitlab.notes_on("42", PR)
    assert "In progress" in note["body"] and "mlops-ci-report:classifier:mlops-ci" in note["body"]


def test_a_forge_that_does_not_answer_does_not_stop_the_run(
    fake_github, trained_repo: Path, tmp_path: Path
):
    from mlops_ci.commands.pr import announce_pr

    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR)
    fake_github.fail_next(50, status=502)
    (note,) = announce_pr(trained_repo, trained_repo / ".mlops-ci", env=env)
    assert note.startswith("progress not posted: ")


def test_a_run_that_stops_before_its_report_does_not_stay_in_progress(
    fake_github, trained_repo: Path, tmp_path: Path
):
    from mlops_ci.project.errors import StageFailed

    base, _ = add_ping_stage(trained_repo)
    (trained_repo / "ping.py").write_text("raise SystemExit('the upstream table is gone')\n")
    head = Git(trained_repo).commit_all("A stage that fails")
    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR, head_sha=head, base_sha=base)
    with pytest.raises(StageFailed, match="the upstream table is gone"):
        run_pr(trained_repo, trained_repo / ".mlops-ci", env=env)
    statuses = fake_github.state()["repos"][REPO]["statuses"]
    assert [(s["sha"], s["state"]) for s in statuses] == [(head, "pending"), (head, "error")]
    (comment,) = fake_github.comments_on(REPO, PR)
    assert "**Stopped**" in comment["body"] and "In progress" not in comment["body"]
