"""`mlops-ci demo`: the whole flow on a scratch repository, with the local forge and no network.

main gets the reference pipeline, trained and pushed to a local DVC remote; a branch changes a
param and runs what a pull request's workflow runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from mlops_ci.commands.sweep import Candidate
from mlops_ci.commands.train import apply_overrides, format_stage_table, run_train
from mlops_ci.init.scaffold import init_repo, set_dvc_remote
from mlops_ci.project.errors import EXIT_OK, ConfigError
from mlops_ci.project.git import Git

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
    """Change one key of params.yaml (what a pull request that tunes the model does), as
    `mlops-ci train --set` does it: comments and layout survive."""
    apply_overrides(repo, [Candidate("set", {dotted: value}).overrides()[0]])


# The CLI's `main`, handed down by the CLI itself: the demo runs the public commands as a user
# types them, and importing the CLI from here would make the two modules import each other.
CliMain = Callable[[Sequence[str]], int]


def _run(out: TextIO, main: CliMain, *argv: str) -> int:
    """One public command, as a user would type it (its output goes to the terminal)."""
    out.write(f"$ mlops-ci {' '.join(argv)}\n")
    out.flush()
    code = main(list(argv))
    out.write(f"(exit code {code})\n")
    return code


def _pull_request(
    out: TextIO, main: CliMain, git: Git, repo: Path, branch: str, changes: dict[str, object]
) -> int:
    git.run("checkout", "--quiet", "-b", branch, "main")
    for key, value in changes.items():
        set_param(repo, key, value)
    git.commit_all(f"{branch}: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    _say(out, f"pull request {branch!r}: mlops-ci pr (train, compare, report, gate; local forge)")
    code = _run(out, main, "pr", "-C", str(repo))
    git.commit_all("Retrain")  # what the branch's next push would carry: dvc.lock and metrics
    return code


DEMO_SWEEP = "sweep:\n  grid:\n    train.logistic_regression.C: [0.01, 0.1, 1.0]\n"


def _local_sweep(out: TextIO, main: CliMain, git: Git, repo: Path, base: Path) -> int:
    """A sweep with parallel processes standing in for the CI's matrix runners: each candidate
    trains in its own clone, restoring what it can from the shared DVC remote."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from mlops_ci.commands.sweep import plan
    from mlops_ci.project.settings import load_settings

    git.run("checkout", "--quiet", "-b", "sweep/regularisation", "main")
    with (repo / "mlops-ci.yaml").open("a") as fh:
        fh.write(DEMO_SWEEP)
    git.commit_all("Sweep the regularisation")
    candidates = plan(load_settings(repo))
    _say(
        out, f"sweep: {len(candidates)} candidates, one clone and one process each (two at a time)"
    )
    env = {**os.environ, "MLOPS_CI_REMOTE_URL": str(base / "dvc-remote")}
    exe = str(Path(sys.executable).parent / "mlops-ci")

    def runner(candidate_id: str) -> Path:
        clone = base / "runners" / candidate_id
        Git(base).run("clone", "--quiet", "--branch", "sweep/regularisation", str(repo), str(clone))
        with (base / "runners" / f"{candidate_id}.log").open("w") as log:
            cmd = [exe, "sweep", "run", "--candidate", candidate_id, "--pull", "-C", str(clone)]
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
        out.write(f"  {candidate_id} done (log: {base / 'runners' / candidate_id}.log)\n")
        return clone / ".mlops-ci"

    with ThreadPoolExecutor(max_workers=2) as pool:
        run_dirs = list(pool.map(runner, [c.id for c in candidates]))
    sources = [arg for d in run_dirs for arg in ("--from", str(d))]
    return _run(out, main, "sweep", "collect", "-C", str(repo), "--post", *sources)


