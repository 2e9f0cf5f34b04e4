"""`mlops-ci retrain`: refresh the data, reproduce, and carry a change to one pull request.

Two halves, so no process that runs repository code ever holds a write token:

- `--reproduce-only` (no token): `dvc update` the imports, reproduce the pipeline, compare with
  the target branch, gate and render; when tracked files changed (dvc.lock, .dvc files, params,
  git-tracked metrics), commit them signed off by the bot on `<branch_prefix><artifact>` and
  write that one commit as `retrain.bundle` beside `retrain.json`.
- `--publish` (token; runs no stage, no DVC): read `retrain.json` and the bundle as untrusted
  input (`ci/untrusted/retrain.py`: the base is the target branch's tip this job fetched,
  the changed paths are DVC's files and records), make the bot's commit of those files itself,
  push it with `--force-with-lease` against the branch tip it saw, and open or update the one
  labelled pull request, its sticky comment and the commit status.

Without either flag both run in this process (the embedded default and local use); the CI
workflows run them as two jobs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci import documents
from mlops_ci.ci.tokens import WRITE_TOKEN_VARIABLES, without_write_tokens
from mlops_ci.ci.untrusted.retrain import DELETED as DELETED_MODE
from mlops_ci.ci.untrusted.retrain import RetrainChange, check_retrain_change
from mlops_ci.project.errors import ConfigError, GitError, MlopsCiError, ServiceError
from mlops_ci.project.git import Git
from mlops_ci.project.settings import Settings, load_settings

RETRAIN_FILE = "retrain.json"
BUNDLE_FILE = "retrain.bundle"
REMOTE = "origin"
# Who the commits are by: a name no person has, an address GitHub shows as a bot's.
BOT_NAME = "mlops-ci[bot]"
BOT_EMAIL = "mlops-ci[bot]@users.noreply.github.com"
REPORT_WORKFLOW = "retrain"  # the sticky comment's id: one per artifact, updated in place


@dataclass
class RetrainResult:
    changed: bool
    artifact: str
    branch: str
    base_sha: str
    commit_sha: str | None = None
    changed_files: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    pushed: bool = False
    pull_number: int | None = None
    pull_url: str | None = None
    pull_created: bool = False
    lines: list[str] = field(default_factory=list)  # what happened, for the log and the summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "artifact": self.artifact,
            "branch": self.branch,
            "base_sha": self.base_sha,
            "commit_sha": self.commit_sha,
            "changed_files": self.changed_files,
            "sources": self.sources,
            "pushed": self.pushed,
            "pull_request": self.pull_number,
            "pull_request_url": self.pull_url,
            "pull_request_created": self.pull_created,
            "notes": self.lines,
        }

    def summary(self) -> str:
        return "\n".join(self.lines)


# --- the untrusted half: refresh, reproduce, commit --------------------------------------------


def reproduce_retrain(
    repo_dir: Path,
    run_dir: Path,
    *,
    pull: bool = False,
    push: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> RetrainResult:
    """Refresh the sources, reproduce, compare with the target branch; commit what changed.

    Runs repository code (stages, `dvc update`), so the write tokens are removed from this
    process's environment first: the stages DVC starts inherit it.
    """
    from mlops_ci.commands.gate import COMPARISON_FILE, VERDICT_FILE
    from mlops_ci.commands.train import format_stage_table, run_train
    from mlops_ci.project.dvc import open_repo
    from mlops_ci.project.dvc_update import update_sources
    from mlops_ci.report.write import FITTED_NAME, FULL_NAME

    out = sys.stdout if out is None else out
    env = without_write_tokens(os.environ if env is None else env)
    for name in WRITE_TOKEN_VARIABLES:
        os.environ.pop(name, None)
    git = Git(repo_dir)
    git.toplevel()
    settings = load_settings(repo_dir)
    branch = settings.retrain.branch(settings.artifact)
    if git.is_dirty():
        raise ConfigError(
            "the working tree has uncommitted changes to tracked files; retrain starts from a "
            f"clean checkout of {settings.target_branch} (commit or discard them first)"
        )
    base_sha = git.head_sha()
    if base_sha is None:
        raise ConfigError("the repository has no commit to retrain from")
    # An earlier run's documents must not be read as this one's (publish reads them).
    for name in (RETRAIN_FILE, BUNDLE_FILE, COMPARISON_FILE, VERDICT_FILE, FULL_NAME, FITTED_NAME):
        (run_dir / name).unlink(missing_ok=True)
    with open_repo(repo_dir) as repo:
        updated = update_sources(repo, settings.retrain.sources)
    if not updated:
        _say(out, "no `dvc import` or `dvc import-url` output to refresh: reproducing only")
    for source in updated:
        _say(out, f"source {source.path}: {'changed' if source.changed else 'unchanged'}")
    trained = run_train(repo_dir, run_dir, pull=pull, push=push, stage_output=out, env=env)
    out.write(format_stage_table(trained) + "\n")
    changed_files = _changed_files(git)
    result = RetrainResult(
        changed=bool(changed_files),
        artifact=settings.artifact,
        branch=branch,
        base_sha=base_sha,
        changed_files=changed_files,
        sources=[s.to_dict() for s in updated],
    )
    if changed_files:
        _compare_and_report(repo_dir, run_dir, base_sha, settings, env, out)
        started_on = git.current_branch() or base_sha
        result.commit_sha = _commit(git, branch, settings, updated, changed_files)
        # Back where it started (the data files stay refreshed; git's files are the base's), so
        # a rerun in this clone starts from the target branch again, as a fresh CI clone does.
        git.run("checkout", "--quiet", started_on)
        git.run(
            "bundle", "create", str(run_dir / BUNDLE_FILE), f"refs/heads/{branch}", f"^{base_sha}"
        )
        result.lines.append(
            f"changed: {', '.join(changed_files)}; committed {result.commit_sha[:12]} on {branch}"
        )
    else:
        result.lines.append(
            f"no change: the refreshed data and the pipeline's outputs equal {settings.target_branch}'s "
            f"({base_sha[:12]}); no commit, no push, no pull request"
        )
    documents.write(run_dir, RETRAIN_FILE, _document(result, settings, trained, git))
    _write_summary(env, run_dir, out, settings, result, format_stage_table(trained))
    return result


def _write_summary(
    env: Mapping[str, str],
    run_dir: Path,
    out: TextIO,
    settings: Settings,
    result: RetrainResult,
    stages: str,
) -> None:
    """The job summary of the reproduce half (no token needed: a file, not the forge's API)."""
    from mlops_ci.forge import detect_forge

    forge = detect_forge(env, run_dir, out=out)
    forge.write_summary(
        f"### mlops-ci retrain: {settings.artifact}\n\n"
        + "\n".join(f"- {line}" for line in result.lines)
        + f"\n\n```\n{stages}\n```\n"
    )


def _say(out: TextIO, line: str) -> None:
    out.write(f"mlops-ci retrain: {line}\n")
    out.flush()


def _changed_files(git: Git) -> list[str]:
    """Tracked files that differ from HEAD, and new .dvc files / dvc.lock (a first import)."""
    tracked = git.out("diff", "--name-only", "-z", "HEAD").split("\0")
    new = git.out("ls-files", "-z", "--others", "--exclude-standard").split("\0")
    new = [p for p in new if p.endswith(".dvc") or p.rsplit("/", 1)[-1] == "dvc.lock"]
    return sorted({p for p in [*tracked, *new] if p})


def _compare_and_report(
    repo_dir: Path,
    run_dir: Path,
    base_sha: str,
    settings: Settings,
    env: Mapping[str, str],
    out: TextIO,
) -> None:
    """The full report of the change against the target branch's tip (what the PR will show)."""
    import contextlib

    from mlops_ci.commands.compare import write_comparison
    from mlops_ci.commands.gate import judge
    from mlops_ci.commands.report import run_report

    compared = write_comparison(
        repo_dir, run_dir, baseline=base_sha, target_branch=settings.target_branch, env=env
    )
    try:
        judge(repo_dir, run_dir, compared.document, compared.policy)
    except MlopsCiError as exc:
        with contextlib.suppress(MlopsCiError):
            run_report(repo_dir, run_dir, post=False, env=env, out=out, gate_error=str(exc))
        return
    run_report(repo_dir, run_dir, post=False, env=env, out=out, workflow=REPORT_WORKFLOW)


def _commit(
    git: Git,
    branch: str,
    settings: Settings,
    updated: Sequence[Any],
    files: Sequence[str],
) -> str:
    """One signed-off commit by the bot on `branch`, on top of HEAD."""
    git.run("checkout", "--quiet", "-B", branch)
    git.run("add", "--", *files)
    refreshed = [s.path for s in updated if s.changed]
    body = "Refreshed: " + (", ".join(refreshed) if refreshed else "nothing (the pipeline changed)")
    message = f"{settings.retrain.pull_title(settings.artifact)}\n\n{body}\n"
    # The bot is author and committer whatever the runner's git identity (GIT_AUTHOR_* and
    # GIT_COMMITTER_* in the environment win over config); --signoff adds its Signed-off-by.
    identity = {
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
    }
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "--signoff",
         "-m", message],
        cwd=git.repo_dir, env={**os.environ, **identity, "GIT_EDITOR": "true"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise GitError(f"`git commit` on {branch} failed: {(proc.stderr or proc.stdout).strip()}")
    return git.out("rev-parse", "HEAD")


def _document(result: RetrainResult, settings: Settings, trained: Any, git: Git) -> dict[str, Any]:
    tree = git.out("rev-parse", f"{result.commit_sha}^{{tree}}") if result.commit_sha else None
    return documents.header("retrain") | {
        "created_at": documents.now(),
        "changed": result.changed,
        "artifact": settings.artifact,
        "target_branch": settings.target_branch,
        "base_sha": result.base_sha,
        "commit_sha": result.commit_sha,
        "tree_sha": tree,
        "bundle": BUNDLE_FILE if result.commit_sha else None,
        "changed_files": result.changed_files,
        "sources": result.sources,
        "stages": [
            {"name": s.name, "status": s.status, "duration_s": round(s.duration_s, 3)}
            for s in trained.stages
        ],
    }


# --- the trusted half: push, pull request, comment, status --------------------------------------


def publish_retrain(
    repo_dir: Path,
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    remote: str = REMOTE,
) -> RetrainResult:
    """Push the commit of a reproduce run and open or update its pull request.

    Runs no repository code: git (fetch from the bundle, push) and the forge's API only. The
    branch, title, labels and the comment's name come from this checkout's `mlops-ci.yaml`.
    """
    from mlops_ci.ci.untrusted import KIB, read_document
    from mlops_ci.ci.untrusted.text import inert_line
    from mlops_ci.forge import detect_forge

    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    git = Git(repo_dir)
    git.toplevel()
    settings = load_settings(repo_dir)
    branch = settings.retrain.branch(settings.artifact)
    doc = read_document(run_dir / RETRAIN_FILE, "retrain", 256 * KIB)
    result = RetrainResult(
        changed=doc["changed"],
        artifact=settings.artifact,
        branch=branch,
        base_sha=doc["base_sha"],
        commit_sha=doc.get("commit_sha"),
        changed_files=[inert_line(p, 300) for p in doc.get("changed_files") or []],
        sources=[s | {"path": inert_line(s["path"], 300)} for s in doc.get("sources") or []],
    )
    forge = detect_forge(env, run_dir, out=out)
    if not result.changed:
        result.lines.append(
            f"no change: the refreshed data and the pipeline's outputs equal "
            f"{settings.target_branch}'s ({result.base_sha[:12]}); no commit, no push, no pull "
            "request"
        )
        forge.write_summary(f"### mlops-ci retrain: {settings.artifact}\n\n{result.lines[-1]}\n")
        return result
    has_remote = remote in git.remotes()
    base = _target_tip(git, remote, settings.target_branch, has_remote)
    change = check_retrain_change(git, run_dir, doc, base_sha=base, branch=branch)
    commit = _commit_change(git, change, settings)
    result.base_sha, result.commit_sha, result.changed_files = base, commit, change.paths
    if has_remote:
        _push(git, remote, branch, commit, result)
    else:
        git.run("update-ref", f"refs/heads/{branch}", commit)
        result.lines.append(f"no git remote {remote!r}: {branch} is kept in this clone only")
    _open_pull_request(repo_dir, run_dir, forge, settings, branch, commit, result)
    forge.write_summary(
        f"### mlops-ci retrain: {settings.artifact}\n\n"
        + "\n".join(f"- {line}" for line in result.lines)
        + "\n"
    )
    return result


def _target_tip(git: Git, remote: str, target: str, has_remote: bool) -> str:
    """The target branch's tip as this (trusted) job fetches it: the only base it commits on."""
    ref = f"refs/heads/{target}"
    if has_remote:
        proc = git.run("fetch", "--quiet", "--no-tags", remote, f"+{ref}:refs/mlops-ci/target", check=False)  # fmt: skip
        if proc.returncode != 0:
            raise ServiceError(f"cannot fetch {target} from {remote}: {proc.stderr.strip()}")
        ref = "refs/mlops-ci/target"
    tip = git.rev_parse(ref)
    if tip is None:
        raise ConfigError(f"no branch {target} to retrain on (retrain.target_branch)")
    return tip


def _commit_change(git: Git, change: RetrainChange, settings: Settings) -> str:
    """The bot's commit of the checked files on the checked base: tree, author, committer and
    message are made here, from this checkout's settings; nothing of the bundle's commit."""
    import tempfile

    lines = [
        f"{DELETED_MODE} {'0' * 40}\t{f.path}" if f.blob is None else f"{f.mode} {f.blob}\t{f.path}"
        for f in change.files
    ]
    message = (
        f"{settings.retrain.pull_title(settings.artifact)}\n\nChanged: {', '.join(change.paths)}\n"
        f"\nSigned-off-by: {BOT_NAME} <{BOT_EMAIL}>\n"
    )
    identity = {
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
    }
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **identity, "GIT_INDEX_FILE": str(Path(tmp) / "index")}

        def git_in(*args: str, stdin: str | None = None) -> str:
            proc = subprocess.run(
                ["git", *args], cwd=git.repo_dir, env=env, input=stdin,
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise GitError(f"`git {args[0]}` failed: {(proc.stderr or proc.stdout).strip()}")
            return proc.stdout.strip()

        git_in("read-tree", change.base_sha)
        # NUL-terminated: a path with a line break cannot add an index entry of its own.
        git_in("update-index", "-z", "--index-info", stdin="\0".join(lines) + "\0")
        tree = git_in("write-tree")
        return git_in("commit-tree", tree, "-p", change.base_sha, "-F", "-", stdin=message)


def _remote_tip(git: Git, remote: str, branch: str) -> str | None:
    line = git.out("ls-remote", remote, f"refs/heads/{branch}")
    return line.split()[0] if line else None


def _same_content(git: Git, remote: str, branch: str, tip: str, commit: str) -> bool:
    """Whether the branch's tip already holds exactly our commit's files (and base)."""
    if git.rev_parse(tip) is None:
        # By name, not by SHA: not every server lets a client fetch a commit by its id.
        git.run("fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:refs/mlops-ci/seen", check=False)  # fmt: skip
    if git.rev_parse(tip) is None:
        return False
    tree = git.out("rev-parse", f"{tip}^{{tree}}")
    return tree == git.out("rev-parse", f"{commit}^{{tree}}")


def _push(git: Git, remote: str, branch: str, commit: str, result: RetrainResult) -> None:
    """Push with a lease on the tip seen; on a lost race, stop if the winner pushed the same
    files, else redo once on the new tip."""
    seen = _remote_tip(git, remote, branch)
    for attempt in (1, 2):
        if seen is not None and _same_content(git, remote, branch, seen, commit):
            who = "another retrain run" if attempt == 2 else "an earlier run"
            result.lines.append(
                f"{branch} already holds this change ({seen[:12]}, pushed by {who}); nothing pushed"
            )
            return
        lease = f"--force-with-lease=refs/heads/{branch}:{seen or ''}"
        proc = git.run("push", "--quiet", "--porcelain", lease, remote, f"{commit}:refs/heads/{branch}", check=False)  # fmt: skip
        if proc.returncode == 0:
            result.pushed = True
            result.lines.append(
                f"pushed {commit[:12]} to {branch}"
                + (f" (was {seen[:12]})" if seen else " (new branch)")
            )
            return
        now = _remote_tip(git, remote, branch)
        if now == seen:  # not a lost race: the remote refused for another reason
            raise ServiceError(
                f"git push of {branch} to {remote} failed: {(proc.stderr or proc.stdout).strip()}"
            )
        result.lines.append(
            f"{branch} moved to {now[:12] if now else 'nothing'} while this run pushed "
            "(another retrain run won the race)"
        )
        seen = now
    raise ServiceError(
        f"{branch} kept moving on {remote}; not pushed twice over another run's push: rerun later"
    )


def _open_pull_request(
    repo_dir: Path,
    run_dir: Path,
    forge: Any,
    settings: Settings,
    branch: str,
    commit: str,
    result: RetrainResult,
) -> None:
    from mlops_ci.ci.untrusted import load_untrusted_run_dir
    from mlops_ci.commands.gate import post_verdict
    from mlops_ci.commands.publish import judge_with_trusted_policy
    from mlops_ci.report import build_report
    from mlops_ci.report.render import report_marker_id

    run = load_untrusted_run_dir(run_dir)
    verdict = judge_with_trusted_policy(repo_dir, run.comparison)
    verdict.advisory = False  # the repository's own scheduled run, judged by its own policy
    report = build_report(
        {**run.comparison, "artifact": settings.artifact},
        verdict.to_dict(),
        limit=getattr(forge, "comment_limit", None),
        full_report_hint="report.md in the retrain run's artifact",
        marker_id=report_marker_id(settings.artifact, REPORT_WORKFLOW),
    )
    from mlops_ci.report.markdown import code_span, md_text

    refreshed = [s["path"] for s in result.sources if s.get("changed")]
    intro = "\n".join(
        [
            f"Retrained **{md_text(settings.artifact, 80)}** by `mlops-ci retrain` on "
            f"{md_text(settings.target_branch, 120)} "
            f"({result.base_sha[:12]}).",
            "",
            f"- refreshed: {', '.join(code_span(p, 300) for p in refreshed) or 'no source (the outputs changed)'}",
            f"- changed: {', '.join(code_span(p, 300) for p in result.changed_files)}",
            f"- commit: {commit[:12]} (signed off by {BOT_NAME})",
            "",
            "The pull request's own workflow gates it; the report of this run follows.",
            "",
        ]
    )
    pull = forge.upsert_pull_request(
        head=branch,
        base=settings.target_branch,
        title=settings.retrain.pull_title(settings.artifact),
        body=intro + "\n" + report.markdown,
        labels=settings.retrain.labels,
    )
    result.pull_number, result.pull_url, result.pull_created = pull.number, pull.url, pull.created
    result.lines.append(
        f"pull request #{pull.number} {'opened' if pull.created else 'updated'}"
        + (f": {pull.url}" if pull.url else "")
        + (f" (labels: {', '.join(pull.labels)})" if pull.labels else "")
    )
    forge.use_pull_request(pull.number)
    posted = forge.upsert_comment(report.markdown, report.marker_id)
    result.lines.append(f"comment {'posted' if posted.created else 'updated'}")
    post_verdict(forge, verdict, commit)
    result.lines.append(f"status {verdict.verdict} on {commit[:12]}")


def run_retrain(
    repo_dir: Path,
    run_dir: Path,
    *,
    reproduce_only: bool = False,
    publish: bool = False,
    pull: bool = False,
    push: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> RetrainResult:
    """Both halves, or one of them (the CI workflows run them as two jobs)."""
    if reproduce_only and publish:
        raise ConfigError("--reproduce-only and --publish are the two halves: pass one of them")
    env = dict(os.environ if env is None else env)  # the publish half's tokens, kept here
    if publish:
        return publish_retrain(repo_dir, run_dir, env=env, out=out)
    reproduced = reproduce_retrain(repo_dir, run_dir, pull=pull, push=push, env=env, out=out)
    if reproduce_only:
        return reproduced
    return publish_retrain(repo_dir, run_dir, env=env, out=out)
