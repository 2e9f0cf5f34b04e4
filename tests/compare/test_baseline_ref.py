"""Which tip of the target branch is the baseline when the local branch and origin's differ.

A new user adopts mlops-ci on their local `main` (commits the policy, trains), does not push
yet, and opens a branch: the baseline is their `main`, which holds the policy, not the older
`origin/main` without one. A stale local `main` behind origin loses to origin's; when both
moved, origin's wins and the run says so. The report names the ref it used.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.commands.demo import set_param
from mlops_ci.compare.baseline import resolve_baseline
from mlops_ci.project.git import Git
from tests.conftest import git_commit_all


def test_a_local_main_ahead_of_origin_is_the_baseline_and_its_policy_gates(
    trained_repo: Path,
) -> None:
    git = Git(trained_repo)
    # Upstream: the project as it was before mlops-ci (no mlops-ci.yaml).
    policy = (trained_repo / "mlops-ci.yaml").read_text()
    git.run("rm", "--quiet", "mlops-ci.yaml")
    git_commit_all(trained_repo, "Upstream tip without mlops-ci")
    git.run("push", "--quiet", "origin", "main")
    # The user adopts mlops-ci on their local main and does not push yet.
    (trained_repo / "mlops-ci.yaml").write_text(policy)
    local_main = git_commit_all(trained_repo, "Adopt mlops-ci")
    assert git.out("rev-parse", "origin/main") != local_main
    # A branch that clearly regresses.
    git.run("checkout", "--quiet", "-b", "tune/weaker-model")
    set_param(trained_repo, "train.logistic_regression.C", 0.0005)
    git_commit_all(trained_repo, "Weaker model")

    assert main(["pr", "-C", str(trained_repo)]) == 1
    run_dir = trained_repo / ".mlops-ci"
    comparison = documents.read(run_dir, "comparison.json", kind="comparison")
    assert comparison["baseline"]["ref"] == "main"
    assert comparison["baseline"]["ref_sha"] == local_main
    assert comparison["baseline"]["sha"] == local_main
    verdict = documents.read(run_dir, "verdict.json", kind="verdict")
    assert verdict["verdict"] == "fail"
    assert verdict["policy"]["revision"] == local_main
    report = (run_dir / "report.md").read_text()
    assert f"Baseline main @ {local_main[:7]}" in report


def _repo_with_origin(tmp_path: Path) -> tuple[Git, Path]:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(origin), str(repo)], check=True)
    git = Git(repo)
    git.run("checkout", "--quiet", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    git_commit_all(repo, "first")
    git.run("push", "--quiet", "origin", "main")
    return git, origin


def _push_from_elsewhere(origin: Path, where: Path) -> str:
    """Another clone moves origin's main on."""
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True)
    (where / "b.txt").write_text("b\n")
    sha = git_commit_all(where, "upstream moved on")
    Git(where).run("push", "--quiet", "origin", "main")
    return sha


def test_a_stale_local_main_loses_to_origin(tmp_path: Path) -> None:
    git, origin = _repo_with_origin(tmp_path)
    upstream = _push_from_elsewhere(origin, tmp_path / "other")
    git.run("fetch", "--quiet", "origin")
    git.run("checkout", "--quiet", "-b", "feature", "origin/main")
    (git.repo_dir / "c.txt").write_text("c\n")
    git_commit_all(git.repo_dir, "feature")

    found = resolve_baseline(git, "base", target_branch="main", artifact="m", branch="feature")
    assert (found.ref, found.sha, found.note) == ("origin/main", upstream, None)


def test_diverged_mains_use_origin_and_warn(tmp_path: Path) -> None:
    git, origin = _repo_with_origin(tmp_path)
    upstream = _push_from_elsewhere(origin, tmp_path / "other")
    git.run("fetch", "--quiet", "origin")
    (git.repo_dir / "local.txt").write_text("local\n")
    git_commit_all(git.repo_dir, "local only")
    git.run("checkout", "--quiet", "-b", "feature")

    found = resolve_baseline(git, "base", target_branch="main", artifact="m", branch="feature")
    assert (found.ref, found.sha) == ("origin/main", upstream)
    assert found.note and "diverged" in found.note and "--baseline main" in found.note
