"""Writing GTO tags with git, and pushing one round of them in a race with other runners.

`registry` decides which tags a promotion or a rollback needs; this module writes them (dated
at the real time, later than every earlier tag of the artifact) and pushes them atomically.
A push that loses a race re-fetches the remote's tags and lets the caller decide again.
The environment git runs in (identity, GIT_COMMITTER_DATE) is the caller's `env`.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from mlops_ci.project.errors import ConfigError, RegistryError, ServiceError
from mlops_ci.project.git import Git

# A push that loses a race re-fetches the tags and recomputes; this bounds the rounds.
MAX_PUSH_ATTEMPTS = 6
# Used only when git has no identity (a bare CI runner): tags need a tagger.
FALLBACK_TAGGER = ("mlops-ci", "mlops-ci@localhost")
# Seconds the writer waits for the clock to pass the newest tag before calling it clock skew.
MAX_CLOCK_WAIT = 5

T = TypeVar("T")


def tagger_env(git: Git, env: Mapping[str, str]) -> dict[str, str]:
    """Leave git's own identity alone; fill in only what a bare runner lacks."""
    tagger = {}
    if not (env.get("GIT_COMMITTER_NAME") or git.out("config", "user.name", check=False)):
        tagger["GIT_COMMITTER_NAME"] = FALLBACK_TAGGER[0]
    if not (env.get("GIT_COMMITTER_EMAIL") or git.out("config", "user.email", check=False)):
        tagger["GIT_COMMITTER_EMAIL"] = FALLBACK_TAGGER[1]
    return tagger


def clock(git: Git, tagger: dict[str, str], env: Mapping[str, str]) -> int:
    """Now, in whole seconds, as git would date a tag: GIT_COMMITTER_DATE when the caller set
    one in `env` (git parses it, in any of its formats), else the real time."""
    if not env.get("GIT_COMMITTER_DATE"):
        return int(time.time())
    proc = subprocess.run(
        ["git", "var", "GIT_COMMITTER_IDENT"],
        cwd=git.repo_dir,
        capture_output=True,
        text=True,
        env={**env, **tagger},
        check=False,
    )
    ident = proc.stdout.split()
    if proc.returncode != 0 or len(ident) < 2 or not ident[-2].lstrip("-").isdigit():
        date = env["GIT_COMMITTER_DATE"]
        raise ConfigError(f"git cannot read GIT_COMMITTER_DATE={date!r}: {proc.stderr.strip()}")
    return int(ident[-2])


class TagWriter:
    """Writes GTO tags with git itself, all of one round dated at one real second that is later
    than every earlier tag of the artifact: `gto show` orders assignments by that date (whole
    seconds), so a tie with an earlier tag would leave the stage's holder to chance, and a date
    ahead of the clock would make a person's later `gto assign` lose. When the newest tag is in
    the current second, the writer waits for the next one; a tag dated further ahead than
    `MAX_CLOCK_WAIT` is refused as a clock problem rather than waited out or outbid."""

    def __init__(
        self, git: Git, artifact: str, tagger: dict[str, str], env: Mapping[str, str]
    ) -> None:
        """`tagger`: the identity `tagger_env` fills in; `env`: the environment git runs in."""
        from gto.constants import name_to_tag
        from gto.tag import parse_name

        self.git = git
        self.prefix = name_to_tag(artifact)
        self.tagger, self.env = tagger, env
        self.created: list[str] = []
        self.counter, self.latest = 0, 0
        self.date: int | None = None
        listing = git.out(
            "for-each-ref", "--format=%(refname:strip=2) %(taggerdate:raw)", "refs/tags"
        )
        for line in listing.splitlines():
            name, _, date = line.partition(" ")
            parsed = parse_name(name, raise_on_fail=False)
            if not parsed or parsed.get("name") != artifact:
                continue
            self.counter = max(self.counter, parsed.get("counter", 0))
            if date.strip():
                self.latest = max(self.latest, int(date.split()[0]))

    def _round_date(self) -> int:
        if self.date is not None:
            return self.date
        now = clock(self.git, self.tagger, self.env)
        if now <= self.latest and self.env.get("GIT_COMMITTER_DATE"):
            raise RegistryError(
                f"GIT_COMMITTER_DATE ({now}) is not later than the newest tag of the artifact "
                f"({self.latest}); gto would not see the new tags as the newest: unset it"
            )
        ahead = self.latest + 1 - now
        if ahead > MAX_CLOCK_WAIT:
            raise RegistryError(
                f"the newest tag of the artifact is dated {ahead - 1} s ahead of this clock; "
                "a new tag dated now would lose to it in `gto show`: check the clocks (NTP) "
                "of the machines that tag, then rerun"
            )
        if ahead > 0:
            time.sleep(self.latest + 1 - time.time())
            now = clock(self.git, self.tagger, self.env)
        self.date = now
        return now

    def _tag(self, name: str, sha: str, message: str) -> str:
        date = self._round_date()
        env = {**self.env, **self.tagger, "GIT_COMMITTER_DATE": f"{date} +0000"}
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

    def deregister(self, version: str, sha: str, message: str) -> str:
        """GTO's deregistration: `name@vX.Y.Z!`; the version stays in history, inactive."""
        return self._tag(f"{self.prefix}@{version}!", sha, message)

    def deprecate(self, sha: str, message: str) -> str:
        """GTO's deprecation of the whole artifact: `name@deprecated`."""
        return self._tag(f"{self.prefix}@deprecated", sha, message)


