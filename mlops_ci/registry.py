"""The model registry: GTO's annotated git tags, written through gto's own Python API.

A version is the annotated tag `<artifact>@vX.Y.Z`, a stage assignment `<artifact>#<stage>#N`
(N counts every stage tag of the artifact), so `gto show` and `gto history` read exactly what
mlops-ci writes. Which version holds a stage follows gto's default rule (the highest version
whose assignment is active), so mlops-ci and `gto show` never disagree.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci import documents
from mlops_ci.errors import (
    ConfigError,
    PromotionRefused,
    RegistryError,
    ServiceError,
)
from mlops_ci.git import Git

if TYPE_CHECKING:
    from gto.registry import GitRegistry

# A push that loses a race re-fetches the tags and recomputes; this bounds the rounds.
MAX_PUSH_ATTEMPTS = 6
# Used only when git has no identity (a bare CI runner): tags need a tagger.
FALLBACK_TAGGER = ("mlops-ci", "mlops-ci@localhost")


@dataclass(frozen=True)
class PromoteConfig:
    artifact: str
    stages: list[str]
    auto: str | None
    bump: str = "minor"


def load_promote_config(repo_dir: Path) -> PromoteConfig:
    """`artifact` and `promote:` of `mlops-ci.yaml` (checked by `settings`)."""
    from mlops_ci.settings import load_settings

    settings = load_settings(repo_dir)
    promote = settings.promote
    return PromoteConfig(settings.artifact, list(promote.stages), promote.auto, promote.bump)


@dataclass
class Promotion:
    artifact: str
    sha: str
    version: str
    stage: str | None
    registered: bool  # this run created the version tag
    assigned: bool  # this run created the stage tag
    tags: list[str] = field(default_factory=list)
    pushed: bool = False
    attempts: int = 1
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("promotion"), **asdict(self)}

    def summary(self) -> str:
        what = "registered" if self.registered else "already registered"
        line = f"{self.artifact} {self.version} {what} at {self.sha[:7]}"
        if self.stage:
            line += f"; stage {self.stage}: " + ("assigned" if self.assigned else "unchanged")
        if self.tags:
            line += f"\ntags: {', '.join(self.tags)}" + (" (pushed)" if self.pushed else "")
        return line


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


@contextmanager
def open_registry(repo_dir: Path) -> Iterator[GitRegistry]:
    from gto.exceptions import GTOException
    from gto.registry import GitRegistry

    try:
        with GitRegistry.from_url(str(repo_dir)) as reg:
            yield reg
    except GTOException as exc:
        raise RegistryError(f"the registry (git tags) in {repo_dir}: {exc.msg}") from exc


def _tagger_env(git: Git) -> dict[str, str]:
    """Leave git's own identity alone; fill in only what a bare runner lacks."""
    env = {}
    if not (os.environ.get("GIT_COMMITTER_NAME") or git.out("config", "user.name", check=False)):
        env["GIT_COMMITTER_NAME"] = FALLBACK_TAGGER[0]
    if not (os.environ.get("GIT_COMMITTER_EMAIL") or git.out("config", "user.email", check=False)):
        env["GIT_COMMITTER_EMAIL"] = FALLBACK_TAGGER[1]
    return env


