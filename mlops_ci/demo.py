"""`mlops-ci demo`: the whole flow on a scratch repository, with the local forge and no network.

main gets the reference pipeline, trained and pushed to a local DVC remote; a branch changes a
param and runs what a pull request's workflow runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TextIO

import yaml

from mlops_ci.errors import EXIT_OK
from mlops_ci.git import Git
from mlops_ci.scaffold import init_repo, set_dvc_remote
from mlops_ci.train import format_stage_table, run_train

DEMO_IDENTITY = {
    "GIT_AUTHOR_NAME": "mlops-ci demo",
    "GIT_AUTHOR_EMAIL": "demo@mlops-ci.invalid",
    "GIT_COMMITTER_NAME": "mlops-ci demo",
    "GIT_COMMITTER_EMAIL": "demo@mlops-ci.invalid",
}


def _say(out: TextIO, text: str) -> None:
    out.write(f"\n== {text}\n")
    out.flush()


def set_param(repo: Path, dotted: str, value: object) -> None:
    """Change one key of params.yaml (what a pull request that tunes the model does)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    node = params
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commit_all(git: Git, message: str) -> str:
    git.run("add", "--all")
    git.run("commit", "--quiet", "--allow-empty", "-m", message)
    return git.out("rev-parse", "HEAD")


def run_demo(workdir: Path | None, out: TextIO) -> int:
    """Run the demo in `workdir` (a new temporary directory by default); returns an exit code."""
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlops-ci-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    repo = base / "repo"
    remote = base / "dvc-remote"
    run_dir = repo / ".mlops-ci"
    for key, value in DEMO_IDENTITY.items():
        os.environ.setdefault(key, value)

    _say(out, f"main: the reference pipeline in a new repository at {repo}")
    git = init_repo(repo)
    set_dvc_remote(repo, "../../dvc-remote")
    commit_all(git, "Use a local DVC remote")

    _say(out, "main: mlops-ci train --push (fills the remote's run-cache)")
    result = run_train(repo, run_dir, push=True, stage_output=out)
    out.write(format_stage_table(result) + "\n")
    main_sha = commit_all(git, "Train the reference model")

    _say(
        out,
        "pull request: branch 'tune/stronger-regularisation' sets train.logistic_regression.C = 0.05",
    )
    git.run("checkout", "--quiet", "-b", "tune/stronger-regularisation")
    set_param(repo, "train.logistic_regression.C", 0.05)
    commit_all(git, "Stronger regularisation")

    _say(out, "pull request: mlops-ci train (prepare is unchanged, train and evaluate run)")
    result = run_train(repo, run_dir, stage_output=out)
    out.write(format_stage_table(result) + "\n")

    _say(out, "results")
    out.write(
        f"repository:     {repo}\n"
        f"main commit:    {main_sha[:12]}\n"
        f"run directory:  {run_dir}\n"
        f"DVC remote:     {remote}\n"
    )
    return EXIT_OK
