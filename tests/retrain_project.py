"""The reference project with upstream data: a real `dvc import` from a DVC repository on disk,
and a stage that reads it, so a new upstream revision changes the .dvc file, dvc.lock and a
git-tracked metric (what `mlops-ci retrain` commits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from mlops_ci.project.git import Git

IMPORTED = "data/upstream.csv"
SOURCE = "data/upstream.csv.dvc"
COUNT_SCRIPT = (
    "import json, pathlib\n"
    "rows = pathlib.Path('data/upstream.csv').read_text().splitlines()[1:]\n"
    "pathlib.Path('eval/upstream.json').write_text(json.dumps({'upstream_rows': len(rows)}))\n"
)


def dvc(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def write_upstream(upstream: Path, rows: int) -> str:
    """A new revision of the upstream data set (committed and pushed to its DVC remote)."""
    lines = ["id,value", *(f"{i},{i * 7 % 13}" for i in range(rows))]
    (upstream / "rows.csv").write_text("\n".join(lines) + "\n")
    dvc(upstream, "add", "rows.csv")
    dvc(upstream, "push")
    return Git(upstream).commit_all(f"{rows} rows")


def make_upstream(base: Path, rows: int = 100) -> Path:
    """A git + DVC repository on disk holding rows.csv, with its own local DVC remote."""
    upstream = base / "upstream"
    upstream.mkdir(parents=True)
    git = Git(upstream)
    git.run("init", "--quiet", "-b", "main")
    dvc(upstream, "init", "--quiet")
    dvc(upstream, "remote", "add", "-d", "store", str(base / "upstream-remote"))
    write_upstream(upstream, rows)
    return upstream


def add_import(repo: Path, upstream: Path) -> str:
    """`dvc import` rows.csv into the project, a stage counting its rows; commit and push."""
    dvc(repo, "import", str(upstream), "rows.csv", "-o", IMPORTED)
    (repo / "count_upstream.py").write_text(COUNT_SCRIPT)
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    pipeline["stages"]["upstream"] = {
        "cmd": "python count_upstream.py",
        "deps": ["count_upstream.py", IMPORTED],
        "metrics": [{"eval/upstream.json": {"cache": False}}],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    dvc(repo, "repro", "upstream")
    dvc(repo, "push")
    git = Git(repo)
    sha = git.commit_all("Import the upstream rows")
    if "origin" in git.remotes():
        git.run("push", "--quiet", "origin", "HEAD:main")
    return sha
