"""`mlops-ci deploy --from-tag` and `mlops-ci deprecate`: registry tags pushed by anyone, read
back by the real `gto` CLI; a version ships only from the default branch with a recorded
passing verdict (or a recorded override)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.commands import promote
from mlops_ci.project.git import Git
from tests.conftest import copy_project
from tests.registry.test_deploy import GTO, current, gto_stage, two_versions_template
from tests.registry.test_registry import new_commit, write_verdict

__all__ = ["two_versions_template"]  # the session fixture, shared with test_deploy


@pytest.fixture
def gated(two_versions_template: Path, tmp_path: Path) -> Path:
    """v0.1.0 (HEAD~1) and v0.2.0 (HEAD), each promoted to staging after a passing gate."""
    repo = copy_project(two_versions_template, tmp_path / "reference")
    git = Git(repo)
    for rev in ("HEAD~1", "HEAD"):
        write_verdict(repo, "pass", "accuracy within bounds", sha=git.rev_parse(rev))
        promote.promote(repo, repo / ".mlops-ci", rev=rev, push=True)
    forget_verdict(repo)
    return repo


def forget_verdict(repo: Path) -> None:
    """The verdict lives on in the version tag; the run directory's stand-ins go."""
    for name in ("verdict.json", "comparison.json"):
        (repo / ".mlops-ci" / name).unlink()


def gto(repo: Path, *args: str) -> str:
    """What a person runs: the real gto CLI, then `git push --tags`."""
    proc = subprocess.run([GTO, *args], cwd=repo, capture_output=True, text=True, check=True)
    return proc.stdout


def newest_tag(repo: Path, prefix: str) -> str:
    names = [t for t in Git(repo).tags() if t.startswith(prefix)]
    return max(names, key=lambda t: int(t.rsplit("#", 1)[1]))


