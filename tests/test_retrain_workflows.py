"""The shapes retraining and progress need in the workflows, the action and the GitLab template:
the half that runs repository code has no write token and no credentials, the half that holds
them runs no stage, and the pull request flows announce the run before training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
TEMPLATE = ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"
TOKENS = ("-u GITHUB_TOKEN", "-u GH_TOKEN", "-u MLOPS_CI_TOKEN", "-u MLOPS_CI_PUSH_TOKEN")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as True
        data["on"] = data.pop(True)
    return data


def uses(step: dict[str, Any], name: str) -> bool:
    return step.get("uses", "").split("@")[0].endswith(name)


@pytest.mark.parametrize("name", ["retrain.yml", "reusable-retrain.yml"])
def test_retrain_reproduces_without_credentials_and_publishes_without_running_code(name: str):
    wf = load(WORKFLOWS / name)
    if name == "retrain.yml":
        assert set(wf["on"]) == {"schedule", "workflow_dispatch"}
    reproduce, publish = wf["jobs"]["reproduce"], wf["jobs"]["publish"]
    assert reproduce["permissions"] == {"contents": "read"}
    checkout = reproduce["steps"][0]
    assert uses(checkout, "actions/checkout") and checkout["with"]["persist-credentials"] is False
    (retrain,) = [s for s in reproduce["steps"] if uses(s, "actions/retrain")]
    assert retrain["with"]["half"] == "reproduce" and "token" not in retrain["with"]
    assert publish["needs"] == "reproduce"
    assert publish["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "statuses": "write",
    }
    names = [s.get("uses", "").split("@")[0] or s.get("name") for s in publish["steps"]]
    assert names.index(next(n for n in names if "download-artifact" in n)) < len(names) - 1
    (last,) = [s for s in publish["steps"] if uses(s, "actions/retrain")]
    assert last["with"]["half"] == "publish" and last is publish["steps"][-1]
    for step in publish["steps"]:
        # Nothing of the repository is installed or run where the token is.
        assert "requirements" not in (step.get("with") or {}), step
        assert "run" not in step, step


def test_retrain_action_drops_every_write_token_in_the_reproducing_half():
    action = yaml.safe_load((ROOT / "actions" / "retrain" / "action.yml").read_text())
    run = action["runs"]["steps"][0]["run"]
    reproduce = run.split("reproduce)", 1)[1].split(";;", 1)[0]
    assert all(flag in reproduce for flag in TOKENS)
    assert 'env "${drop[@]}" mlops-ci "${args[@]}"' in run


@pytest.mark.parametrize("name", ["pr.yml", "reusable-pr.yml"])
def test_pull_request_flows_announce_before_anything_runs(name: str):
    steps = load(WORKFLOWS / name)["jobs"]["mlops-ci"]["steps"]
    labels = [s.get("name") or s.get("uses", "").split("@")[0] for s in steps]
    announce = labels.index("Announce the run")
    assert announce < next(i for i, s in enumerate(steps) if uses(s, "actions/pr"))
    assert steps[announce]["run"] == "mlops-ci pr --announce"
    assert steps[announce]["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert "head.repo.full_name == github.repository" in steps[announce]["if"]
    if "Install the pipeline's requirements" in labels:
        assert announce < labels.index("Install the pipeline's requirements")
    setup = next(s for s in steps if uses(s, "actions/setup"))
    assert "requirements" not in setup["with"], "requirements may run code: after announcing"


def test_gitlab_retrain_jobs_and_the_announcement():
    data = yaml.safe_load(TEMPLATE.read_text())
    reproduce, publish = data["mlops-ci:retrain"], data["mlops-ci:retrain:publish"]
    rule = '$CI_PIPELINE_SOURCE == "schedule" || $MLOPS_CI_RETRAIN == "true"'
    assert reproduce["rules"] == publish["rules"] == [{"if": rule}]
    assert reproduce["extends"] == ".mlops-ci-train"  # unsets every token first
    assert data[".mlops-ci-train"]["before_script"][0].startswith(
        "unset MLOPS_CI_TOKEN GITLAB_TOKEN MLOPS_CI_PUSH_TOKEN"
    )
    assert any("--reproduce-only" in line for line in reproduce["script"])
    assert publish["extends"] == ".mlops-ci-promote"  # the push token, through git's env only
    assert publish["needs"] == [{"job": "mlops-ci:retrain", "artifacts": True}]
    assert publish["script"] == ['mlops-ci retrain --publish --run-dir "$MLOPS_CI_RUN_DIR"']
    announce = data["mlops-ci:merge-request:announce"]
    assert announce["stage"] == ".pre" and announce["extends"] == ".mlops-ci"
    assert announce["script"] == ['mlops-ci pr --announce --run-dir "$MLOPS_CI_RUN_DIR"']
