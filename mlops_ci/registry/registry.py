"""The model registry: GTO's annotated git tags, read through gto's own Python API.

A version is the annotated tag `<artifact>@vX.Y.Z`, a stage assignment `<artifact>#<stage>#N`
(N counts every stage tag of the artifact), so `gto show` and `gto history` read exactly what
mlops-ci writes (`tags` writes and pushes them). Which version holds a stage follows gto's
default rule (the version whose active assignment is newest; nothing for a deprecated
artifact), so mlops-ci and `gto show` never disagree. A commit gets one version, ever: one whose
version was deregistered is refused rather than tagged again, which gto could not read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.project.errors import ConfigError, RegistryError
from mlops_ci.project.git import Git
from mlops_ci.project.gto import read_artifact, shown_versions, stage_holders
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.registry import tags

# gto starts at v0.0.1 whatever the bump; a minor-bumping project starts at v0.1.0 instead.
FIRST_VERSION = {"major": "v1.0.0", "minor": "v0.1.0", "patch": "v0.0.1"}


@dataclass
class Rollback:
    artifact: str
    stage: str
    from_version: str
    to_version: str
    tags: list[str] = field(default_factory=list)
    pushed: bool = False
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("rollback"), **asdict(self)}


def holder(art: Any, stage: str) -> str | None:
    """The version in `stage` by gto's rule (what `gto show` prints)."""
    vstages = stage_holders(art).get(stage)
    return vstages[0].version if vstages else None


def _previous_holder(art: Any, stage: str, current: str) -> str | None:
    """The version assigned to `stage` most recently before `current` and still active there.

    A version unassigned from the stage (an earlier rollback) was withdrawn on purpose, so it
    is never rolled back to; rolling back twice steps further into the past.
    """
    for vstage in stage_holders(art, per_stage=-1).get(stage, []):
        if vstage.version != current:
            return vstage.version
    return None


def version_at(art: Any, sha: str) -> str | None:
    """The version registered at `sha`, or None; a commit whose version was deregistered is
    refused, since gto allows one version per commit, ever (`gto register` refuses too, and a
    second version tag there makes every reading of the registry fail)."""
    registered = [v for v in art.versions if v.commit_hexsha == sha and v.is_registered]
    for v in registered:
        if v.is_active:
            return v.version
    if registered:
        gone = registered[0].version
        raise RegistryError(
            f"commit {sha[:12]} held {art.artifact} {gone}, which was deregistered; gto allows "
            "one version per commit, so it cannot be registered again: make a new commit "
            "(e.g. `git commit --allow-empty`) and promote that, or deploy another version"
        )
    return None


def next_version(art: Any, bump: str) -> str:
    """The bump of the highest version ever registered, deregistered ones included: their
    tags still exist, so reusing a deregistered number would collide with them."""
    from gto.versions import SemVer

    numbers = [
        SemVer(v.version) for v in art.versions if v.is_registered and SemVer.is_valid(v.version)
    ]
    if not numbers:
        return FIRST_VERSION[bump]
    return max(numbers).bump(**{f"bump_{bump}": True}).version


def read_verdict(run_dir: Path, sha: str) -> dict[str, Any] | None:
    """The gate's verdict for `sha`, or None when there is none (or it is for another commit)."""
    verdict = documents.read(run_dir, "verdict.json", kind="verdict", required=False)
    if not verdict:
        return None
    candidate = verdict.get("candidate_sha")
    if candidate and candidate != sha:
        return None
    return verdict


# What promote writes into a version tag's message (`_version_message` of `commands.promote`):
# the durable record of the gate's verdict, read back by a deploy that a tag push started.
VERDICT_LINE = re.compile(r"^gate: (pass|fail|neutral)\b", re.M)
# The verdicts the gate lets through (exit 0): a version with one may be deployed.
PASSING = ("pass", "neutral")


def recorded_verdict(git: Git, artifact: str, version: str) -> str | None:
    """The verdict recorded in the annotated tag `<artifact>@<version>`, or None without one
    (a version registered by hand, or by a promote that ran without a gate)."""
    from gto.constants import name_to_tag

    ref = f"refs/tags/{name_to_tag(artifact)}@{version}"
    proc = git.run("for-each-ref", "--format=%(objecttype) %(contents)", ref, check=False)
    kind, _, message = proc.stdout.partition(" ")
    if proc.returncode != 0 or kind != "tag":
        return None
    found = VERDICT_LINE.search(message)
    return found.group(1) if found else None


