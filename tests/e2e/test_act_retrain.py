"""act runs the scheduled retrain.yml on a copy of the reference project whose pipeline reads a
real `dvc import` from a DVC repository on disk, against the loopback fake GitHub: new upstream
data opens one labelled pull request carrying the report; a rerun without new data opens none
and pushes nothing; newer data updates the same pull request (same branch, a new commit, the
comment edited in place)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_ci.project.git import Git
from tests import retrain_project
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow
BRANCH = "mlops-ci/retrain/classifier"
SCHEDULE = {"schedule": "17 4 * * 1", "repository": {"full_name": harness.REPOSITORY}}


def refs(origin: Path) -> dict[str, str]:
    lines = Git(origin).out("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return dict(line.split() for line in lines)


def pulls(state: dict[str, Any]) -> dict[str, Any]:
    return state["repos"].get(harness.REPOSITORY, {}).get("pulls", {})


def comments(state: dict[str, Any], number: int) -> list[dict[str, Any]]:
    return state["repos"][harness.REPOSITORY]["comments"].get(str(number), [])


def test_scheduled_retrain_opens_then_keeps_then_updates_one_pull_request(
    trained_template: Path, tmp_path: Path
):
    act_bin = tools.act()
    project = tmp_path / "project"
    repo = harness.make_ci_repo(trained_template, project, ["retrain.yml"])
    upstream = retrain_project.make_upstream(tmp_path)
    retrain_project.add_import(repo, upstream)
    harness.forget_dvc_state(repo)
    origin = project / "origin.git"
    env = {"MLOPS_CI_DVC_REMOTE_URL": str(project / "dvc-remote")}

    def retrain(act: harness.Act, name: str) -> str:
        proc = act.run("schedule", SCHEDULE, workflow="retrain.yml", work=tmp_path / name, env=env)
        assert proc.returncode == 0, harness.tail(proc)
        return proc.stdout

    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        retrain_project.write_upstream(upstream, 150)
        first_log = retrain(act, "first")
        first, first_refs = fake.state(), refs(origin)
        second_log = retrain(act, "second")
        second, second_refs = fake.state(), refs(origin)
        retrain_project.write_upstream(upstream, 90)
        retrain(act, "third")
        third, third_refs = fake.state(), refs(origin)

    assert first["violations"] == second["violations"] == third["violations"] == []
    # New upstream data: one pull request from the retrain branch, labelled, with the report.
    assert "source data/upstream.csv.dvc: changed" in first_log
    ((number, pull),) = pulls(first).items()
    assert (pull["head_ref"], pull["base_ref"], pull["labels"]) == (
        BRANCH,
        "main",
        ["mlops-ci:retrain"],
    )
    tip = first_refs[f"refs/heads/{BRANCH}"]
    message = Git(origin).out("log", "-1", "--format=%an|%cn|%B", tip)
    assert (
        message.startswith("mlops-ci[bot]|mlops-ci[bot]|")
        and "Signed-off-by: mlops-ci[bot]" in message
    )
    (comment,) = comments(first, int(number))
    assert "mlops-ci-report:classifier:retrain" in comment["body"]
    assert "upstream\\_rows" in comment["body"] and "upstream\\_rows" in pull["body"]
    statuses = first["repos"][harness.REPOSITORY]["statuses"]
    assert [(s["sha"], s["context"]) for s in statuses] == [(tip, "mlops-ci/classifier")]

    # The same data again: nothing pushed, no second pull request, and the job says so.
    assert second_refs == first_refs, "a rerun without new data must push nothing"
    assert list(pulls(second)) == [number]
    assert "already holds this change" in second_log

    # Newer data: the same pull request and branch, a new commit, the comment edited in place.
    assert list(pulls(third)) == [number]
    assert third_refs[f"refs/heads/{BRANCH}"] != tip
    (updated,) = comments(third, int(number))
    assert updated["id"] == comment["id"] and updated["body"] != comment["body"]
    assert pulls(third)[number]["labels"] == ["mlops-ci:retrain"]
