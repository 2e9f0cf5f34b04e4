"""The registry as `gto show` reads it: deregistered versions, deprecated artifacts, stages held
by a bare commit and tag dates, each driven by the steps a person or a CI run takes, with the
real gto CLI as the judge."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.commands import promote
from mlops_ci.compare.baseline import resolve_baseline
from mlops_ci.project import gto as gto_reading
from mlops_ci.project.errors import RegistryError
from mlops_ci.project.git import Git
from tests.registry.test_deploy import current, two_versions_template
from tests.registry.test_registry import new_commit, write_verdict
from tests.registry.test_tag_deploy import gated, gto

__all__ = ["gated", "two_versions_template"]  # fixtures shared with test_tag_deploy


def shown(repo: Path) -> list[dict]:
    """`gto show classifier --json`, which fails loudly when gto refuses the tags."""
    return json.loads(gto(repo, "show", "classifier", "--json"))


def gto_holders(repo: Path) -> dict[str, str]:
    """Stage -> version as `gto show` names them (it lists each stage's holder only)."""
    return {s["stage"]: v["version"] for v in shown(repo) for s in v["stages"]}


def baseline(repo: Path, stage: str):
    return resolve_baseline(
        Git(repo),
        f"stage:{stage}",
        target_branch="main",
        artifact="classifier",
        stages=("staging", "production"),
    )


def tag_deploy_record(repo: Path) -> dict:
    return json.loads((repo / ".mlops-ci" / "tag-deploy.json").read_text())


def test_a_commit_whose_version_was_deregistered_gets_no_second_version(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    git = Git(gated)
    assert main(["deprecate", "-C", str(gated), "--version", "v0.1.0", "--push"]) == 0
    git.run("reset", "--quiet", "--hard", "HEAD~1")  # back on the commit of v0.1.0
    capfd.readouterr()
    assert main(["promote", "-C", str(gated), "--push"]) != 0
    err = capfd.readouterr().err
    assert "v0.1.0, which was deregistered" in err and "make a new commit" in err
    assert not [t for t in git.tags() if t.startswith("classifier@v0.3")]
    assert [v["version"] for v in shown(gated)] == ["v0.2.0"], "gto still reads the registry"
    # A new commit gets the next number above every version ever registered.
    new_commit(gated, "retry")
    write_verdict(gated, "pass", "ok")
    assert promote.promote(gated, gated / ".mlops-ci", push=True).version == "v0.3.0"
    assert gto_holders(gated) == {"staging": "v0.3.0"}


def test_deregistering_the_latest_version_does_not_reuse_its_number(gated: Path) -> None:
    assert main(["deprecate", "-C", str(gated), "--version", "v0.2.0"]) == 0
    new_commit(gated, "next")
    write_verdict(gated, "pass", "ok")
    assert promote.promote(gated, gated / ".mlops-ci").version == "v0.3.0"
    assert [v["version"] for v in shown(gated)] == ["v0.3.0", "v0.1.0"]


def test_a_deprecated_artifact_holds_no_stage_for_any_command(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier#staging#2"]) == 0
    assert current(gated) == "versions/v0.2.0"
    gto(gated, "deprecate", "classifier")
    assert shown(gated) == []
    found = baseline(gated, "staging")
    assert found.sha is None and "classifier is deprecated" in (found.note or "")
    capfd.readouterr()
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier#staging#2"]) == 0
    out = capfd.readouterr().out
    assert "deployed to" not in out and "classifier is deprecated" in out
    assert tag_deploy_record(gated)["left"][0]["environment"] == "staging"
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier@deprecated"]) == 0
    assert "classifier is deprecated" in capfd.readouterr().out
    reading = gto_reading.reading(gated, "classifier")
    assert (reading["holders"], reading["versions"], reading["deprecated"]) == ({}, [], True)


def test_mlops_ci_deprecate_says_what_its_own_reading_says(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["deprecate", "-C", str(gated)]) == 0
    assert "no stage holds any of its versions" in capfd.readouterr().out
    assert json.loads(gto(gated, "show", "--json")) == {}
    # Nothing is in staging any more, so there is nothing to unassign there.
    assert main(["deprecate", "-C", str(gated), "--stage", "staging"]) != 0
    assert "nothing to unassign" in capfd.readouterr().err
    assert gto_reading.reading(gated, "classifier")["holders"] == {}


def test_a_deregistration_of_the_production_version_redeploys_what_gto_names(
    gated: Path,
) -> None:
    gto(gated, "assign", "classifier", "--version", "v0.2.0", "--stage", "production")
    time.sleep(1.1)  # a person's second `gto assign`, later by the clock
    gto(gated, "assign", "classifier", "--version", "v0.1.0", "--stage", "production")
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier#production#4"]) == 0
    assert current(gated, "production") == "versions/v0.1.0"
    assert main(["deprecate", "-C", str(gated), "--version", "v0.1.0"]) == 0
    assert gto_holders(gated)["production"] == "v0.2.0"
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier@v0.1.0!"]) == 0
    assert current(gated, "production") == "versions/v0.2.0"
    record = json.loads((gated / ".mlops-ci" / "deployment.json").read_text())
    assert (record["version"], record["environment"]) == ("v0.2.0", "production")
    assert record["reason"] == (
        "classifier@v0.1.0! deregistered v0.1.0; gto show names v0.2.0 in production now"
    )


def test_a_deregistration_that_empties_a_stage_leaves_its_environment_and_says_why(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    gto(gated, "assign", "classifier", "--version", "v0.1.0", "--stage", "production")
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier#production#3"]) == 0
    assert main(["deprecate", "-C", str(gated), "--version", "v0.1.0"]) == 0
    assert "production" not in gto_holders(gated)
    capfd.readouterr()
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier@v0.1.0!"]) == 0
    assert "production: no version holds it now" in capfd.readouterr().out
    assert tag_deploy_record(gated)["left"] == [
        {"environment": "production", "reason": "no version holds it now"}
    ]
    assert current(gated, "production") == "versions/v0.1.0", "left as it was"


def test_a_stage_held_by_a_bare_commit_is_compared_and_refused_clearly(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sha = new_commit(gated, "unregistered")
    Git(gated).run("push", "--quiet", "origin", "HEAD:main")
    gto(gated, "assign", "classifier", "--stage", "production", "--skip-registration")
    assert gto_holders(gated)["production"] == sha
    assert baseline(gated, "production").sha == sha
    capfd.readouterr()
    code = main(["deploy", "-C", str(gated), "--from-tag", "classifier#production#3"])
    assert code == 1
    assert "assigned without a version" in capfd.readouterr().err
    # Promoting the commit registers it and moves the stage to the new version.
    write_verdict(gated, "pass", "ok")
    done = promote.promote(gated, gated / ".mlops-ci", stage="production")
    assert (done.version, done.assigned) == ("v0.3.0", True)
    assert gto_holders(gated)["production"] == "v0.3.0"
    shown_versions = [v["version"] for v in shown(gated)]
    assert gto_reading.reading(gated, "classifier")["holders"]["production"] == "v0.3.0"
    assert "v0.3.0" in shown_versions


def test_tag_dates_never_run_ahead_of_the_clock_so_a_later_gto_assign_wins(
    gated: Path,
) -> None:
    git = Git(gated)
    for name in ("a", "b", "c"):
        new_commit(gated, name)
        write_verdict(gated, "pass", "ok")
        promote.promote(gated, gated / ".mlops-ci")
    dates = git.out("for-each-ref", "--format=%(taggerdate:unix)", "refs/tags").split()
    assert max(int(d) for d in dates) <= time.time()
    time.sleep(max(0.0, max(int(d) for d in dates) + 1 - time.time()))
    gto(gated, "assign", "classifier", "--version", "v0.1.0", "--stage", "staging", "--force")
    assert gto_holders(gated)["staging"] == "v0.1.0", "the person's later assignment wins"
    assert gto_reading.reading(gated, "classifier")["holders"]["staging"] == "v0.1.0"


def test_a_tag_dated_far_ahead_of_the_clock_is_refused_not_outbid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = Git(repo)
    git.run("init", "--quiet")
    (repo / "mlops-ci.yaml").write_text("artifact: clf\npromote:\n  stages: [staging]\n")
    git.run("add", "mlops-ci.yaml")
    git.run("commit", "--quiet", "-m", "c0")
    ahead = int(time.time()) + 600  # a runner whose clock ran ten minutes fast
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{ahead} +0000")
    promote.promote(repo, repo / ".mlops-ci", stage="staging")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    new_commit(repo, "c1")
    with pytest.raises(RegistryError, match="ahead of this clock"):
        promote.promote(repo, repo / ".mlops-ci", stage="staging")
    assert sorted(git.tags()) == ["clf#staging#1", "clf@v0.1.0"], "nothing half-written"
