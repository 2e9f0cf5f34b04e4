"""`mlops-ci retrain` on the reference project with a real `dvc import` from a DVC repository on
disk: a new upstream revision opens one pull request, a rerun without one pushes nothing, a
further revision updates the same branch and pull request; two runs racing on the branch leave
one winner."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.commands.retrain import BOT_EMAIL, BOT_NAME, run_retrain
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git
from tests import retrain_project

BRANCH = "mlops-ci/retrain/classifier"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def import_template(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained reference project importing rows.csv from an upstream DVC repository."""
    from tests.conftest import copy_project

    base = tmp_path_factory.mktemp("retrain")
    repo = copy_project(trained_template, base / "project")
    upstream = retrain_project.make_upstream(base)
    retrain_project.add_import(repo, upstream)
    return base


@pytest.fixture
def project(import_template: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(repo, upstream) of a private copy, its import pointed at its own upstream copy."""
    base = tmp_path / "base"
    shutil.copytree(import_template, base, symlinks=True)
    repo = base / "project" / "repo"
    Git(repo).run("remote", "set-url", "origin", str(base / "project" / "origin.git"))
    upstream = base / "upstream"
    source = repo / retrain_project.SOURCE
    source.write_text(source.read_text().replace(str(import_template), str(base)))
    retrain_project.dvc(repo, "update", retrain_project.SOURCE)  # the stage's md5 names the URL
    Git(repo).commit_all("Point the import at this copy")
    Git(repo).run("push", "--quiet", "origin", "HEAD:main")
    return repo, upstream


def origin_refs(repo: Path) -> dict[str, str]:
    origin = Git(repo).out("remote", "get-url", "origin")
    lines = Git(origin).out("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return dict(line.split() for line in lines)


def pulls(run_dir: Path) -> list[dict]:
    path = run_dir / "pulls.json"
    return json.loads(path.read_text()) if path.exists() else []


def test_retrain_opens_one_pr_then_pushes_nothing_then_updates_it(
    project: tuple[Path, Path], tmp_path: Path
):
    repo, upstream = project
    run_dir = repo / ".mlops-ci"
    env = {"PATH": __import__("os").environ["PATH"]}
    retrain_project.write_upstream(upstream, 150)

    first = run_retrain(repo, run_dir, env=env)
    assert first.changed and first.pushed and first.pull_created, first.lines
    assert set(first.changed_files) >= {"dvc.lock", retrain_project.SOURCE, "eval/upstream.json"}
    refs = origin_refs(repo)
    assert refs[f"refs/heads/{BRANCH}"] == first.commit_sha
    origin = Git(Git(repo).out("remote", "get-url", "origin"))
    author = origin.out(
        "log", "-1", "--format=%an <%ae>|%cn <%ce>|%(trailers:key=Signed-off-by)", BRANCH
    )
    assert author.startswith(f"{BOT_NAME} <{BOT_EMAIL}>|{BOT_NAME} <{BOT_EMAIL}>|")
    assert f"Signed-off-by: {BOT_NAME} <{BOT_EMAIL}>" in author
    (pull,) = pulls(run_dir)
    assert (pull["head"], pull["base"], pull["labels"]) == (BRANCH, "main", ["mlops-ci:retrain"])
    assert "upstream\\_rows" in pull["body"], "the report carries the new metric"
    assert Git(repo).current_branch() == "main", "the clone is left where it started"

    again = run_retrain(repo, run_dir, env=env)
    assert again.changed and not again.pushed, again.lines
    assert origin_refs(repo) == refs, "a rerun without new upstream data pushes nothing"
    assert any("already holds this change" in line for line in again.lines)
    assert len(pulls(run_dir)) == 1

    retrain_project.write_upstream(upstream, 90)
    third = run_retrain(repo, run_dir, env=env)
    assert third.pushed and not third.pull_created, third.lines
    assert origin_refs(repo)[f"refs/heads/{BRANCH}"] == third.commit_sha != first.commit_sha
    (pull,) = pulls(run_dir)
    assert pull["number"] == first.pull_number


def test_no_upstream_change_makes_no_commit_and_says_so(project: tuple[Path, Path], capsys):
    repo, _ = project
    refs = origin_refs(repo)
    head = Git(repo).head_sha()
    assert main(["retrain", "-C", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "no change" in out and "no commit, no push, no pull request" in out
    assert Git(repo).head_sha() == head and origin_refs(repo) == refs
    assert not (repo / ".mlops-ci" / "pulls.json").exists()
    summary = (repo / ".mlops-ci" / "summary.md").read_text()
    assert "no change" in summary


def test_retrain_sources_must_be_imports(project: tuple[Path, Path]):
    """A .dvc file of a plain `dvc add` has no upstream: naming it is an error, not a no-op."""
    repo, _ = project
    (repo / "data" / "notes.csv").write_text("a,b\n1,2\n")
    retrain_project.dvc(repo, "add", "data/notes.csv")
    settings = repo / "mlops-ci.yaml"
    settings.write_text(settings.read_text() + "retrain:\n  sources: [data/notes.csv.dvc]\n")
    Git(repo).commit_all("Name a source that is no import")
    with pytest.raises(ConfigError, match=re.escape("names data/notes.csv.dvc, which is not a")):
        run_retrain(repo, repo / ".mlops-ci", reproduce_only=True)
    assert main(["retrain", "-C", str(repo), "--reproduce-only"]) == 2


def race_hook(origin: Path, branch: str, winner: str) -> None:
    """A pre-receive hook that lets another push land first: on the next push it moves
    `branch` to `winner` itself, so the push under test finds the ref moved (a lost lease)."""
    hook = origin / "hooks" / "pre-receive"
    flag = origin / "race-once"
    flag.write_text(winner)
    hook.write_text(
        "#!/bin/sh\n"
        f'if [ -f "{flag}" ]; then\n'
        # Outside the push's object quarantine, where git allows ref updates.
        f'  env -u GIT_QUARANTINE_PATH git update-ref refs/heads/{branch} "$(cat "{flag}")"\n'
        f'  rm "{flag}"\n'
        "fi\n"
        "cat > /dev/null\n"
    )
    hook.chmod(0o755)


@pytest.mark.parametrize("same_content", [True, False], ids=["same-change", "other-change"])
def test_two_retrains_racing_on_the_branch(
    project: tuple[Path, Path], tmp_path: Path, same_content: bool
):
    """Run B reproduced while run A pushed: B's lease fails. With A's files B stops and reports
    the updated branch; with other files B redoes its push once on A's tip."""
    repo, upstream = project
    retrain_project.write_upstream(upstream, 120)
    run_a, run_b = tmp_path / "run-a", tmp_path / "run-b"
    a = run_retrain(repo, run_a, reproduce_only=True)
    if same_content:
        shutil.copytree(run_a, run_b)
        b = a
    else:
        retrain_project.write_upstream(upstream, 130)
        b = run_retrain(repo, run_b, reproduce_only=True)
    origin = Path(Git(repo).out("remote", "get-url", "origin"))
    # A's commit reaches the origin's objects (as its push would), then the hook lands it on
    # the branch during B's push.
    Git(repo).run("push", "--quiet", "origin", f"{a.commit_sha}:refs/race/winner")
    race_hook(origin, BRANCH, a.commit_sha)

    published = run_retrain(repo, run_b, publish=True)
    tip = origin_refs(repo)[f"refs/heads/{BRANCH}"]
    assert any("another retrain run won the race" in line for line in published.lines), (
        published.lines
    )
    if same_content:
        assert not published.pushed and tip == a.commit_sha
        assert any("already holds this change" in line for line in published.lines)
    else:
        # The publishing half commits the checked files itself: b's tree, not b's commit object.
        assert published.pushed and tip == published.commit_sha != b.commit_sha
        git = Git(repo)
        assert git.out("rev-parse", f"{tip}^{{tree}}") == git.out(
            "rev-parse", f"{b.commit_sha}^{{tree}}"
        )
    assert len(pulls(run_b)) == 1


def test_the_reproducing_half_runs_stages_without_write_tokens(
    project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A token in the job's environment never reaches `dvc update` or a stage."""
    repo, upstream = project
    seen = tmp_path / "seen.txt"
    script = repo / "count_upstream.py"
    script.write_text(
        script.read_text()
        + "import os\n"
        + "pathlib.Path(os.environ['SEEN_FILE']).write_text(' '.join(sorted(os.environ)))\n"
    )
    Git(repo).commit_all("The stage writes down what it sees")
    Git(repo).run("push", "--quiet", "origin", "HEAD:main")
    retrain_project.write_upstream(upstream, 140)
    for name in ("GITHUB_TOKEN", "MLOPS_CI_TOKEN", "GITLAB_TOKEN", "MLOPS_CI_PUSH_TOKEN"):
        monkeypatch.setenv(name, "secret-" + name.lower())
    monkeypatch.setenv("SEEN_FILE", str(seen))
    result = run_retrain(repo, tmp_path / "run", reproduce_only=True)
    assert result.changed and not result.pushed
    names = seen.read_text().split()
    assert "SEEN_FILE" in names, "the stage ran and wrote what it saw"
    assert not {"GITHUB_TOKEN", "MLOPS_CI_TOKEN", "GITLAB_TOKEN", "MLOPS_CI_PUSH_TOKEN"} & set(
        names
    )
    assert "secret-" not in (tmp_path / "run" / "retrain.json").read_text()


def test_publish_refuses_a_run_directory_that_does_not_hold_together(
    project: tuple[Path, Path], tmp_path: Path
):
    """retrain.json is untrusted input: it must match its schema, be made on the target
    branch's tip, and report exactly the files the bundle changes."""
    from mlops_ci.ci.untrusted import UntrustedInputRejected

    repo, upstream = project
    retrain_project.write_upstream(upstream, 110)
    run = tmp_path / "run"
    run_retrain(repo, run, reproduce_only=True)
    doc = json.loads((run / "retrain.json").read_text())
    refs = origin_refs(repo)

    (run / "retrain.json").write_text(json.dumps({**doc, "base_sha": "f" * 40}))
    with pytest.raises(ConfigError, match="made on ffffffffffff"):
        run_retrain(repo, run, publish=True)
    (run / "retrain.json").write_text(json.dumps({**doc, "changed_files": ["dvc.lock"]}))
    with pytest.raises(ConfigError, match="differs from the files retrain"):
        run_retrain(repo, run, publish=True)
    (run / "retrain.json").write_text(json.dumps({**doc, "bundle": "../../elsewhere"}))
    with pytest.raises(UntrustedInputRejected, match="does not match the retrain schema"):
        run_retrain(repo, run, publish=True)
    (run / "retrain.json").write_text(json.dumps(doc))
    (run / "retrain.bundle").write_bytes(b"not a bundle")
    with pytest.raises(ConfigError, match="is not a git bundle"):
        run_retrain(repo, run, publish=True)
    assert origin_refs(repo) == refs, "nothing was pushed"
    assert not (run / "pulls.json").exists()
