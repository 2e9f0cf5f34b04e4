"""`mlops-ci compare` on a real DVC project: how each status is decided, noise bands from the
target branch's repeat runs (real `dvc repro` with unchanged inputs), slices joined from a
features file, and the gate's `worst_slice_drop` on them."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.commands.compare import run_compare
from mlops_ci.commands.gate import run_gate
from mlops_ci.project.git import Git
from mlops_ci.report.trend import carried_trend, read_trend
from tests.conftest import git_commit_all

DVC = str(Path(sys.executable).parent / "dvc")


def _dvc(repo: Path, *args: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([DVC, *args], cwd=repo, check=True, capture_output=True, env=env)


@pytest.mark.slow  # five real `dvc repro` runs for a noise band
def test_compare_decides_each_status_and_slices_by_a_joined_column(trained_repo: Path) -> None:
    repo, git = trained_repo, Git(trained_repo)
    with open(repo / "eval" / "predictions.csv", newline="") as fh:
        ids = [row["id"] for row in csv.DictReader(fh)]
    with open(repo / "segments.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["row_id", "segment"])
        out.writerows([i, "abc"[n % 3]] for n, i in enumerate(ids))
    policy = (repo / "mlops-ci.yaml").read_text()
    policy = policy.replace("  accuracy: {direction: higher, min: 0.9, max_drop: 0.01}",
                            "  accuracy: {direction: higher, min: 0.9, max_drop: 0.01, "
                            "worst_slice_drop: 0.05}")  # fmt: skip
    policy += "slices: {columns: [segment], features: segments.csv, key: row_id, min_size: 20}\n"
    (repo / "mlops-ci.yaml").write_text(policy)
    git_commit_all(repo, "Slice the test set by segment")
    for n in range(4):  # repeat runs on main: the inputs stay, the timings move
        _dvc(repo, "repro", "--force", "evaluate")
        git_commit_all(repo, f"Re-run the evaluation {n}")
    git.run("push", "--quiet", "origin", "main")
    git.run("fetch", "--quiet", "origin")
    git.run("checkout", "--quiet", "-b", "rerun")
    _dvc(repo, "repro", "--force", "evaluate")
    git_commit_all(repo, "Re-run once more")

    doc = run_compare(repo, repo / ".mlops-ci")
    rows = {r["name"]: r for r in doc["metrics"]}
    for name in ("accuracy", "f1", "roc_auc", "log_loss"):
        assert rows[name]["decided_by"] == "interval", rows[name]
    latency = rows["predict_latency_ms"]
    assert latency["decided_by"] == "noise band", latency
    assert latency["noise"]["df"] >= 3 and latency["noise"]["relative"] is True
    assert latency["band_low"] < latency["noise"]["centre"] < latency["band_high"]
    assert latency["status"] in ("within-noise", "improved", "regressed")
    # The same git batch gave the report's trend: what `read_trend` reads from git itself.
    trend = doc["trend"]
    followed = [r for r in doc["metrics"] if r["name"] in trend["metrics"]]
    assert "accuracy" in trend["metrics"] and len(trend["commits"]) == 5  # train + 4 re-runs
    from_git = read_trend(git, trend["ref"], followed, commits=10)
    assert carried_trend(trend, followed, 10) == from_git
    family = doc["family"]
    assert family["interval_members"] == 6 * 4 and family["band_members"] >= 1
    assert family["approximation"] is None  # under NORMAL_LIMIT_ROWS: every resample exact
    assert family["interval_confidence"] + 0 < 1
    slices = doc["slices"]
    assert [(s["column"], s["value"], s["gated"]) for s in slices["rows"]] == [
        ("segment", "a", True), ("segment", "b", True), ("segment", "c", True),
    ]  # fmt: skip
    assert sum(s["n_candidate"] for s in slices["rows"]) == len(ids)
    result = run_gate(repo, repo / ".mlops-ci")
    (worst,) = [r for r in result.verdict.rules if r.rule == "worst_slice_drop"]
    assert worst.outcome == "pass", worst.reason  # the same model: no slice lost anything
    assert "the worst of 3 slices is segment=" in worst.reason
