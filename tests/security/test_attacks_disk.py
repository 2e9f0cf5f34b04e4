"""Outputs the machine refuses to take (a full disk, a read-only file system) end a command
with exit 3 naming the file, not exit 4 ("a bug"); the previous document stays whole."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.project.errors import EXIT_SERVICE
from tests.gate.test_gate import POLICY, comparison, git_commit_all, rows_of_policy


@contextlib.contextmanager
def small_disk(where: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (root, as CI runs; skipped elsewhere locally)."""
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {proc.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> None:
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "mlops-ci.yaml").write_text(POLICY)
    git_commit_all(repo, "Policy")
    return repo


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_gate_on_a_disk_that_refuses_the_verdict_exits_3_naming_it(repo, tmp_path, capsys, how):
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()  # fmt: skip
    with small_disk(tmp_path / "disk") as disk:
        run_dir = disk / "run"
        documents.write(run_dir, "comparison.json", comparison(*rows_of_policy((0.95, 0.96)), baseline_sha=sha))  # fmt: skip
        documents.write(run_dir, "verdict.json", {"previous": True})
        if how == "full":
            fill(disk)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

        code = main(["gate", "-C", str(repo), "--run-dir", str(run_dir)])

        err = capsys.readouterr().err
        assert code == EXIT_SERVICE, err
        assert f"cannot write {run_dir / 'verdict.json'}" in err and "bug" not in err
        assert (run_dir / "verdict.json").read_text().strip().endswith("}"), "still whole"
        assert not [p for p in run_dir.iterdir() if p.name.startswith(".verdict.json.")]
