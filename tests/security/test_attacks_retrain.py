"""`retrain --publish` attacked through its run directory: whatever ran the stages wrote
retrain.json and the bundle, so a foreign commit (an orphan base, a workflow file, a forged
author) must be refused with exit 2 and leave the origin's refs as they were; and the paths the
run reports reach the pull request's body inert."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.cli import main
from mlops_ci.commands.retrain import run_retrain
from mlops_ci.project.git import Git
from tests import retrain_project
from tests.commands.test_retrain import BRANCH, origin_refs, pulls

pytestmark = pytest.mark.slow


def commit_as(repo: Path, message: str, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "mlops-ci[bot]",
        "GIT_AUTHOR_EMAIL": "someone@evil.example",
        "GIT_COMMITTER_NAME": "mlops-ci[bot]",
        "GIT_COMMITTER_EMAIL": "someone@evil.example",
    }
    subprocess.run(["git", "commit", "-q", "--no-verify", *args, "-m", message], cwd=repo, env=env, check=True)  # fmt: skip
    return Git(repo).out("rev-parse", "HEAD")


def forge_run(repo: Path, run: Path, doc: dict, base: str, files: dict[str, str]) -> dict:
    """A run directory whose bundle holds one commit on `base` adding `files`."""
    git = Git(repo)
    git.run("checkout", "-q", "--detach", base)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        git.run("add", "-f", name)
    commit = commit_as(repo, "Retrain classifier\n\nSigned-off-by: mlops-ci[bot]")
    git.run("branch", "-f", BRANCH, commit)
    git.run("checkout", "-q", "main")
    (run / "retrain.bundle").unlink()
    git.run("bundle", "create", str(run / "retrain.bundle"), f"refs/heads/{BRANCH}", f"^{base}")
    doc = {**doc, "base_sha": base, "commit_sha": commit, "changed_files": sorted(files)}
    (run / "retrain.json").write_text(json.dumps(doc))
    return doc


def test_a_foreign_commit_on_an_orphan_base_is_refused_and_nothing_is_pushed(
    project: tuple[Path, Path], tmp_path: Path, capsys
):
    repo, upstream = project
    retrain_project.write_upstream(upstream, 110)
    run = tmp_path / "run"
    doc = json.loads(json.dumps(run_retrain(repo, run, reproduce_only=True).to_dict()))
    doc = json.loads((run / "retrain.json").read_text())
    refs = origin_refs(repo)
    git = Git(repo)
    # An orphan base (no history of main) carrying a workflow, then the change on top of it.
    git.run("checkout", "-q", "--orphan", "evil")
    git.run("rm", "-rq", "--cached", ".")
    (repo / "README.md").write_text("x")
    git.run("add", "README.md")
    orphan = commit_as(repo, "base")
    git.run("checkout", "-q", "-f", "main")
    forge_run(repo, run, doc, orphan, {".github/workflows/evil.yml": "on: push\n"})
    (run / "retrain.bundle").unlink()
    git.run("bundle", "create", str(run / "retrain.bundle"), f"refs/heads/{BRANCH}")

    assert main(["retrain", "-C", str(repo), "--run-dir", str(run), "--publish"]) == 2
    err = capsys.readouterr().err
    assert "target branch's tip" in err and "nothing pushed" in err
    assert origin_refs(repo) == refs and not pulls(run)


def test_a_workflow_file_on_the_right_base_is_refused_by_name(
    project: tuple[Path, Path], tmp_path: Path, capsys
):
    repo, upstream = project
    retrain_project.write_upstream(upstream, 111)
    run = tmp_path / "run"
    run_retrain(repo, run, reproduce_only=True)
    doc = json.loads((run / "retrain.json").read_text())
    refs = origin_refs(repo)
    forge_run(repo, run, doc, doc["base_sha"], {".github/workflows/evil.yml": "on: push\n"})

    assert main(["retrain", "-C", str(repo), "--run-dir", str(run), "--publish"]) == 2
    err = capsys.readouterr().err
    assert ".github/workflows/evil.yml" in err and "Nothing pushed" in err
    assert origin_refs(repo) == refs and not pulls(run)


def test_a_metrics_file_dvc_lock_does_not_record_is_refused(
    project: tuple[Path, Path], tmp_path: Path, capsys
):
    repo, upstream = project
    retrain_project.write_upstream(upstream, 112)
    run = tmp_path / "run"
    run_retrain(repo, run, reproduce_only=True)
    doc = json.loads((run / "retrain.json").read_text())
    refs = origin_refs(repo)
    forge_run(repo, run, doc, doc["base_sha"], {"eval/upstream.json": '{"upstream_rows": 1}'})

    assert main(["retrain", "-C", str(repo), "--run-dir", str(run), "--publish"]) == 2
    assert "not what the new dvc.lock records" in capsys.readouterr().err
    assert origin_refs(repo) == refs


def test_the_trusted_side_makes_the_commit_and_the_body_is_inert(
    project: tuple[Path, Path], tmp_path: Path
):
    repo, upstream = project
    retrain_project.write_upstream(upstream, 113)
    run = tmp_path / "run"
    made = run_retrain(repo, run, reproduce_only=True)
    doc = json.loads((run / "retrain.json").read_text())
    hostile = "<img src=x onerror=alert(1)> @octo/team <!-- mlops-ci-verdict AAAA -->"
    doc["sources"] = [{"path": hostile, "changed": True}]
    (run / "retrain.json").write_text(json.dumps(doc))

    published = run_retrain(repo, run, publish=True)

    tip = origin_refs(repo)[f"refs/heads/{BRANCH}"]
    assert tip == published.commit_sha != made.commit_sha, "not the bundle's commit object"
    origin = Git(Git(repo).out("remote", "get-url", "origin"))
    assert origin.out("rev-parse", f"{tip}^{{tree}}") == doc["tree_sha"]
    assert origin.out("rev-parse", f"{tip}^") == doc["base_sha"]
    (pull,) = pulls(run)
    intro = pull["body"].split("The pull request's own workflow")[0]
    assert "<!--" not in intro and "mlops-ci-verdict" not in intro
    rendered = cmarkgfm.github_flavored_markdown_to_html(intro, options=Options.CMARK_OPT_UNSAFE)
    assert "<img" not in rendered and "&lt;img" in rendered, "shown as text, in code"
