"""A `cache: false` metrics file that `.gitignore` excludes: what a user sees, step by step.

DVC reads such a file at another revision from git only (`dvc metrics diff` shows `old: null`),
and a fresh clone (CI) has nothing else. A local run must not read it from DVC's run-cache
instead, or the verdict differs between the laptop and CI; `init` and `validate` say so before
the first pull request, and the comparison's reason names the fix.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.project.git import Git
from tests.commands import adopt_projects
from tests.conftest import git_commit_all

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

DVC = str(Path(sys.executable).parent / "dvc")


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return adopt_projects.build("regression", tmp_path_factory.mktemp("uncached") / "regression")


def _ignore_metrics(repo: Path) -> None:
    """The user's repository: metrics.json is a `cache: false` output git ignores."""
    (repo / ".gitignore").write_text("metrics.json\n")
    Git(repo).run("rm", "--quiet", "--cached", "metrics.json")
    git_commit_all(repo, "Do not commit generated metrics")


def test_init_and_validate_say_the_baseline_cannot_be_read_in_ci(
    regression: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(regression.parent, tmp_path / "r")
    _ignore_metrics(repo)
    assert main(["init", "-C", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "metrics.json is declared `cache: false` and git ignores it" in out
    assert "Commit it" in out
    code = main(["validate", "-C", str(repo), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2
    assert any("metrics file metrics.json is declared `cache: false`" in p for p in doc["problems"])
    # The fix init named: commit the file. Then validate is content.
    (repo / ".gitignore").write_text("")
    git_commit_all(repo, "Commit the metrics")
    code = main(["validate", "-C", str(repo), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert not any("cache: false" in p for p in doc["problems"]), doc["problems"]


def test_compare_reads_an_uncached_baseline_as_dvc_does(
    regression: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = adopt_projects.copy(regression.parent, tmp_path / "r")
    _ignore_metrics(repo)
    git = Git(repo)
    git.run("checkout", "--quiet", "-b", "stronger-penalty")
    (repo / "params.yaml").write_text("train:\n  alpha: 50.0\n")
    git_commit_all(repo, "alpha 50")
    assert main(["train", "-C", str(repo), "--run-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert (
        main(["compare", "-C", str(repo), "--run-dir", str(tmp_path / "run"),
              "--baseline", "main", "--json"]) == 0
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    dvc = subprocess.run(
        [DVC, "metrics", "diff", "main", "--all", "--json"],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    oracle = json.loads(dvc.stdout)["metrics.json"]
    assert oracle["r2"]["old"] is None  # DVC itself cannot read the baseline's file
    rows = {m["name"]: m for m in doc["metrics"]}
    assert rows["r2"]["baseline"] is None and rows["r2"]["status"] == "unknown"
    assert rows["r2"]["candidate"] == oracle["r2"]["new"]
    (error,) = [e for e in doc["errors"] if e["file"] == "metrics.json"]
    assert "cache: false" in error["message"] and "commit it" in error["message"]