def sync_tags(git: Git, remote: str) -> None:
    """Make the local tags what the remote has (a shallow CI checkout has none)."""
    args = ["fetch", "--quiet", "--force", "--no-recurse-submodules"]
    if git.is_shallow():
        args.append("--depth=1")
    proc = git.run(*args, remote, "+refs/tags/*:refs/tags/*", check=False)
    if proc.returncode != 0:
        raise ServiceError(f"cannot fetch tags from `{remote}`: {proc.stderr.strip()}")


def push_tags(git: Git, remote: str, tags: list[str]) -> tuple[bool, str]:
    # --atomic: a version tag must never land without its stage tag, or the reverse.
    refs = [f"refs/tags/{t}:refs/tags/{t}" for t in tags]
    proc = git.run("push", "--atomic", "--quiet", remote, *refs, check=False)
    return proc.returncode == 0, proc.stderr.strip()


@dataclass
class TagRound(Generic[T]):
    """What the last round's `decide` returned, and the tags it wrote."""

    value: T
    tags: list[str]
    attempts: int
    pushed: bool


def write_tags(
    git: Git,
    artifact: str,
    decide: Callable[[TagWriter], T],
    *,
    push: bool,
    remote: str,
    rerun: str,
    env: Mapping[str, str],
) -> TagRound[T]:
    """Let `decide` write the tags it needs through a fresh writer; with `push`, push them.
    `env` is the environment git tags in (the caller's; its identity and GIT_COMMITTER_DATE).

    A push that another runner beat drops our tags, takes the remote's and calls `decide`
    again (at most `MAX_PUSH_ATTEMPTS` rounds); `rerun` is the command the final error names.
    """
    if push and remote not in git.remotes():
        raise ConfigError(f"cannot push: the repository has no remote named `{remote}`")
    tagger = tagger_env(git, env)
    stderr = ""
    for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
        if push:
            sync_tags(git, remote)
        writer = TagWriter(git, artifact, tagger, env)
        try:
            value = decide(writer)
        except BaseException:
            # All of a round's tags or none: an unassignment without its assignment would
            # move the stage on its own (Ctrl-C or a failing `git tag` half-way).
            if writer.created:
                git.run("tag", "--delete", *writer.created, check=False)
            raise
        created = writer.created
        if not push or not created:
            return TagRound(value, created, attempt, pushed=False)
        ok, stderr = push_tags(git, remote, created)
        if ok:
            return TagRound(value, created, attempt, pushed=True)
        # Another runner pushed first: forget our tags, take theirs, decide again.
        git.run("tag", "--delete", *created, check=False)
        time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random()))
    raise ServiceError(
        f"could not push registry tags to `{remote}` after {MAX_PUSH_ATTEMPTS} attempts "
        f"(last error: {stderr}); check push access to tags and rerun {rerun}"
    )