class _TagWriter:
    """Writes GTO tags with git itself, so each gets a tagger date later than every earlier tag
    of the artifact: `gto show` orders assignments by that date (whole seconds), and two tags in
    one second would leave the stage's holder to chance."""

    def __init__(self, git: Git, artifact: str, tagger_env: dict[str, str]) -> None:
        from gto.constants import name_to_tag
        from gto.tag import parse_name

        self.git = git
        self.artifact = artifact
        self.prefix = name_to_tag(artifact)
        self.env = tagger_env
        self.created: list[str] = []
        counter, latest = 0, 0
        listing = git.out(
            "for-each-ref", "--format=%(refname:strip=2) %(taggerdate:raw)", "refs/tags"
        )
        for line in listing.splitlines():
            name, _, date = line.partition(" ")
            parsed = parse_name(name, raise_on_fail=False)
            if not parsed or parsed.get("name") != artifact:
                continue
            counter = max(counter, parsed.get("counter", 0))
            if date.strip():
                latest = max(latest, int(date.split()[0]))
        self.counter = counter
        self.latest = latest

    def _tag(self, name: str, sha: str, message: str) -> str:
        self.latest = max(int(time.time()), self.latest + 1)
        env = {**os.environ, **self.env, "GIT_COMMITTER_DATE": f"{self.latest} +0000"}
        proc = subprocess.run(
            ["git", "tag", "--annotate", "--file=-", name, sha],
            cwd=self.git.repo_dir,
            input=message,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RegistryError(f"cannot create tag {name}: {proc.stderr.strip()}")
        self.created.append(name)
        return name

    def register(self, version: str, sha: str, message: str) -> str:
        return self._tag(f"{self.prefix}@{version}", sha, message)

    def assign(self, stage: str, sha: str, message: str) -> str:
        self.counter += 1
        return self._tag(f"{self.prefix}#{stage}#{self.counter}", sha, message)

    def unassign(self, stage: str, sha: str, message: str) -> str:
        self.counter += 1
        return self._tag(f"{self.prefix}#{stage}!#{self.counter}", sha, message)


def _holder(reg: GitRegistry, artifact: str, stage: str) -> str | None:
    """The version in `stage` by gto's rule (what `gto show` prints)."""
    state = reg.get_state()
    art = state.find_artifact(artifact, create_new=True)
    vstages = _held(art).get(stage)
    return vstages[0].version if vstages else None


def _held(art: Any, per_stage: int = 1) -> dict[str, list[Any]]:
    """Stage -> active assignments, newest first: `gto show`'s default (`--sort timestamp`)."""
    from gto.constants import VersionSort

    return art.get_vstages(
        assignments_per_version=-1, versions_per_stage=per_stage, sort=VersionSort.Timestamp
    )


def _version_at(reg: GitRegistry, artifact: str, sha: str) -> str | None:
    art = reg.get_state().find_artifact(artifact, create_new=True)
    for v in art.get_versions(active_only=True):
        if v.commit_hexsha == sha:
            return v.version
    return None


def _sync_tags(git: Git, remote: str) -> None:
    """Make the local tags what the remote has (a shallow CI checkout has none)."""
    args = ["fetch", "--quiet", "--force", "--no-recurse-submodules"]
    if git.is_shallow():
        args.append("--depth=1")
    proc = git.run(*args, remote, "+refs/tags/*:refs/tags/*", check=False)
    if proc.returncode != 0:
        raise ServiceError(f"cannot fetch tags from `{remote}`: {proc.stderr.strip()}")


def _push_tags(git: Git, remote: str, tags: list[str]) -> tuple[bool, str]:
    # --atomic: a version tag must never land without its stage tag, or the reverse.
    refs = [f"refs/tags/{t}:refs/tags/{t}" for t in tags]
    proc = git.run("push", "--atomic", "--quiet", remote, *refs, check=False)
    return proc.returncode == 0, proc.stderr.strip()


def _drop_local_tags(git: Git, tags: list[str]) -> None:
    if tags:
        git.run("tag", "--delete", *tags, check=False)


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random()))


def read_verdict(run_dir: Path, sha: str) -> dict[str, Any] | None:
    """The gate's verdict for `sha`, or None when there is none (or it is for another commit)."""
    verdict = documents.read(run_dir, "verdict.json", kind="verdict", required=False)
    if not verdict:
        return None
    candidate = verdict.get("candidate_sha")
    if candidate and candidate != sha:
        return None
    return verdict


def _version_message(artifact: str, version: str, sha: str, verdict: dict[str, Any] | None) -> str:
    head = f"mlops-ci: register {artifact} {version} at {sha[:12]}"
    if verdict is None:
        return f"{head}\n\ngate: no verdict recorded for this commit"
    return f"{head}\n\ngate: {verdict.get('verdict')}: {verdict.get('summary') or ''}".rstrip()


