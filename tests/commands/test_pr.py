"""`mlops-ci pr` end to end: a branch of the trained reference project that changes a param.

Real git, real DVC, real scikit-learn; the forge is the local one (files in the run directory)
or the loopback fake GitHub.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.commands.demo import set_param
from mlops_ci.project.git import Git
from tests.conftest import git_commit_all


def test_pr_on_the_local_forge_writes_every_document_and_posts_once(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A PR that weakens the model and also tries to loosen its own gate.
    Git(trained_repo).run("checkout", "--quiet", "-b", "tune/weaker-model")
    set_param(trained_repo, "train.logistic_regression.C", 0.0005)
    policy = trained_repo / "mlops-ci.yaml"
    policy.write_text(
        policy.read_text().replace("min: 0.9, max_drop: 0.01", "min: 0.5, max_drop: 0.5")
    )
    head = git_commit_all(trained_repo, "Weaker model, looser gate")

    assert main(["pr", "-C", str(trained_repo)]) == 1
    out = capsys.readouterr().out
    run_dir = trained_repo / ".mlops-ci"
    assert (run_dir / "train.json").is_file()
    comparison = documents.read(run_dir, "comparison.json", kind="comparison")
    verdict = documents.read(run_dir, "verdict.json", kind="verdict")
    main_sha = Git(trained_repo).out("rev-parse", "main")
    assert comparison["baseline"]["sha"] == main_sha
    assert {"name": "train.logistic_regression.C", "baseline": 1.0, "candidate": 0.0005,
            "change": "changed"}.items() <= comparison["params"][0].items()  # fmt: skip
    # Judged by main's policy: the loosened thresholds apply only after merge.
    assert verdict["verdict"] == "fail"
    assert verdict["candidate_sha"] == head
    assert verdict["policy"] == {"revision": main_sha, "source": "baseline",
                                 "path": "mlops-ci.yaml", "changed": True}  # fmt: skip
    drop = next(r for r in verdict["rules"] if (r["metric"], r["rule"]) == ("accuracy", "max_drop"))
    assert drop["outcome"] == "fail"
    assert re.fullmatch(
        r"accuracy dropped 0\.\d{4} \(0\.\d{4} → 0\.\d{4}\), more than max_drop 0\.01",
        drop["reason"],
    )
    assert comparison["policy_change"]["changed"] is True
    # The report shows the verdict it was rendered with, and the policy change.
    report = (run_dir / "report.md").read_text()
    assert "Gate: ❌ **fail**" in report
    assert "more than max\\_drop 0.01" in report
    assert "#### Policy change" in report
    # Posted once: one comment, one failure status on the PR's head commit.
    comments = json.loads((run_dir / "comments.json").read_text())
    assert len(comments) == 1
    (status,) = json.loads((run_dir / "statuses.json").read_text())
    assert (status["sha"], status["state"], status["context"]) == (
        head, "failure", "mlops-ci/classifier",
    )  # fmt: skip
    assert "gate: fail — accuracy" in out


def test_a_pr_that_exits_2_leaves_no_stale_verdict_to_show(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git = Git(trained_repo)
    git.run("checkout", "--quiet", "-b", "feature")
    set_param(trained_repo, "train.logistic_regression.C", 2.0)
    git_commit_all(trained_repo, "A stronger model")
    assert main(["pr", "-C", str(trained_repo)]) in (0, 1)
    run_dir = trained_repo / ".mlops-ci"
    assert (run_dir / "verdict.json").is_file()
    # main gets a policy that cannot be read; the pull request merges main, so the gate cannot
    # decide (exit 2): nothing of the earlier run's verdict may be shown.
    git.run("checkout", "--quiet", "main")
    policy = trained_repo / "mlops-ci.yaml"
    policy.write_text(policy.read_text().replace("max_drop:", "max_dorp:", 1))
    git_commit_all(trained_repo, "A broken policy")
    git.run("checkout", "--quiet", "feature")
    git.run("merge", "--quiet", "--no-edit", "main")
    capsys.readouterr()

    assert main(["pr", "-C", str(trained_repo)]) == 2

    assert "max_dorp" in capsys.readouterr().err
    assert not (run_dir / "verdict.json").exists()
    assert not (run_dir / "report.md").exists()
    # Nor can a later `report` show the earlier run's verdict.
    assert main(["report", "-C", str(trained_repo)]) == 2
    assert "comparison.json does not exist" in capsys.readouterr().err


def test_a_pr_whose_gate_cannot_decide_reports_why_instead_of_a_verdict(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # main's policy cannot be read (a key typo merged before policies were checked); the pull
    # request fixes it in its own tree, but the baseline's policy is the one that applies.
    git = Git(trained_repo)
    policy = trained_repo / "mlops-ci.yaml"
    good = policy.read_text()
    policy.write_text(good.replace("max_drop:", "max_dorp:", 1))
    git_commit_all(trained_repo, "A broken policy")
    git.run("push", "--quiet", "origin", "main")
    git.run("checkout", "--quiet", "-b", "fix-policy")
    policy.write_text(good)
    head = git_commit_all(trained_repo, "Fix the policy")

    assert main(["pr", "-C", str(trained_repo)]) == 2

    assert "metrics.accuracy.max_dorp" in capsys.readouterr().err
    run_dir = trained_repo / ".mlops-ci"
    assert not (run_dir / "verdict.json").exists()
    report = (run_dir / "report.md").read_text()
    assert "**pass**" not in report and "**fail**" not in report
    assert "Gate: ⚠️ no verdict: The gate could not decide" in report
    assert "max\\_dorp" in report
    comparison = documents.read(run_dir, "comparison.json", kind="comparison")
    assert comparison["candidate"]["sha"] == head


@pytest.mark.parametrize("command", ["pr", "train"])
def test_the_stages_never_see_a_write_token(
    trained_repo: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """`pr` trains in a child process whose environment has no write token, whatever the job
    gave `pr` itself (it needs one to post); `train` takes them out while the stages run."""

    dvc_yaml = trained_repo / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(
            "stages:\n",
            "stages:\n  leak:\n    cmd: python -c \"import os; open('leak.txt', 'w').write("
            "repr([os.environ.get(k) for k in ('GITHUB_TOKEN', 'GITLAB_TOKEN', "
            "'MLOPS_CI_TOKEN')]))\"\n    outs: [leak.txt]\n",
            1,
        )
    )
    tokens = {"GITHUB_TOKEN": "ghs_secret", "GITLAB_TOKEN": "glpat_secret", "MLOPS_CI_TOKEN": "x"}
    for name, value in tokens.items():  # the job's environment, as a CI runner sets it
        monkeypatch.setenv(name, value)
    assert main(
        [command, "-C", str(trained_repo), *(["--no-post"] if command == "pr" else [])]
    ) in (0, 1)
    assert (trained_repo / "leak.txt").read_text() == "[None, None, None]"
    assert os.environ["GITHUB_TOKEN"] == "ghs_secret"  # the process keeps its own


def test_a_failing_stage_under_pr_says_to_rerun_pr(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Git(trained_repo).run("checkout", "--quiet", "-b", "broken")
    set_param(trained_repo, "train.model", "no_such_model")
    git_commit_all(trained_repo, "A model that does not exist")
    assert main(["pr", "-C", str(trained_repo)]) == 2
    err = capsys.readouterr().err
    assert "rerun `mlops-ci pr`" in err and "mlops-ci train`" not in err
