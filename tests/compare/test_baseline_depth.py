"""The merge-base from a depth-1 CI clone, however far back it is.

Deepening step by step used to give up after a bounded number of commits (and its message named
the wrong number): a branch 1,500 commits past its merge-base had "no merge-base". Past the
steps, one full fetch reaches any depth, and the baseline's note says so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_ci.compare.baseline import DEEPEN_STEPS, resolve_baseline
from mlops_ci.project.errors import BaselineNotFound
from mlops_ci.project.git import Git

pytestmark = pytest.mark.integration  # deepens real shallow clones

IDENT = "author A <a@example.invalid> 1700000000 +0000"


def _fast_import(repo: Path, branch: str, parent: str | None, count: int, tag: str) -> str:
    """`count` commits on `branch` after `parent` in one `git fast-import` (seconds, not
    minutes, for thousands of commits); returns the tip's SHA."""
    lines = []
    for i in range(count):
        message = f"{tag} {i}".encode()
        lines += [f"commit refs/heads/{branch}", f"mark :{i + 1}", f"committer {IDENT}",
                  f"data {len(message)}", message.decode()]  # fmt: skip
        if i == 0 and parent:
            lines.append(f"from {parent}")
        elif i > 0:
            lines.append(f"from :{i}")
        lines += [f"M 644 inline {tag}.txt", f"data {len(message)}", message.decode(), ""]
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream.encode(), check=True)
    return Git(repo).out("rev-parse", branch)


@pytest.fixture(scope="module")
def far_branch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """origin: main moved on 3 commits past the branch point; `feature` is further past it
    than every deepening step together."""
    base = tmp_path_factory.mktemp("depth")
    origin = base / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    point = _fast_import(origin, "main", None, 1, "root")
    _fast_import(origin, "main", point, 3, "main")
    # Each step deepens both the target branch's fetch and HEAD's (twice the steps' sum);
    # 13,000 is also past where the old step-by-step search gave up (about 12,500).
    _fast_import(origin, "feature", point, max(13_000, 2 * sum(DEEPEN_STEPS) + 250), "feature")
    return origin, point


def _shallow_clone(origin: Path, where: Path, branch: str) -> Git:
    subprocess.run(
        ["git", "clone", "-q", "--depth=1", f"--branch={branch}", f"file://{origin}", str(where)],
        check=True,
    )
    git = Git(where)
    assert git.is_shallow()
    return git


def test_a_merge_base_past_every_deepening_step_is_found(
    far_branch: tuple[Path, str], tmp_path: Path
) -> None:
    origin, point = far_branch
    git = _shallow_clone(origin, tmp_path / "clone", "feature")
    found = resolve_baseline(
        git, "merge-base", target_branch="main", artifact="m", branch="feature"
    )
    assert (found.how, found.sha) == ("merge-base", point)
    assert found.note and "whole history" in found.note


def test_unrelated_histories_say_so(far_branch: tuple[Path, str], tmp_path: Path) -> None:
    origin, _ = far_branch
    _fast_import(origin, "orphan", None, 5, "orphan")
    git = _shallow_clone(origin, tmp_path / "orphan", "orphan")
    with pytest.raises(BaselineNotFound, match="share no history"):
        resolve_baseline(git, "merge-base", target_branch="main", artifact="m", branch="orphan")