def branch_ref(git: Git, branch: str) -> str | None:
    """`branch` as the remote has it (a CI checkout of a tag has no local branch), else local."""
    for ref in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}"):
        if git.rev_parse(ref) is not None:
            return ref
    return None


def on_history(git: Git, sha: str, ref: str) -> bool:
    """Whether the commit `sha` is `ref` or one of its ancestors."""
    return git.run("merge-base", "--is-ancestor", sha, ref, check=False).returncode == 0


@dataclass
class RollbackPlan:
    """What a rollback of `stage` would do, read from the tags without writing any."""

    artifact: str
    stage: str
    current: str | None
    previous: str | None
    commits: dict[str, str]

    def require(self) -> tuple[str, str]:
        """(current, previous), or the `RegistryError` that says why there is nothing to do."""
        if self.current is None:
            raise RegistryError(
                f"no version of {self.artifact} is in stage {self.stage!r}; nothing to roll "
                "back (see `gto show`)"
            )
        if self.previous is None:
            raise RegistryError(
                f"no earlier version of {self.artifact} is still assigned to stage "
                f"{self.stage!r} (only {self.current}); there is nothing to roll back to"
            )
        return self.current, self.previous


def _rollback_plan(repo_dir: Path, artifact: str, stage: str) -> RollbackPlan:
    art = read_artifact(repo_dir, artifact)
    current = holder(art, stage)
    previous = _previous_holder(art, stage, current) if current else None
    commits = {v.version: v.commit_hexsha for v in shown_versions(art)}
    return RollbackPlan(artifact, stage, current, previous, commits)


def rollback_stage(settings: Settings, stage: str | None) -> str:
    """The stage a rollback acts on: `stage`, else `promote.auto`, else the first stage."""
    return stage or settings.promote.auto or settings.promote.stages[0]


def plan_rollback(
    repo_dir: Path,
    *,
    stage: str | None = None,
    push: bool = False,
    remote: str = "origin",
    settings: Settings | None = None,
) -> RollbackPlan:
    """The rollback `rollback` would make now; with `push`, from the remote's tags."""
    settings = settings or load_settings(repo_dir)
    git = Git(repo_dir)
    git.toplevel()
    if push:
        if remote not in git.remotes():
            raise ConfigError(f"cannot push: the repository has no remote named `{remote}`")
        tags.sync_tags(git, remote)
    return _rollback_plan(repo_dir, settings.artifact, rollback_stage(settings, stage))


def rollback(
    repo_dir: Path,
    *,
    stage: str | None = None,
    push: bool = False,
    remote: str = "origin",
    settings: Settings | None = None,
    expect: tuple[str, str] | None = None,
    env: Mapping[str, str],
) -> Rollback:
    """Give `stage` back to the version that held it before the current one.

    Writes two new tags, never deletes one: an unassignment of the current version
    (`name#stage!#N`), which alone already gives the stage back in gto's view, then a fresh
    assignment of the previous version (`name#stage#N+1`). `expect` is the (current, previous)
    the caller already deployed for: a stage that moved meanwhile is an error, not a surprise.
    `env` is the environment git tags in.
    """
    settings = settings or load_settings(repo_dir)
    artifact = settings.artifact
    the_stage = rollback_stage(settings, stage)
    git = Git(repo_dir)
    git.toplevel()

    def decide(writer: tags.TagWriter) -> tuple[str, str]:
        plan = _rollback_plan(repo_dir, artifact, the_stage)
        current, previous = plan.require()
        if expect is not None and (current, previous) != expect:
            raise RegistryError(
                f"stage {the_stage!r} of {artifact} changed while rolling back (now {current}, "
                f"previous {previous}; expected {expect[0]} -> {expect[1]}); run the rollback again"
            )
        message = f"mlops-ci rollback: {the_stage} back to {previous} (was {current})"
        writer.unassign(the_stage, plan.commits[current], message)
        writer.assign(the_stage, plan.commits[previous], message)
        return current, previous

    done = tags.write_tags(
        git,
        artifact,
        decide,
        push=push,
        remote=remote,
        rerun=f"`mlops-ci rollback --stage {the_stage} --push`",
        env=env,
    )
    current, previous = done.value
    return Rollback(artifact, the_stage, current, previous, done.tags, done.pushed, done.attempts)
