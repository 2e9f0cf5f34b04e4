"""Resolve the baseline revision, in the clones CI really has.

`actions/checkout` gives a depth-1 clone without the target branch. Instead of asking users for
`fetch-depth: 0`, fetch the target branch and deepen both sides a bounded number of times until
git can see the merge-base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from mlops_ci.project.errors import BaselineNotFound, ConfigError
from mlops_ci.project.git import Git

REMOTE = "origin"
# Deepen by these steps (commits) while the merge-base is likely near; past them one full fetch
# of both sides is cheaper than more rounds, and reaches any depth.
DEEPEN_STEPS = (50, 200, 1000)


@dataclass(frozen=True)
class Baseline:
    how: str  # merge-base | base | previous | ref | stage:NAME | none
    ref: str | None
    sha: str | None
    subject: str | None = None
    note: str | None = None
    ref_sha: str | None = None  # the tip of `ref` when it is a branch (the merge-base is older)

    def to_dict(self) -> dict[str, Any]:
        return {"how": self.how, "ref": self.ref, "sha": self.sha, "subject": self.subject,
                "note": self.note, "ref_sha": self.ref_sha}  # fmt: skip


def _has_remote(git: Git) -> bool:
    return REMOTE in git.remote_names


def target_ref(git: Git, branch: str) -> str | None:
    """A local name for the tip of the target branch, fetching it when the clone lacks it."""
    return pick_target_ref(git, branch)[0]


DIVERGED = (
    "the local {branch} and {remote}/{branch} have diverged; compared with {remote}/{branch}. "
    "Push or pull {branch}, or pass --baseline {branch} to compare with the local one"
)


def pick_target_ref(git: Git, branch: str) -> tuple[str | None, str | None]:
    """The ref of the target branch to compare with, and a warning when the choice is a guess.

    A local branch ahead of its remote (adopted and trained, not pushed yet) is the newer
    target; a stale local branch is behind the remote one. When both moved, the remote one is
    what the pull request will merge into, so it wins, with a warning.
    """
    remote_ref, local_ref = f"refs/remotes/{REMOTE}/{branch}", f"refs/heads/{branch}"
    if _has_remote(git):
        shallow = git.is_shallow()
        if shallow or not git.rev_parse(remote_ref):
            # Fetching with --depth would make a full clone shallow: only in shallow ones.
            depth = DEEPEN_STEPS[0] if shallow else None
            git.fetch(REMOTE, f"+refs/heads/{branch}:{remote_ref}", depth=depth)
    remote_sha, local_sha = git.rev_parse(remote_ref), git.rev_parse(local_ref)
    if not remote_sha or not _has_remote(git):
        return (local_ref if local_sha else None), None
    if not local_sha or local_sha == remote_sha or _is_ancestor(git, local_sha, remote_sha):
        return remote_ref, None
    if _is_ancestor(git, remote_sha, local_sha):
        return local_ref, None
    return remote_ref, DIVERGED.format(branch=branch, remote=REMOTE)


def _is_ancestor(git: Git, older: str, newer: str) -> bool:
    return git.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0


def short_ref(ref: str) -> str:
    """`origin/main` or `main`: the name git itself prints for a ref."""
    return ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")


UNSHALLOWED = "fetched the whole history: the merge-base is more than {n} commits back"


def find_merge_base(git: Git, head: str, other: str, branch: str) -> tuple[str | None, str | None]:
    """merge-base of `head` and `other` and a note on how it was found: a shallow clone is
    deepened step by step, then fetched whole (one fetch, any depth) and the note says so."""
    found = git.merge_base(head, other)
    if found or not git.is_shallow() or not _has_remote(git):
        return found, None
    refspecs = [f"+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}"]
    for step in DEEPEN_STEPS:
        git.deepen(REMOTE, step, *refspecs)
        if _is_sha(head):
            git.deepen(REMOTE, step, head)
        found = git.merge_base(head, other)
        if found or not git.is_shallow():
            return found, None
    git.unshallow(REMOTE, *refspecs, *([head] if _is_sha(head) else []))
    return git.merge_base(head, other), UNSHALLOWED.format(n=sum(DEEPEN_STEPS))


def _is_sha(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{40}", text))


def _ensure_commit(git: Git, sha: str) -> bool:
    if git.rev_parse(sha):
        return True
    if _has_remote(git):
        git.fetch(REMOTE, sha, depth=1)
    return git.rev_parse(sha) is not None


def stage_commit(git: Git, artifact: str, stage: str) -> tuple[str | None, str | None]:
    """(commit in `stage`, None) by the registry's (gto's) own rule, or (None, why not)."""
    from mlops_ci.project import gto

    if _has_remote(git):
        git.run("fetch", "--quiet", "--tags", REMOTE, check=False)
    return gto.stage_commit(git.repo_dir, artifact, stage)


def resolve_baseline(
    git: Git,
    spec: str,
    *,
    target_branch: str,
    artifact: str,
    event_base_sha: str | None = None,
    event_before_sha: str | None = None,
    branch: str | None = None,
    stages: tuple[str, ...] = (),
) -> Baseline:
    """The baseline for `spec`: merge-base | base | stage:NAME | a git ref.

    `branch` is the candidate's branch (None when detached and the CI event does not say):
    only on the target branch itself does a merge-base equal to HEAD mean "compare with the
    previous commit"; a new branch still at the target's tip compares with that tip.
    `stages` are the registry stages the settings declare: a stage outside them that holds
    no version is a typo, not a first deployment.

    Returns a Baseline with `sha=None` (and a note) when there is legitimately nothing to
    compare against, e.g. the first commit; raises BaselineNotFound when it should exist.
    """
    head = git.head_sha()
    if head is None:
        raise ConfigError("the repository has no commits yet; commit the pipeline first")
    if not spec.strip():
        raise ConfigError("the baseline is empty; use merge-base, base, stage:NAME or a git ref")
    if spec.startswith("stage:"):
        stage = spec.split(":", 1)[1]
        sha, why_none = stage_commit(git, artifact, stage)
        if why_none:
            return Baseline(f"stage:{stage}", stage, None, note=why_none)
        if sha is None and stage not in stages:
            known = ", ".join(stages) or "none"
            raise BaselineNotFound(
                f"no version of {artifact} has ever been in stage {stage!r}, and it is not one "
                f"of the stages mlops-ci.yaml declares (promote.stages: {known}); check the name"
            )
        if sha is None:
            return Baseline(f"stage:{stage}", stage, None,
                            note=f"no version of {artifact} is in stage {stage!r} yet")  # fmt: skip
        return _with_subject(git, Baseline(f"stage:{stage}", stage, sha))
    if spec not in ("merge-base", "base"):
        sha = git.rev_parse(spec) or (_ensure_commit(git, spec) and git.rev_parse(spec))
        if not sha and _has_remote(git):
            git.fetch(REMOTE, spec, depth=DEEPEN_STEPS[0])
            sha = git.rev_parse("FETCH_HEAD")
        if not sha:
            raise BaselineNotFound(f"baseline {spec!r} does not name a commit here or on {REMOTE}")
        return _with_subject(git, Baseline("ref", spec, sha))

    # A pull request: the event names the base; otherwise the target branch.
    warning = None
    if event_base_sha and _ensure_commit(git, event_base_sha):
        other, other_name = event_base_sha, target_branch
    else:
        ref, warning = pick_target_ref(git, target_branch)
        if ref is None:
            raise BaselineNotFound(
                f"the target branch {target_branch!r} is neither local nor on {REMOTE}; set "
                f"`target_branch:` in mlops-ci.yaml or pass --target-branch"
            )
        other, other_name = ref, short_ref(ref)
    if spec == "base":
        tip = git.rev_parse(other)
        return _with_subject(git, Baseline("base", other_name, tip, note=warning, ref_sha=tip))

    merge_base, how = find_merge_base(git, head, other, target_branch)
    if merge_base is None:
        raise BaselineNotFound(
            f"HEAD and {other_name!r} share no history (their whole histories were searched), "
            "so there is no merge-base. Use --baseline base (the tip of the target branch) or a ref"
        )
    if merge_base != head or not _on_target(git, head, other, branch, target_branch):
        note = "; ".join(n for n in (warning, how) if n) or None
        tip = git.rev_parse(other)
        return _with_subject(
            git, Baseline("merge-base", other_name, merge_base, note=note, ref_sha=tip)
        )
    # HEAD is on the target branch (a push to main): compare with what it was before.
    previous = (
        event_before_sha if event_before_sha and _ensure_commit(git, event_before_sha) else None
    )
    if previous is None:
        if git.is_shallow() and _has_remote(git):
            git.deepen(REMOTE, 1, head)
        previous = git.rev_parse(f"{head}^")
    if previous is None:
        return Baseline(
            "previous", f"{target_branch}^", None, note="the first commit has no baseline"
        )
    return _with_subject(git, Baseline("previous", f"{target_branch}^", previous))


def _on_target(git: Git, head: str, other: str, branch: str | None, target: str) -> bool:
    """Is the candidate the target branch itself (a push to it), not a branch cut from it?"""
    if branch:
        return branch == target
    return git.rev_parse(other) == head  # detached, no event: only at the target's very tip


def _with_subject(git: Git, baseline: Baseline) -> Baseline:
    if not baseline.sha:
        return baseline
    info = git.commit_info(baseline.sha)
    return replace(baseline, subject=info.subject)
