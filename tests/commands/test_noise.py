"""`mlops-ci noise --repeat N` on the real reference project: with no history on the target
branch a timing metric is only `changed`; measured on request, it gets a noise band from the
repeat runs; once the stage's inputs change, the old measurements are stale and not used."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_ci.cli import main
from mlops_ci.commands.compare import run_compare
from mlops_ci.project.git import Git
from tests.conftest import git_commit_all


def _latency(repo: Path) -> dict:
    doc = run_compare(repo, repo / ".mlops-ci")
    return next(r for r in doc["metrics"] if r["name"] == "predict_latency_ms") | {
        "warnings": doc["warnings"]
    }


def test_repeat_measurements_give_a_metric_without_history_its_noise_band(
    trained_repo: Path, capsys
) -> None:
    repo = trained_repo
    Git(repo).run("checkout", "--quiet", "-b", "measure")
    # One commit on main: nothing to tell noise from change.
    before = _latency(repo)
    assert before["decided_by"] == "none" and before["status"] in ("changed", "unchanged")

    # Three repeats are too few for a band; four are enough.
    argv = ["noise", "-C", str(repo), "--repeat", "3", "--stage", "evaluate"]
    assert main(argv) == 0
    assert _latency(repo)["decided_by"] == "none"
    argv = ["noise", "-C", str(repo), "--repeat", "4", "--stage", "evaluate"]
    assert main(argv) == 0
    assert "4 more run(s) of evaluate" in capsys.readouterr().out
    doc = json.loads((repo / ".mlops-ci" / "noise.json").read_text())
    assert doc["kind"] == "noise" and set(doc["inputs"]) == {"eval/metrics.json"}
    latency = next(m for m in doc["measurements"] if m["key"] == "predict_latency_ms")
    assert len(latency["values"]) == 5  # the trained value and four more runs
    assert len(set(latency["values"])) > 1  # timing noise is real

    after = _latency(repo)
    assert after["decided_by"] == "noise band", after
    assert after["noise"]["df"] == 4
    assert after["band_low"] < after["band_high"]
    assert after["status"] in ("within-noise", "improved", "regressed")

    # New inputs for evaluate: the measurements describe another configuration.
    params = (repo / "params.yaml").read_text().replace("threshold: 0.5", "threshold: 0.4")
    (repo / "params.yaml").write_text(params)
    assert main(["train", "-C", str(repo)]) == 0
    git_commit_all(repo, "Lower the threshold")
    stale = _latency(repo)
    assert stale["decided_by"] == "none"
    assert any("measured other inputs" in w for w in stale["warnings"])


def test_noise_refuses_a_stage_that_writes_no_metrics(trained_repo: Path, capsys) -> None:
    argv = ["noise", "-C", str(trained_repo), "--repeat", "2", "--stage", "prepare"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no stage in dvc.lock named prepare writes a metrics file" in err
    assert "evaluate, train" in err
    assert main(["noise", "-C", str(trained_repo), "--repeat", "0"]) == 2
