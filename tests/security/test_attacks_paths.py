"""Files a pull request names, attacked with symlinks: a git-tracked table (or metrics file)
that links outside the repository is not read, in the workspace or at a revision; the reason
names the file; a link that stays inside is followed as DVC follows it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_ci.compare.snapshot import Project, RevisionFiles
from mlops_ci.compare.tabular import TableUnreadable, read_table

SECRET = "user,token\nroot,hunter2\n"


def repo_with_link(tmp_path: Path, target: str) -> Path:
    outside = tmp_path / "outside.csv"
    outside.write_text(SECRET)
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "data" / "real.csv").write_text("a,b\n1,2\n")
    (root / "data" / "t.csv").symlink_to(target)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "tables"], cwd=root, check=True)
    return root


@pytest.mark.parametrize("rev", [None, "HEAD"], ids=["workspace", "revision"])
@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_a_table_linking_outside_the_repository_is_not_read(tmp_path: Path, rev, how):
    target = str(tmp_path / "outside.csv") if how == "absolute" else "../../outside.csv"
    root = repo_with_link(tmp_path, target)
    reader = RevisionFiles(Project.find(root, root), rev)
    with pytest.raises(TableUnreadable, match="leaves the repository") as caught:
        read_table(reader, "data/t.csv", sample_rows=100)
    assert "hunter2" not in str(caught.value)
    assert reader.read(["data/t.csv"]) == {"data/t.csv": None}


@pytest.mark.parametrize("rev", [None, "HEAD"], ids=["workspace", "revision"])
def test_a_link_inside_the_repository_is_followed(tmp_path: Path, rev):
    root = repo_with_link(tmp_path, "real.csv")
    reader = RevisionFiles(Project.find(root, root), rev)
    assert read_table(reader, "data/t.csv", sample_rows=100).rows == 1


def test_a_link_to_a_shared_dvc_cache_object_is_read_and_a_lookalike_is_not(tmp_path: Path):
    """DVC's `symlink` cache type links outputs into a cache that may sit outside the
    repository: a content-addressed object is read; a file merely named like one is not."""
    import hashlib

    data = b"a,b\n1,2\n3,4\n"
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - DVC's object names
    cache = tmp_path / "shared-cache" / "files" / "md5"
    (cache / md5[:2]).mkdir(parents=True)
    (cache / md5[:2] / md5[2:]).write_bytes(data)
    fake = "0" * 32
    (cache / fake[:2]).mkdir()
    (cache / fake[:2] / fake[2:]).write_text(SECRET)
    root = repo_with_link(tmp_path, str(cache / md5[:2] / md5[2:]))
    (root / "data" / "lookalike.csv").symlink_to(cache / fake[:2] / fake[2:])
    reader = RevisionFiles(Project.find(root, root), None)
    assert read_table(reader, "data/t.csv", sample_rows=100).rows == 2
    with pytest.raises(TableUnreadable, match="leaves the repository"):
        read_table(reader, "data/lookalike.csv", sample_rows=100)
