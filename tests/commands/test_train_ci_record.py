"""The separate actions (`train` → `compare` → `gate` → `report`) leave the same record for the
fork-safe half as `mlops-ci pr` does: `train` writes `ci.json` in CI, before any stage runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.project.git import Git


@pytest.mark.parametrize("stage_fails", [False, True], ids=["trained", "a-stage-fails"])
def test_train_in_ci_records_the_pull_request_for_the_trusted_half(
    trained_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_fails: bool
) -> None:
    head = Git(trained_repo).out("rev-parse", "HEAD")
    event = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"sha": head, "ref": "tune", "repo": {"full_name": "fork/project"}},
            "base": {"sha": head, "ref": "main", "repo": {"full_name": "acme/project"}},
        },
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_REPOSITORY": "acme/project",
        "GITHUB_API_URL": "http://127.0.0.1:9",  # never called: train posts nothing
    }.items():
        monkeypatch.setenv(key, value)
    if stage_fails:  # a broken stage must not lose the record the comment is posted from
        params = trained_repo / "params.yaml"
        params.write_text(params.read_text().replace("model: logistic_regression", "model: x"))
    run_dir = tmp_path / "run"
    code = main(["train", "-C", str(trained_repo), "--run-dir", str(run_dir)])
    assert code == (2 if stage_fails else 0)
    record = json.loads((run_dir / "ci.json").read_text())
    assert (record["pr_number"], record["head_sha"], record["is_fork"]) == (7, head, True)