def test_a_hand_pushed_stage_tag_deploys_what_the_stage_holds_and_records_it(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    gto(gated, "assign", "classifier", "--version", "v0.1.0", "--stage", "production")
    tag = newest_tag(gated, "classifier#production#")
    assert main(["deploy", "-C", str(gated), "--from-tag", tag]) == 0
    assert current(gated, "production") == "versions/v0.1.0"
    record = json.loads((gated / ".mlops-ci" / "deployment.json").read_text())
    assert (record["version"], record["environment"], record["override"]) == (
        "v0.1.0",
        "production",
        None,
    )
    (logged,) = json.loads((gated / ".mlops-ci" / "deployments.json").read_text())
    assert (logged["environment"], logged["version"]) == ("production", "v0.1.0")
    done = json.loads((gated / ".mlops-ci" / "tag-deploy.json").read_text())
    assert [d["version"] for d in done["deployed"]] == ["v0.1.0"]
    assert "v0.1.0 deployed to production" in capfd.readouterr().out


def test_a_version_without_a_recorded_verdict_is_refused_unless_overridden(
    two_versions_template: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = copy_project(two_versions_template, tmp_path / "reference")
    promote.promote(repo, repo / ".mlops-ci", push=True)  # no gate ran: no verdict recorded
    tag = newest_tag(repo, "classifier#staging#")
    capfd.readouterr()
    assert main(["deploy", "-C", str(repo), "--from-tag", tag]) == 1
    err = capfd.readouterr().err
    assert "no gate verdict is recorded" in err and "--override REASON" in err
    assert not (repo / "deployments" / "classifier" / "staging").exists()

    reason = "hotfix approved by the on-call lead"
    assert main(["deploy", "-C", str(repo), "--from-tag", tag, "--override", reason]) == 0
    assert current(repo) == "versions/v0.1.0"
    assert json.loads((repo / ".mlops-ci" / "deployment.json").read_text())["override"] == reason
    (logged,) = json.loads((repo / ".mlops-ci" / "deployments.json").read_text())
    assert reason in logged["description"]


def test_a_commit_off_the_default_branch_is_refused_even_with_an_override(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    git = Git(gated)
    git.run("checkout", "--quiet", "-b", "experiment")
    sha = new_commit(gated, "experiment")
    write_verdict(gated, "pass", "fine", sha=sha)
    promote.promote(gated, gated / ".mlops-ci")
    forget_verdict(gated)
    tag = newest_tag(gated, "classifier#staging#")
    git.run("checkout", "--quiet", "main")
    capfd.readouterr()
    code = main(["deploy", "-C", str(gated), "--from-tag", tag, "--override", "trust me"])
    assert code == 1
    assert "not on the history of main" in capfd.readouterr().err
    assert not (gated / "deployments").exists()


def test_an_unassignment_deploys_the_version_the_stage_falls_back_to(gated: Path) -> None:
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier#staging#2"]) == 0
    assert current(gated) == "versions/v0.2.0"
    assert main(["deprecate", "-C", str(gated), "--stage", "staging", "--push"]) == 0
    unassigned = [t for t in Git(gated).tags() if "#staging!#" in t]
    assert unassigned and gto_stage(gated) == "v0.1.0", "gto gives the stage back to v0.1.0"
    assert main(["deploy", "-C", str(gated), "--from-tag", unassigned[0]]) == 0
    assert current(gated) == "versions/v0.1.0"


def test_tags_of_another_artifact_or_no_stage_deploy_nothing(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "-C", str(gated), "--from-tag", "other-model#staging#1"]) == 0
    assert "this project's artifact is 'classifier'" in capfd.readouterr().out
    # v0.2.0 took staging from v0.1.0: a version tag deploys the stages its version holds.
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier@v0.1.0"]) == 0
    assert "nothing to deploy: v0.1.0 holds no stage" in capfd.readouterr().out
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier@v0.2.0"]) == 0
    assert current(gated) == "versions/v0.2.0"
    assert main(["deploy", "-C", str(gated), "--from-tag", "not a tag"]) == 2
    assert "is not a GTO tag" in capfd.readouterr().err


def test_deprecate_follows_gto_semantics(gated: Path) -> None:
    assert main(["deprecate", "-C", str(gated), "--version", "v0.1.0"]) == 0
    assert "classifier@v0.1.0!" in Git(gated).tags()
    shown = json.loads(gto(gated, "show", "classifier", "--json"))
    assert [v["version"] for v in shown] == ["v0.2.0"], "gto no longer lists v0.1.0 as active"
    assert main(["deprecate", "-C", str(gated), "--version", "v9.9.9"]) == 2
    assert main(["deprecate", "-C", str(gated)]) == 0
    assert "classifier@deprecated" in Git(gated).tags()
    everything = json.loads(gto(gated, "show", "--json"))
    assert "classifier" not in everything, "a deprecated artifact leaves gto show"
    # The deprecation's push (registry.yml runs on it) deploys nothing and says what is left.
    assert main(["deploy", "-C", str(gated), "--from-tag", "classifier@deprecated"]) == 0
    record = json.loads((gated / ".mlops-ci" / "tag-deploy.json").read_text())
    assert (record["action"], record["deployed"]) == ("deprecate", [])
    assert [e["environment"] for e in record["left"]] == ["staging"]
    assert "classifier is deprecated (`gto deprecate`" in record["left"][0]["reason"]


def test_a_promotion_whose_deploy_fails_says_so_and_a_rerun_finishes_it(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    promote.promote(gated, gated / ".mlops-ci", stage="production")
    capfd.readouterr()
    code = main(["deploy", "-C", str(gated), "--version", "v0.2.0", "--target", "command:false"])
    assert code == 3
    err = capfd.readouterr().err
    assert "the registry already names classifier v0.2.0 in production" in err
    assert "rerun `mlops-ci deploy --version v0.2.0`" in err
    assert main(["deploy", "-C", str(gated), "--version", "v0.2.0"]) == 0
    assert current(gated, "production") == "versions/v0.2.0"


def test_override_and_version_do_not_mix_with_the_wrong_flags(
    gated: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "-C", str(gated), "--override", "why not"]) == 2
    assert "--override goes with --from-tag" in capfd.readouterr().err
    tag = "classifier#staging#2"
    assert main(["deploy", "-C", str(gated), "--from-tag", tag, "--version", "v0.1.0"]) == 2
    assert "drop --version" in capfd.readouterr().err