def promote(
    repo_dir: Path,
    run_dir: Path,
    *,
    stage: str | None = None,
    push: bool = False,
    rev: str = "HEAD",
    remote: str = "origin",
    config: PromoteConfig | None = None,
) -> Promotion:
    """Register the commit at `rev` as a new version (if it has none) and assign `stage`.

    Idempotent: a commit that already has a version gets no second one, and a version already
    in the stage gets no new stage tag. With `push`, a push that loses a race with another
    runner re-fetches the tags, recomputes the version and counter, and tries again.
    """
    config = config or load_promote_config(repo_dir)
    stage = stage or config.auto
    if stage is not None and stage not in config.stages:
        raise ConfigError(
            f"stage {stage!r} is not in promote.stages of mlops-ci.yaml ({config.stages})"
        )
    git = Git(repo_dir)
    git.toplevel()
    sha = git.rev_parse(rev)
    if sha is None:
        raise RegistryError(f"{rev!r} does not name a commit in {repo_dir}")
    verdict = read_verdict(run_dir, sha)
    if verdict and verdict.get("verdict") == "fail":
        raise PromotionRefused(
            f"the gate failed for {sha[:12]} ({verdict.get('summary') or 'see verdict.json'}); "
            "fix the regression (or the policy on the target branch) and run the gate again"
        )
    if push and remote not in git.remotes():
        raise ConfigError(f"cannot push: the repository has no remote named `{remote}`")
    tagger = _tagger_env(git)
    for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
        if push:
            _sync_tags(git, remote)
        writer = _TagWriter(git, config.artifact, tagger)
        with open_registry(repo_dir) as reg:
            version = _version_at(reg, config.artifact, sha)
            registered = version is None
            if version is None:
                version = _next_version(reg, config)
                writer.register(
                    version, sha, _version_message(config.artifact, version, sha, verdict)
                )
            assigned = False
            if stage and _holder(reg, config.artifact, stage) != version:
                writer.assign(
                    stage, sha, f"mlops-ci: assign {config.artifact} {version} to {stage}"
                )
                assigned = True
        created = writer.created
        result = Promotion(
            artifact=config.artifact,
            sha=sha,
            version=version,
            stage=stage,
            registered=registered,
            assigned=assigned,
            tags=created,
            attempts=attempt,
            verdict=verdict.get("verdict") if verdict else None,
        )
        if not push or not created:
            return _written(run_dir, result)
        ok, stderr = _push_tags(git, remote, created)
        if ok:
            result.pushed = True
            return _written(run_dir, result)
        # Another runner pushed first: forget our tags, take theirs, recompute.
        _drop_local_tags(git, created)
        _backoff(attempt)
    raise ServiceError(
        f"could not push registry tags to `{remote}` after {MAX_PUSH_ATTEMPTS} attempts "
        f"(last error: {stderr}); check push access to tags and rerun `mlops-ci promote --push`"
    )


# gto starts at v0.0.1 whatever the bump; a minor-bumping project starts at v0.1.0 instead.
FIRST_VERSION = {"major": "v1.0.0", "minor": "v0.1.0", "patch": "v0.0.1"}


def _written(run_dir: Path, result: Promotion) -> Promotion:
    documents.write(run_dir, "promotion.json", result.to_dict())
    return result


def _next_version(reg: GitRegistry, config: PromoteConfig) -> str:
    from gto.versions import SemVer

    art = reg.get_state().find_artifact(config.artifact, create_new=True)
    latest = art.get_latest_version(registered_only=True)
    if latest is None:
        return FIRST_VERSION[config.bump]
    bump = {f"bump_{config.bump}": True}
    return SemVer(latest.version).bump(**bump).version


def _previous_holder(reg: GitRegistry, artifact: str, stage: str, current: str) -> str | None:
    """The version assigned to `stage` most recently before `current` and still active there.

    A version unassigned from the stage (an earlier rollback) was withdrawn on purpose, so it
    is never rolled back to; rolling back twice steps further into the past.
    """
    art = reg.get_state().find_artifact(artifact, create_new=True)
    for vstage in _held(art, per_stage=-1).get(stage, []):
        if vstage.version != current:
            return vstage.version
    return None