def claim_workdir(workdir: Path | None) -> Path:
    """A directory the demo may fill: new, or empty. Anything already in it is the user's (a
    repository, a gitignored secret, an earlier demo), so the demo refuses it untouched."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="mlops-ci-demo-"))
    base = Path(workdir).absolute()
    if base.exists() and not base.is_dir():
        raise ConfigError(f"--workdir {base} is not a directory; pass a new or empty directory")
    if base.is_dir():
        held = sorted(p.name for p in base.iterdir())
        if held:
            earlier = (base / "repo" / ".dvc").is_dir() or (base / "dvc-remote").is_dir()
            why = (
                "it holds an earlier demo; remove it (`rm -r` it) or "
                if earlier
                else "the demo writes a repository, a DVC remote and deployments there and "
                "never touches existing files: "
            )
            raise ConfigError(
                f"--workdir {base} is not empty ({', '.join(held[:5])}"
                f"{', ...' if len(held) > 5 else ''}); {why}pass a new or empty directory, or "
                "leave --workdir out for a temporary one"
            )
    base.mkdir(parents=True, exist_ok=True)
    return base


def run_demo(workdir: Path | None, out: TextIO, main: CliMain) -> int:
    """Run the demo in `workdir` (a new temporary directory by default); returns an exit code.

    Everything the demo writes is inside that directory; if it stops half-way, what it made
    stays there (and is said), and nothing outside was changed. `main` is the CLI's entry point,
    which runs each public command.
    """
    base = claim_workdir(workdir)
    try:
        return _demo(base, out, main)
    except BaseException:
        out.write(f"\nThe demo stopped; what it made so far is in {base}; nothing else changed.\n")
        raise


def _demo(base: Path, out: TextIO, main: CliMain) -> int:
    repo = base / "repo"
    run_dir = repo / ".mlops-ci"
    for key, value in DEMO_IDENTITY.items():
        os.environ.setdefault(key, value)
    os.environ.pop("GITHUB_ACTIONS", None)  # the demo always uses the local forge
    os.environ.pop("GITLAB_CI", None)

    _say(out, f"main: the reference pipeline in a new repository at {repo}")
    git = init_repo(repo)
    set_dvc_remote(repo, "../../dvc-remote")
    git.commit_all("Use a local DVC remote")

    _say(out, "main: mlops-ci train --push (fills the remote's run-cache)")
    result = run_train(repo, run_dir, push=True, stage_output=out)
    out.write(format_stage_table(result) + "\n")
    main_sha = git.commit_all("Train the reference model")
    _run(out, main, "promote", "-C", str(repo))

    passing = _pull_request(
        out, main, git, repo, "tune/regularisation", {"train.logistic_regression.C": 0.5}
    )
    failing = _pull_request(
        out,
        main,
        git,
        repo,
        "tune/too-much-regularisation",
        {"train.logistic_regression.C": 0.0005},
    )

    _say(out, "merge 'tune/regularisation' into main; the main job promotes and deploys it")
    git.run("checkout", "--quiet", "main")
    git.run("merge", "--quiet", "--no-ff", "-m", "Merge tune/regularisation", "tune/regularisation")
    _run(out, main, "train", "-C", str(repo), "--pull")
    _run(out, main, "compare", "-C", str(repo), "--baseline", "stage:staging")
    gate = _run(out, main, "gate", "-C", str(repo))
    if gate == 0:
        _run(out, main, "promote", "-C", str(repo))
        _run(out, main, "deploy", "-C", str(repo))

    swept = _local_sweep(out, main, git, repo, base)

    from mlops_ci.project.gto import show

    _say(out, "registry (the same state `gto show` reads from the tags)")
    state = show(repo, "classifier")
    for version in state["versions"]:
        stages = ", ".join(version["stages"]) or "-"
        out.write(
            f"  {state['artifact']}@{version['version']}  {version['commit'][:12]}  stages: {stages}\n"
        )

    _say(out, "results")
    out.write(
        f"repository:        {repo}\n"
        f"first main commit: {main_sha[:12]}\n"
        f"run directory:     {run_dir} (comparison.json, report.md, verdict.json, "
        "comment.md, statuses.json, deployments.json)\n"
        f"DVC remote:        {base / 'dvc-remote'}\n"
        f"deployments:       {repo / 'deployments'}\n"
        f"pull requests:     tune/regularisation exit {passing}, "
        f"tune/too-much-regularisation exit {failing} (1 = blocked by the gate)\n"
        f"sweep:             exit {swept}; leaderboard in {run_dir / 'report.md'}\n"
        f"registry:          git -C {repo} tag -n1   (or: gto show -r {repo})\n"
    )
    return EXIT_OK
