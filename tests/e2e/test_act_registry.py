"""act runs the registry workflows on a copy of the reference project, against the loopback fake
GitHub, on fresh runners (no DVC cache: the model comes from the DVC remote):

- a person pushes `classifier#production#N` by hand (what `gto assign` writes): registry.yml
  deploys that version to production and records the deployment; a version without a recorded
  passing verdict is refused and nothing is deployed;
- rollback.yml, started through workflow_dispatch, gives staging back to the previous version,
  redeploys it and pushes the stage tags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mlops_ci.commands import promote
from mlops_ci.project.git import Git
from tests.e2e import harness
from tests.lint import tools
from tests.registry.test_registry import GTO, write_verdict

pytestmark = pytest.mark.slow


@pytest.fixture
def act_bin() -> str:
    return tools.act()


def registry_repo(trained_template: Path, project: Path, target: Path) -> Path:
    """The workflows on main, v0.1.0 (gated) and v0.2.0 (gated) in staging, tags pushed."""
    repo = harness.make_ci_repo(
        trained_template, project, ["registry.yml", "rollback.yml", "deprecate.yml"]
    )
    settings = repo / "mlops-ci.yaml"
    # act runs on a copy of the repository: the target must be outside it to be seen here.
    settings.write_text(settings.read_text().replace("target: deployments/", f"target: {target}"))
    harness.commit_all(repo, "Deploy outside the workspace")
    for note in ("v0.1.0", "v0.2.0"):
        if note == "v0.2.0":
            (repo / "NOTES.md").write_text("The pipeline is as it was.\n")
            harness.commit_all(repo, "Add notes")
        write_verdict(repo, "pass", "accuracy within bounds")
        promote.promote(repo, repo / ".mlops-ci", push=True)
        shutil.rmtree(repo / ".mlops-ci")
    Git(repo).run("push", "--quiet", "origin", "main")
    harness.forget_dvc_state(repo)
    return repo


def tag_push(tag: str) -> dict[str, object]:
    return {
        "ref": f"refs/tags/{tag}",
        "ref_type": "tag",
        "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
    }


def gto_assign(repo: Path, version: str, stage: str) -> str:
    """What a person does: `gto assign`, then push the new tag."""
    before = set(Git(repo).tags())
    subprocess.run(
        [GTO, "assign", "classifier", "--version", version, "--stage", stage],
        cwd=repo,
        capture_output=True,
        check=True,
    )
    (tag,) = set(Git(repo).tags()) - before
    Git(repo).run("push", "--quiet", "origin", f"refs/tags/{tag}")
    return tag


def test_a_hand_pushed_stage_tag_deploys_and_records_it(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    project = tmp_path / "project"
    target = tmp_path / "serving"
    repo = registry_repo(trained_template, project, target)
    env = {"MLOPS_CI_DVC_REMOTE_URL": str(project / "dvc-remote")}
    tag = gto_assign(repo, "v0.1.0", "production")
    v010 = Git(repo).out("rev-list", "-n1", "classifier@v0.1.0")
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("push", tag_push(tag), workflow="registry.yml", work=tmp_path / "w", env=env)
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    live = target / "classifier" / "production" / "current"
    assert os.readlink(live) == "versions/v0.1.0"
    (deployment,) = state["repos"][harness.REPOSITORY]["deployments"]
    assert (deployment["sha"], deployment["environment"]) == (v010, "production")


def test_a_stage_tag_for_an_ungated_version_is_refused(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    project = tmp_path / "project"
    target = tmp_path / "serving"
    repo = registry_repo(trained_template, project, target)
    (repo / "NOTES.md").write_text("Registered by hand, never gated.\n")
    sha = harness.commit_all(repo, "Ungated")
    Git(repo).run("push", "--quiet", "origin", "main")
    subprocess.run(
        [GTO, "register", "classifier", sha, "--version", "v0.3.0"], cwd=repo, check=True
    )
    Git(repo).run("push", "--quiet", "origin", "refs/tags/classifier@v0.3.0")
    tag = gto_assign(repo, "v0.3.0", "production")
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("push", tag_push(tag), workflow="registry.yml", work=tmp_path / "w")
        state = fake.state()
    assert proc.returncode != 0
    assert "no gate verdict is recorded" in proc.stdout
    assert not (target / "classifier" / "production").exists()
    assert state["repos"].get(harness.REPOSITORY, {}).get("deployments", []) == []


def test_rollback_through_workflow_dispatch(act_bin: str, trained_template: Path, tmp_path: Path):
    project = tmp_path / "project"
    target = tmp_path / "serving"
    repo = registry_repo(trained_template, project, target)
    env = {"MLOPS_CI_DVC_REMOTE_URL": str(project / "dvc-remote")}
    dispatch = {
        "ref": "refs/heads/main",
        "inputs": {"stage": "staging"},
        "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
    }
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run(
            "workflow_dispatch", dispatch, workflow="rollback.yml", work=tmp_path / "w", env=env
        )
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    assert os.readlink(target / "classifier" / "staging" / "current") == "versions/v0.1.0"
    origin = Git(project / "origin.git")
    pushed = origin.out("tag", "--list").split()
    assert any("#staging!#" in t for t in pushed), pushed
    Git(repo).run("fetch", "--quiet", "--tags", "origin")
    shown = subprocess.run(
        [GTO, "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(shown)["classifier"]["stage"]["staging"] == "v0.1.0"
    (deployment,) = state["repos"][harness.REPOSITORY]["deployments"]
    assert deployment["environment"] == "staging"


def test_a_pushed_deregistration_of_the_production_version_deploys_what_gto_names(
    act_bin: str, trained_template: Path, tmp_path: Path
):
    """`gto deprecate classifier v0.1.0` on the version in production, pushed: registry.yml
    redeploys what `gto show` names in production now (v0.2.0), and the record says why."""
    project = tmp_path / "project"
    target = tmp_path / "serving"
    repo = registry_repo(trained_template, project, target)
    env = {"MLOPS_CI_DVC_REMOTE_URL": str(project / "dvc-remote")}
    gto_assign(repo, "v0.2.0", "production")
    time.sleep(1.1)  # the person's next command, a second later by the clock
    tag = gto_assign(repo, "v0.1.0", "production")
    v020 = Git(repo).out("rev-list", "-n1", "classifier@v0.2.0")
    live = target / "classifier" / "production" / "current"
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("push", tag_push(tag), workflow="registry.yml", work=tmp_path / "w", env=env)
        assert proc.returncode == 0, harness.tail(proc)
        assert os.readlink(live) == "versions/v0.1.0"
        subprocess.run(
            [GTO, "deprecate", "classifier", "v0.1.0"], cwd=repo, capture_output=True, check=True
        )
        Git(repo).run("push", "--quiet", "origin", "refs/tags/classifier@v0.1.0!")
        proc = act.run(
            "push", tag_push("classifier@v0.1.0!"), workflow="registry.yml",
            work=tmp_path / "w2", env=env,
        )  # fmt: skip
        assert proc.returncode == 0, harness.tail(proc)
        state = fake.state()
    assert state["violations"] == []
    assert os.readlink(live) == "versions/v0.2.0"
    shown = subprocess.run(
        [GTO, "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(shown)["classifier"]["stage"]["production"] == "v0.2.0"
    last = state["repos"][harness.REPOSITORY]["deployments"][-1]
    assert (last["sha"], last["environment"]) == (v020, "production")
    assert "classifier@v0.1.0! deregistered v0.1.0" in last["description"]
