"""The baseline's metrics inside a directory output that only the DVC remote holds.

The usual DVCLive layout: a stage declares `outs: [eval]` and `eval/metrics.json` lives inside it,
so `dvc.lock` records one `.dir` hash. A fresh CI clone has an empty cache: the baseline's
numbers must come from the remote through the directory's manifest; with the remote gone they
are `unknown`, the error names the file, and the gate does not pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.project.git import Git

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

STAGE = """\
import json, os, sys
import yaml
params = yaml.safe_load(open("params.yaml"))
os.makedirs("eval", exist_ok=True)
json.dump({"accuracy": params["quality"], "nested": {"loss": 1 - params["quality"]}},
          open("eval/metrics.json", "w"))
open("eval/notes.txt", "w").write("not a metric")
"""

DVC_YAML = f"""\
stages:
  evaluate:
    cmd: {sys.executable} evaluate.py
    params: [quality]
    deps: [evaluate.py]
    outs: [eval]
metrics:
  - eval/metrics.json
"""

POLICY = """\
artifact: model
metrics:
  accuracy: {direction: higher, max_drop: 0.01}
"""


def _run(cwd: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def _dvc(cwd: Path, *args: str) -> str:
    return _run(cwd, sys.executable, "-m", "dvc", *args)


@pytest.fixture(scope="module")
def dir_output_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """main: trained with quality 0.90, pushed to a local remote, in a bare origin."""
    base = tmp_path_factory.mktemp("dirout")
    work, remote, origin = base / "work", base / "remote", base / "origin.git"
    work.mkdir()
    _run(work, "git", "init", "-q", "-b", "main")
    _dvc(work, "init", "-q")
    _dvc(work, "remote", "add", "-d", "storage", str(remote))  # clones live elsewhere
    (work / "evaluate.py").write_text(STAGE)
    (work / "params.yaml").write_text("quality: 0.90\n")
    (work / "dvc.yaml").write_text(DVC_YAML)
    (work / "mlops-ci.yaml").write_text(POLICY)
    _dvc(work, "repro", "-q")
    _dvc(work, "push", "-q")
    Git(work).commit_all("main: quality 0.90")
    _run(base, "git", "clone", "-q", "--bare", str(work), str(origin))
    return origin, remote


def _fresh_candidate(origin: Path, where: Path, quality: float) -> Path:
    """A new clone (empty DVC cache) on a branch that retrains with another quality."""
    _run(where.parent, "git", "clone", "-q", str(origin), str(where))
    _run(where, "git", "checkout", "-q", "-b", "change")
    (where / "params.yaml").write_text(f"quality: {quality}\n")
    _dvc(where, "repro", "-q")
    return where


def test_baseline_metrics_come_from_the_remote_through_the_dir_manifest(
    dir_output_project: tuple[Path, Path], tmp_path: Path
) -> None:
    origin, _remote = dir_output_project
    repo = _fresh_candidate(origin, tmp_path / "clone", 0.95)
    # The baseline's objects are in no local cache: only the remote has them.
    main_lock = Git(repo).show("origin/main", "dvc.lock")
    assert main_lock and b".dir" in main_lock
    run_dir = repo / ".mlops-ci"
    assert main(["compare", "-C", str(repo), "--run-dir", str(run_dir)]) == 0
    doc = json.loads((run_dir / "comparison.json").read_text())
    rows = {r["name"]: r for r in doc["metrics"]}
    assert rows["accuracy"]["baseline"] == 0.90 and rows["accuracy"]["candidate"] == 0.95
    assert rows["accuracy"]["delta"] == pytest.approx(0.05)
    # No predictions, no history on main, no tolerance: a change nobody can call noise or not.
    assert rows["accuracy"]["status"] == "changed"
    assert rows["nested.loss"]["baseline"] == pytest.approx(0.10)
    assert not doc["errors"]
    # What DVC itself reports for the same pair of revisions.
    dvc_diff = json.loads(_dvc(repo, "metrics", "diff", "main", "--all", "--json"))
    assert dvc_diff["eval/metrics.json"]["accuracy"]["old"] == rows["accuracy"]["baseline"]


def test_with_the_remote_gone_the_metric_is_unknown_and_the_gate_does_not_pass(
    dir_output_project: tuple[Path, Path], tmp_path: Path
) -> None:
    origin, remote = dir_output_project
    repo = _fresh_candidate(origin, tmp_path / "clone", 0.50)  # a real regression
    saved = tmp_path / "remote-saved"
    shutil.move(remote, saved)
    try:
        run_dir = repo / ".mlops-ci"
        main(["compare", "-C", str(repo), "--run-dir", str(run_dir)])
        doc = json.loads((run_dir / "comparison.json").read_text())
        rows = {r["name"]: r for r in doc["metrics"]}
        assert rows["accuracy"]["status"] == "unknown"  # never "added"
        assert rows["accuracy"]["baseline"] is None
        (error,) = [e for e in doc["errors"] if e["file"] == "eval/metrics.json"]
        assert error["revision"] != "workspace"
        assert "remote" in error["message"] and "cache" in error["message"]
        code = main(["gate", "-C", str(repo), "--run-dir", str(run_dir)])
        verdict = json.loads((run_dir / "verdict.json").read_text())
        assert code == 1 and verdict["verdict"] == "fail", verdict
    finally:
        shutil.move(saved, remote)


def test_an_unreachable_remote_exits_3_after_saving_the_comparison(
    dir_output_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remote failures are the outside service's (exit 3), not a missing file: the comparison
    is still written, naming the file, and nothing passes on it."""
    origin, _remote = dir_output_project
    repo = _fresh_candidate(origin, tmp_path / "clone", 0.95)
    # An S3 remote whose endpoint refuses connections (a closed loopback port).
    monkeypatch.setenv("MLOPS_CI_REMOTE_URL", "s3://bucket/dvc")
    monkeypatch.setenv("MLOPS_CI_REMOTE_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    run_dir = repo / ".mlops-ci"
    assert main(["compare", "-C", str(repo), "--run-dir", str(run_dir)]) == 3
    doc = json.loads((run_dir / "comparison.json").read_text())
    rows = {r["name"]: r for r in doc["metrics"]}
    assert rows["accuracy"]["status"] == "unknown"
    (error,) = [e for e in doc["errors"] if e["file"] == "eval/metrics.json"]
    assert "could not be read" in error["message"] and "s3://bucket/dvc" in error["message"]