def rollback(
    repo_dir: Path,
    *,
    stage: str | None = None,
    push: bool = False,
    remote: str = "origin",
    config: PromoteConfig | None = None,
) -> Rollback:
    """Give `stage` back to the version that held it before the current one.

    Writes two new tags, never deletes one: an unassignment of the current version
    (`name#stage!#N`) and a fresh assignment of the previous version (`name#stage#N+1`).
    """
    config = config or load_promote_config(repo_dir)
    stage = stage or config.auto or config.stages[0]
    git = Git(repo_dir)
    git.toplevel()
    if push and remote not in git.remotes():
        raise ConfigError(f"cannot push: the repository has no remote named `{remote}`")
    tagger = _tagger_env(git)
    for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
        if push:
            _sync_tags(git, remote)
        writer = _TagWriter(git, config.artifact, tagger)
        with open_registry(repo_dir) as reg:
            current = _holder(reg, config.artifact, stage)
            if current is None:
                raise RegistryError(
                    f"no version of {config.artifact} is in stage {stage!r}; nothing to roll "
                    "back (see `gto show`)"
                )
            previous = _previous_holder(reg, config.artifact, stage, current)
            if previous is None:
                raise RegistryError(
                    f"no earlier version of {config.artifact} is still assigned to stage "
                    f"{stage!r} (only {current}); there is nothing to roll back to"
                )
            art = reg.get_state().find_artifact(config.artifact)
            commits = {v.version: v.commit_hexsha for v in art.get_versions(active_only=True)}
        message = f"mlops-ci rollback: {stage} back to {previous} (was {current})"
        writer.unassign(stage, commits[current], message)
        writer.assign(stage, commits[previous], message)
        created = writer.created
        result = Rollback(config.artifact, stage, current, previous, created, attempts=attempt)
        if not push:
            return result
        ok, stderr = _push_tags(git, remote, created)
        if ok:
            result.pushed = True
            return result
        _drop_local_tags(git, created)
        _backoff(attempt)
    raise ServiceError(
        f"could not push rollback tags to `{remote}` after {MAX_PUSH_ATTEMPTS} attempts "
        f"(last error: {stderr}); rerun `mlops-ci rollback --stage {stage}`"
    )


# --- questions the deploy step asks -----------------------------------------------------------


def stage_version(repo_dir: Path, artifact: str, stage: str) -> str | None:
    with open_registry(repo_dir) as reg:
        return _holder(reg, artifact, stage)


def version_at_commit(repo_dir: Path, artifact: str, sha: str) -> str | None:
    with open_registry(repo_dir) as reg:
        return _version_at(reg, artifact, sha)


def version_commit(repo_dir: Path, artifact: str, version: str) -> str:
    """The commit a version tag points at; the message names the versions that exist."""
    with open_registry(repo_dir) as reg:
        art = reg.get_state().find_artifact(artifact, create_new=True)
        versions = art.get_versions(active_only=True)
        for v in versions:
            if v.version == version:
                return v.commit_hexsha
    known = ", ".join(v.version for v in versions) or "none"
    raise RegistryError(
        f"{artifact} has no registered version {version!r} (registered: {known}); "
        "run `mlops-ci promote` first or fetch the tags (`git fetch --tags`)"
    )


def stages_of(repo_dir: Path, artifact: str, version: str) -> list[str]:
    """The stages `version` holds right now, by gto's rule."""
    with open_registry(repo_dir) as reg:
        art = reg.get_state().find_artifact(artifact, create_new=True)
        held = _held(art)
    return [stage for stage, vstages in held.items() if vstages and vstages[0].version == version]


def show(repo_dir: Path, artifact: str) -> dict[str, Any]:
    """`gto show`-style state: every version with its commit and the stages it holds."""
    with open_registry(repo_dir) as reg:
        art = reg.get_state().find_artifact(artifact, create_new=True)
        held = _held(art)
        versions = [
            {
                "version": v.version,
                "commit": v.commit_hexsha,
                "stages": sorted(s for s, vs in held.items() if vs and vs[0].version == v.version),
            }
            for v in art.get_versions(active_only=True)
        ]
    return {"artifact": artifact, "versions": versions}
