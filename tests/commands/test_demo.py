"""`mlops-ci demo --workdir`: never writes over, commits or deletes what is already there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.init.scaffold import init_repo
from mlops_ci.project.git import Git


def digest_tree(root: Path) -> dict[str, str]:
    """Every file under `root` (git's own objects too) by its sha256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_demo_leaves_a_users_repository_in_the_workdir_alone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The mistake: `--workdir D` where D/repo is the user's own repository, with a gitignored
    # secret and uncommitted edits. The demo overwrote params.yaml and .gitignore and committed
    # both the secret and the edits to the user's main.
    repo = tmp_path / "repo"
    git = Git(repo)
    repo.mkdir()
    git.run("init", "--quiet", "--initial-branch=main")
    (repo / "params.yaml").write_text("mine: 1\n")
    (repo / ".gitignore").write_text("secret.env\n")
    git.commit_all("The user's project")
    (repo / "secret.env").write_text("TOKEN=hunter2\n")
    (repo / "params.yaml").write_text("mine: 2  # not committed yet\n")
    before = digest_tree(tmp_path)
    head = git.head_sha()

    assert main(["demo", "--workdir", str(tmp_path)]) == 2
    err = capfd.readouterr().err
    assert "is not empty" in err and str(tmp_path) in err
    assert digest_tree(tmp_path) == before
    assert git.head_sha() == head
    assert "secret.env" not in git.out("ls-files")


def test_demo_refuses_a_non_empty_directory(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("keep me\n")
    assert main(["demo", "--workdir", str(tmp_path)]) == 2
    assert "is not empty" in capfd.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


def test_a_second_demo_in_the_same_workdir_says_what_to_do(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # What an earlier demo leaves after its first step (or a whole run): the scratch repository.
    init_repo(tmp_path / "repo")
    before = digest_tree(tmp_path)
    assert main(["demo", "--workdir", str(tmp_path)]) == 2
    err = capfd.readouterr().err
    assert "earlier demo" in err and "unexpected error" not in err
    assert digest_tree(tmp_path) == before


def test_demo_workdir_that_is_a_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["demo", "--workdir", str(tmp_path / "file")]) == 2
    assert "not a directory" in capfd.readouterr().err
