"""A shared DVC remote on S3 (moto on loopback): runners restore instead of re-running."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.project.git import Git


def test_docs_only_pr_on_a_fresh_clone_executes_no_stage(
    trained_repo: Path, tmp_path: Path, moto_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    boto3.client("s3", endpoint_url=moto_s3).create_bucket(Bucket="dvc-cache")
    # The endpoint must come from mlops-ci.yaml, not from the environment.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    policy = trained_repo / "mlops-ci.yaml"
    policy.write_text(
        policy.read_text()
        + f"remote:\n  url: s3://dvc-cache/classifier\n  endpoint_url: {moto_s3}\n"
    )
    git = Git(trained_repo)
    git.commit_all("Share the run-cache on S3")
    # main's job: fill the shared remote (outputs and run-cache).
    assert main(["train", "-C", str(trained_repo), "--push"]) == 0
    stored = boto3.client("s3", endpoint_url=moto_s3).list_objects_v2(Bucket="dvc-cache")
    keys = [o["Key"] for o in stored.get("Contents", [])]
    assert any("/runs/" in k for k in keys), keys  # the run-cache, not only outputs
    git.run("push", "--quiet", "origin", "main")

    # A new runner: a fresh clone far from the project's local remote, a docs-only change.
    clone = tmp_path / "runner" / "checkout"
    subprocess.run(
        ["git", "clone", "--quiet", str(trained_repo.parent / "origin.git"), str(clone)],
        check=True,
    )
    Git(clone).run("checkout", "--quiet", "-b", "docs/typo")
    (clone / "README.md").write_text("# Classifier\n\nFix a typo.\n")
    Git(clone).commit_all("Fix a typo")
    assert main(["train", "-C", str(clone), "--pull"]) == 0
    stages = json.loads((clone / ".mlops-ci" / "train.json").read_text())["stages"]
    assert [s["status"] for s in stages] == ["restored"] * 3, stages
    assert (clone / "models" / "model.pkl").is_file()
    # The clone was pointed at the shared remote for this checkout only.
    assert "s3://dvc-cache/classifier" in (clone / ".dvc" / "config.local").read_text()
    assert not Git(clone).is_dirty()


def test_push_from_a_fork_pull_request_is_refused(
    trained_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "number": 3,
                "pull_request": {
                    "number": 3,
                    "head": {"ref": "x", "sha": "a" * 40, "repo": {"full_name": "mallory/fork"}},
                    "base": {"ref": "main", "sha": "b" * 40, "repo": {"full_name": "octo/demo"}},
                },
            }
        )
    )
    for key, value in {
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "octo/demo",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    assert main(["train", "-C", str(trained_repo), "--push"]) == 2
    assert "refusing --push from a pull request of a fork" in capfd.readouterr().err


def test_set_changes_params_like_dvc_exp_run(trained_repo: Path, capfd) -> None:
    assert main(["train", "-C", str(trained_repo), "-S", "train.logistic_regression.C=0.5"]) == 0
    params = (trained_repo / "params.yaml").read_text()
    assert "C: 0.5" in params
    assert "# logistic_regression | random_forest" in params  # comments survive
    stages = json.loads((trained_repo / ".mlops-ci" / "train.json").read_text())["stages"]
    assert [s["status"] for s in stages] == ["unchanged", "ran", "ran"]
    assert main(["train", "-C", str(trained_repo), "-S", "train.no_such_key=1"]) == 2
    assert "needs a leading +" in capfd.readouterr().err
