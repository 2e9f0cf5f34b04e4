"""The registry: GTO tags written by mlops-ci, read back by the real `gto` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.commands import deploy as deploy_command
from mlops_ci.commands import promote
from mlops_ci.project import gto
from mlops_ci.project.errors import ConfigError, PromotionRefused, RegistryError
from mlops_ci.project.git import Git
from mlops_ci.registry import registry

GTO = str(Path(sys.executable).with_name("gto"))


def gto_json(repo: Path, *args: str) -> object:
    proc = subprocess.run(
        [GTO, *args, "--json"], cwd=repo, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def tags(repo: Path) -> list[str]:
    return sorted(Git(repo).tags())


def remote_tags(repo: Path) -> list[str]:
    out = Git(repo).out("ls-remote", "--tags", "--refs", "origin")
    return sorted(line.split("refs/tags/", 1)[1] for line in out.splitlines())


def write_verdict(repo: Path, verdict: str, summary: str, sha: str | None = None) -> None:
    run_dir = repo / ".mlops-ci"
    run_dir.mkdir(exist_ok=True)
    doc = {
        "schema_version": 1,
        "kind": "verdict",
        "tool_version": "0.1.0",
        "artifact": "classifier",
        "verdict": verdict,
        "summary": summary,
        "baseline_sha": None,
        "candidate_sha": sha or Git(repo).head_sha(),
        "policy": {"revision": None, "path": "mlops-ci.yaml"},
        "rules": [],
    }
    (run_dir / "comparison.json").write_text('{"kind": "comparison"}')
    doc["inputs"] = {"comparison.json": documents.file_digest(run_dir / "comparison.json")}
    (run_dir / "verdict.json").write_text(json.dumps(doc))


def new_commit(repo: Path, name: str) -> str:
    git = Git(repo)
    (repo / f"{name}.txt").write_text(name)
    git.run("add", f"{name}.txt")
    git.run("commit", "--quiet", "-m", name)
    return git.out("rev-parse", "HEAD")


def test_gto_reads_exactly_the_versions_and_stages_written(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    write_verdict(trained_repo, "pass", "accuracy 0.986 ≥ min 0.9; f1 unchanged")
    first = promote.promote(trained_repo, run_dir, push=True)
    assert (first.version, first.stage, first.registered, first.assigned, first.pushed) == (
        "v0.1.0",
        "staging",
        True,
        True,
        True,
    )
    assert first.tags == ["classifier@v0.1.0", "classifier#staging#1"]
    # The verdict summary rides in the annotated version tag's message.
    message = Git(trained_repo).out("tag", "-l", "--format=%(contents)", "classifier@v0.1.0")
    assert "gate: pass: accuracy 0.986 ≥ min 0.9; f1 unchanged" in message
    assert Git(trained_repo).out("cat-file", "-t", "classifier@v0.1.0") == "tag"

    second_sha = new_commit(trained_repo, "retrain")
    second = promote.promote(trained_repo, run_dir, push=True)
    assert (second.version, second.sha) == ("v0.2.0", second_sha)
    prod = promote.promote(trained_repo, run_dir, stage="production", push=True)
    assert (prod.version, prod.registered, prod.tags) == (
        "v0.2.0",
        False,
        ["classifier#production#3"],
    )
    assert remote_tags(trained_repo) == tags(trained_repo)

    shown = gto_json(trained_repo, "show")
    assert shown["classifier"]["version"] == "v0.2.0"
    assert shown["classifier"]["stage"] == {"staging": "v0.2.0", "production": "v0.2.0"}
    versions = gto_json(trained_repo, "show", "classifier")
    assert {
        v["version"]: (v["commit_hexsha"], sorted(s["stage"] for s in v["stages"]))
        for v in versions
    } == {
        "v0.2.0": (second_sha, ["production", "staging"]),
        "v0.1.0": (first.sha, []),  # its staging tag stays, but v0.2.0 holds the stage now
    }
    history = gto_json(trained_repo, "history", "classifier")
    events = sorted((e["event"], e["version"], e["stage"] or "", e["ref"]) for e in history)
    registration = next(e for e in history if e["ref"] == "classifier@v0.1.0")
    assert registration["commit"] == first.sha
    assert "gate: pass: accuracy 0.986" in registration["message"]
    assert events == sorted(
        [
            ("registration", "v0.1.0", "", "classifier@v0.1.0"),
            ("assignment", "v0.1.0", "staging", "classifier#staging#1"),
            ("registration", "v0.2.0", "", "classifier@v0.2.0"),
            ("assignment", "v0.2.0", "staging", "classifier#staging#2"),
            ("assignment", "v0.2.0", "production", "classifier#production#3"),
        ]
    )
    # The plain `gto history` table names every tag too.
    table = subprocess.run(
        [GTO, "history", "classifier", "--plain"],
        cwd=trained_repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for tag in tags(trained_repo):
        assert tag in table
    assert gto.show(trained_repo, "classifier")["versions"] == [
        {
            "version": "v0.2.0",
            "commit": second_sha,
            "registered": True,
            "stages": ["production", "staging"],
        },
        {"version": "v0.1.0", "commit": first.sha, "registered": True, "stages": []},
    ]


def test_rerun_on_the_same_commit_makes_no_second_version(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    assert main(["promote", "-C", str(trained_repo), "--push"]) == 0
    before = tags(trained_repo)
    again = promote.promote(trained_repo, run_dir, push=True)
    assert (again.version, again.registered, again.assigned, again.tags) == (
        "v0.1.0",
        False,
        False,
        [],
    )
    assert tags(trained_repo) == before == remote_tags(trained_repo)
    doc = json.loads((run_dir / "promotion.json").read_text())
    assert doc["kind"] == "promotion"
    assert doc["version"] == "v0.1.0"


def test_a_failed_verdict_refuses_to_register(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_verdict(trained_repo, "fail", "accuracy dropped 0.0213, more than max_drop 0.01")
    with pytest.raises(PromotionRefused, match="accuracy dropped"):
        promote.promote(trained_repo, trained_repo / ".mlops-ci")
    assert main(["promote", "-C", str(trained_repo)]) == 1
    assert "the gate failed" in capsys.readouterr().err
    assert tags(trained_repo) == []
    # A verdict about another commit does not speak for this one.
    write_verdict(trained_repo, "fail", "old news", sha="0" * 40)
    assert promote.promote(trained_repo, trained_repo / ".mlops-ci").verdict is None


def test_a_passing_verdict_judged_on_another_comparison_does_not_promote(
    trained_repo: Path,
) -> None:
    """The run directory's comparison changed after the gate (a rerun of compare, a copied
    verdict): the pass speaks for numbers nobody judged."""
    write_verdict(trained_repo, "pass", "all rules passed")
    (trained_repo / ".mlops-ci" / "comparison.json").write_text('{"kind": "comparison", "x": 1}')
    with pytest.raises(PromotionRefused, match="cannot be trusted"):
        promote.promote(trained_repo, trained_repo / ".mlops-ci")
    assert tags(trained_repo) == []


def test_unknown_stage_and_empty_rollback_say_what_to_do(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    assert main(["promote", "-C", str(trained_repo), "--stage", "canary"]) == 2
    with pytest.raises(RegistryError, match="no version of classifier is in stage"):
        registry.rollback(trained_repo, stage="production", env=os.environ)
    with pytest.raises(ConfigError, match="has no registered version of classifier"):
        deploy_command.deploy(trained_repo, run_dir)  # nothing registered at HEAD yet
    promote.promote(trained_repo, run_dir)
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(trained_repo, stage="staging", env=os.environ)
    with pytest.raises(RegistryError, match=r"registered: v0\.1\.0"):
        deploy_command.deploy(trained_repo, run_dir, version="v9.9.9")
    assert not (run_dir / "bundles").exists()  # refused before building anything


def test_rollback_writes_new_tags_and_deletes_none(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    promote.promote(trained_repo, run_dir, push=True)
    new_commit(trained_repo, "retrain")
    promote.promote(trained_repo, run_dir, push=True)
    before = tags(trained_repo)
    moved = registry.rollback(trained_repo, stage="staging", push=True, env=os.environ)
    assert (moved.from_version, moved.to_version) == ("v0.2.0", "v0.1.0")
    assert moved.tags == ["classifier#staging!#3", "classifier#staging#4"]
    assert set(before) < set(tags(trained_repo))
    assert remote_tags(trained_repo) == tags(trained_repo)
    assert gto_json(trained_repo, "show")["classifier"]["stage"] == {"staging": "v0.1.0"}
    assert {
        v["version"]: v["stages"] for v in gto.show(trained_repo, "classifier")["versions"]
    } == {
        "v0.2.0": [],
        "v0.1.0": ["staging"],
    }
    events = {(e["event"], e["version"]) for e in gto_json(trained_repo, "history", "classifier")}
    assert ("unassignment", "v0.2.0") in events


# A pre-push hook that holds each runner until both have computed their tags: the two
# promotions then race for the same version name for certain, not by luck of timing.
BARRIER_HOOK = textwrap.dedent(
    """\
    #!{python}
    import pathlib, sys, time
    barrier = pathlib.Path({barrier!r})
    (barrier / {name!r}).touch()
    deadline = time.time() + 60
    while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    """
)


def test_two_promotions_racing_on_one_remote_get_two_versions(trained_repo: Path) -> None:
    origin = trained_repo.parent / "origin.git"
    promote.promote(trained_repo, trained_repo / ".mlops-ci", push=True)
    barrier = trained_repo.parent / "barrier"
    barrier.mkdir()
    clones = []
    for name in ("a", "b"):
        clone = trained_repo.parent / f"clone-{name}"
        subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
        new_commit(clone, f"change-{name}")
        hook = clone / ".git" / "hooks" / "pre-push"
        hook.write_text(BARRIER_HOOK.format(python=sys.executable, barrier=str(barrier), name=name))
        hook.chmod(0o755)
        clones.append(clone)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mlops_ci.cli", "promote", "--push", "-C", str(clone)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clone in clones
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all("error" not in err.lower() for _, err in outputs), outputs

    docs = [json.loads((c / ".mlops-ci" / "promotion.json").read_text()) for c in clones]
    assert sorted(d["version"] for d in docs) == ["v0.2.0", "v0.3.0"]
    assert sorted(d["attempts"] for d in docs) == [1, 2]  # the loser re-fetched and retried
    assert len({d["sha"] for d in docs}) == 2

    checker = trained_repo.parent / "checker"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(checker)], check=True)
    shown = gto_json(checker, "show", "classifier")
    by_version = {v["version"]: v["commit_hexsha"] for v in shown}
    assert sorted(by_version) == ["v0.1.0", "v0.2.0", "v0.3.0"]
    assert {by_version[d["version"]] for d in docs} == {d["sha"] for d in docs}
    stage_tags = [t for t in tags(checker) if t.startswith("classifier#staging#")]
    assert len(stage_tags) == len(set(stage_tags)) == 3
    assert gto_json(checker, "show")["classifier"]["stage"] == {"staging": "v0.3.0"}


def test_a_runner_without_a_git_identity_still_tags(
    trained_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name)
    promote.promote(trained_repo, trained_repo / ".mlops-ci")
    tagger = Git(trained_repo).out(
        "for-each-ref", "--format=%(taggername) %(taggeremail)", "refs/tags/classifier@v0.1.0"
    )
    assert tagger == "mlops-ci <mlops-ci@localhost>"
