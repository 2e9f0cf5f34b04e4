"""What the gate must not pass: metrics it could not read, or read ambiguously, at a revision.

Each test is a user's project at `main` and a candidate that regresses, built with real git and
DVC, then `mlops-ci compare` and `mlops-ci gate` as CI runs them. DVC itself (`dvc metrics
diff`) reports either the regression or a load error for the revision; mlops-ci must then fail
the gate, never call the metrics new (`added`), gone (`removed`) or the same.
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
import json, os
import yaml
quality = yaml.safe_load(open("params.yaml"))["quality"]
os.makedirs("eval", exist_ok=True)
json.dump({"accuracy": quality}, open("eval/metrics.json", "w"))
"""

# The stage's output is the directory; `metrics:` declares either the directory or its file.
DVC_YAML = """\
stages:
  evaluate:
    cmd: {python} evaluate.py
    params: [quality]
    deps: [evaluate.py]
    outs: [eval]
metrics:
  - {declared}
"""


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    return proc


def _dvc(cwd: Path, *args: str) -> str:
    return _run(cwd, sys.executable, "-m", "dvc", *args).stdout


def _project(where: Path, declared: str, policy: str) -> Path:
    """main trained with quality 0.90 and committed; the branch `change` checked out."""
    where.mkdir()
    _run(where, "git", "init", "-q", "-b", "main")
    _dvc(where, "init", "-q")
    (where / "evaluate.py").write_text(STAGE)
    (where / "params.yaml").write_text("quality: 0.9\n")
    (where / "dvc.yaml").write_text(DVC_YAML.format(python=sys.executable, declared=declared))
    (where / "mlops-ci.yaml").write_text(f"artifact: model\n{policy}")
    _dvc(where, "repro", "-q")
    Git(where).commit_all("main: quality 0.9")
    _run(where, "git", "checkout", "-q", "-b", "change")
    return where


def _compare_and_gate(repo: Path) -> tuple[dict, int, dict]:
    run_dir = repo / ".mlops-ci"
    main(["compare", "-C", str(repo), "--run-dir", str(run_dir), "--baseline", "main"])
    doc = json.loads((run_dir / "comparison.json").read_text())
    code = main(["gate", "-C", str(repo), "--run-dir", str(run_dir)])
    return doc, code, json.loads((run_dir / "verdict.json").read_text())


@pytest.mark.parametrize("declared", ["eval", "eval/metrics.json"])
def test_a_baseline_nobody_can_read_fails_the_gate_whatever_is_declared(
    tmp_path: Path, declared: str
) -> None:
    """The baseline's outputs are in neither the cache nor a remote (a fresh clone without
    `dvc pull`, a lost cache): DVC reports a load error for main. A 0.9 -> 0.5 drop must not
    pass as an `added` metric that max_drop does not apply to."""
    repo = _project(tmp_path / "repo", declared, "metrics:\n  accuracy: {max_drop: 0.01}\n")
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "params.yaml").write_text("quality: 0.5\n")
    _dvc(repo, "repro", "-q")
    doc, code, verdict = _compare_and_gate(repo)
    (row,) = [r for r in doc["metrics"] if r["key"] == "accuracy"]
    assert row["status"] == "unknown" and row["candidate"] == 0.5, row
    assert [e["file"] for e in doc["errors"]] == [declared], doc["errors"]
    assert "cache" in doc["errors"][0]["message"]
    assert not any("never produced" in w for w in doc.get("warnings", [])), doc.get("warnings")
    assert code == 1 and verdict["verdict"] == "fail", verdict


def test_keys_that_flatten_to_one_name_are_an_error_not_a_choice(tmp_path: Path) -> None:
    """`{"model": {"acc": 0.5}, "model.acc": 0.9}` has two values for `model.acc`: DVC stops
    with "duplicated key"; keeping the last one would hide the nested drop from 0.9."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _run(repo, "git", "init", "-q", "-b", "main")
    _dvc(repo, "init", "-q")
    (repo / "dvc.yaml").write_text("metrics:\n  - metrics.json\n")
    (repo / "metrics.json").write_text(json.dumps({"model": {"acc": 0.9}}))
    (repo / "mlops-ci.yaml").write_text(
        "artifact: model\nmetrics:\n  model.acc: {max_drop: 0.01}\n"
    )
    Git(repo).commit_all("main")
    (repo / "metrics.json").write_text(json.dumps({"model": {"acc": 0.5}, "model.acc": 0.9}))
    dvc = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "diff", "main", "--json"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "duplicated key" in dvc.stdout + dvc.stderr
    doc, code, verdict = _compare_and_gate(repo)
    (row,) = [r for r in doc["metrics"] if r["key"] == "model.acc"]
    assert row["status"] == "unknown", row
    (error,) = doc["errors"]
    assert error["file"] == "metrics.json" and "duplicated key 'model.acc'" in error["message"]
    assert error["revision"] == "workspace"
    assert code == 1 and verdict["verdict"] == "fail", verdict


@pytest.mark.parametrize("declared", ["eval", "eval/metrics.json"])
@pytest.mark.parametrize("on_missing", ["neutral", "ignore"])
def test_outputs_missing_from_the_workspace_are_read_from_the_cache(
    tmp_path: Path, declared: str, on_missing: str
) -> None:
    """The candidate trained (its outputs in the cache, dvc.lock written) and the workspace
    copy was removed: DVC reads the cache and shows 0.9 -> 0.5. A lenient on_missing_metric
    must not turn that into a pass."""
    policy = f"metrics:\n  accuracy: {{max_drop: 0.01}}\non_missing_metric: {on_missing}\n"
    repo = _project(tmp_path / "repo", declared, policy)
    (repo / "params.yaml").write_text("quality: 0.5\n")
    _dvc(repo, "repro", "-q")
    shutil.rmtree(repo / "eval")
    dvc = json.loads(_dvc(repo, "metrics", "diff", "main", "--json"))
    assert dvc["eval/metrics.json"]["accuracy"] == {"old": 0.9, "new": 0.5, "diff": -0.4}
    doc, code, verdict = _compare_and_gate(repo)
    (row,) = [r for r in doc["metrics"] if r["key"] == "accuracy"]
    assert (row["baseline"], row["candidate"]) == (0.9, 0.5), row
    assert row["status"] in {"changed", "regressed"} and not doc["errors"], (row, doc["errors"])
    assert code == 1 and verdict["verdict"] == "fail", verdict
