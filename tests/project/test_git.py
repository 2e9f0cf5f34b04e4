"""`project/git.py`: the one `git cat-file --batch` process a `Git` keeps for its reads, and the
revisions it remembers until a command that may move a ref runs through it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_ci.project.errors import GitError
from mlops_ci.project.git import Git

HOSTILE = ["with space.json", "x blob 5", "ümlaut.txt", "missing", "-dash"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "small.json").write_text('{"a": 1}')
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 2048)  # 512 KiB: past a pipe's buffer
    for name in HOSTILE[:3] + HOSTILE[4:]:
        (tmp_path / name).write_text(name)
    for i in range(3000):  # 3,000 requests: more than one chunk of them
        (tmp_path / "dir" / f"f{i}.txt").write_text(str(i))
    Git(tmp_path).commit_all("first")
    return tmp_path


@pytest.mark.slow
def test_reads_many_objects_through_one_process(repo: Path) -> None:
    git = Git(repo)
    specs = [f"HEAD:dir/f{i}.txt" for i in range(3000)]
    specs += ["HEAD:big.bin", "HEAD:dir", "HEAD", "HEAD:nope", "nosuchrev:x", "HEAD:a\nb"]
    specs += [f"HEAD:{name}" for name in HOSTILE]
    got = git.read_many(specs)
    assert [got[f"HEAD:dir/f{i}.txt"] for i in range(3000)] == [
        str(i).encode() for i in range(3000)
    ]
    assert got["HEAD:big.bin"] == (repo / "big.bin").read_bytes()
    # a tree, a commit, a missing path or revision, a path with a line break: not a file
    assert [got[s] for s in ("HEAD:dir", "HEAD", "HEAD:nope", "nosuchrev:x", "HEAD:a\nb")] == [
        None
    ] * 5
    assert {name: got[f"HEAD:{name}"] for name in HOSTILE} == {
        name: None if name == "missing" else name.encode() for name in HOSTILE
    }
    first = git._batch
    assert git.show("HEAD", "dir/small.json") == b'{"a": 1}'
    assert git._batch is first  # the same process served both
    git.close()
    assert first is not None and first.proc.poll() is not None  # ended, not left behind
    assert git.show("HEAD", "dir/small.json") == b'{"a": 1}'  # a new one when needed


def test_a_ref_moved_by_another_process_is_seen_at_once(repo: Path) -> None:
    """Tags and branches move under a command (the registry writes tags with its own git
    calls): the wrapper asks git every time instead of answering from memory."""
    git = Git(repo)
    before = git.rev_parse("HEAD")
    assert before is not None and git.rev_parse("v1") is None
    subprocess.run(["git", "tag", "-a", "v1", "-m", "v1"], cwd=repo, check=True)
    assert git.rev_parse("v1") == before
    after = git.commit_all("second")
    assert after != before and git.rev_parse("HEAD") == after
    subprocess.run(["git", "tag", "-f", "-a", "v1", "-m", "moved"], cwd=repo, check=True)
    assert git.rev_parse("v1") == after


def test_outside_a_repository_the_reader_says_what_git_said(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="cat-file"):
        Git(tmp_path).read_many(["HEAD:x"])
