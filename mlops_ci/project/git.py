"""A thin wrapper over the git executable.

Every failure raises `GitError` carrying the command, its exit code and stderr, so a user sees
what git said instead of a traceback.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.project.errors import GitError, NotAGitRepo

# git must never stop to ask for credentials or open an editor in CI.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true", "LC_ALL": "C"}
# NUL-separated, so subjects with any characters survive.
_COMMIT_FORMAT = "--format=%H%x00%s%x00%an%x00%ct"


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str
    timestamp: int


class Git:
    """Runs git in one repository."""

    def __init__(self, repo_dir: Path | str) -> None:
        self.repo_dir = Path(repo_dir)

    def _exec(
        self,
        args: Sequence[str],
        *,
        check: bool,
        stdin: str | bytes | None,
        text: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess[Any]:
        cmd = ["git", *args]
        try:
            proc = subprocess.run(
                cmd, cwd=self.repo_dir, capture_output=True, text=text, input=stdin,
                env={**os.environ, **_GIT_ENV}, timeout=timeout, check=False,
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise GitError("git is not installed or not on PATH") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from exc
        if check and proc.returncode != 0:
            said = proc.stderr or proc.stdout
            said = said if isinstance(said, str) else said.decode("utf-8", "replace")
            raise GitError(
                f"`{' '.join(cmd)}` failed with exit code {proc.returncode}: {said.strip()}"
            )
        return proc

    def run(
        self, *args: str, check: bool = True, input_text: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self._exec(args, check=check, stdin=input_text, text=True, timeout=timeout)

    def out(self, *args: str, check: bool = True) -> str:
        return self.run(*args, check=check).stdout.strip()

    # --- questions ---------------------------------------------------------------------------

    def toplevel(self) -> Path:
        proc = self.run("rev-parse", "--show-toplevel", check=False)
        if proc.returncode != 0:
            raise NotAGitRepo(
                f"{self.repo_dir} is not inside a git repository; run mlops-ci from your "
                "project's checkout (or pass -C DIR)"
            )
        return Path(proc.stdout.strip())

    def rev_parse(self, rev: str) -> str | None:
        """The full SHA of `rev`, or None when it does not name a commit here."""
        proc = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def head_sha(self) -> str | None:
        return self.rev_parse("HEAD")

    def current_branch(self) -> str | None:
        proc = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return proc.stdout.strip() or None

    def merge_base(self, a: str, b: str) -> str | None:
        proc = self.run("merge-base", a, b, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def is_shallow(self) -> bool:
        return self.out("rev-parse", "--is-shallow-repository") == "true"

    def show(self, rev: str, path: str) -> bytes | None:
        """The bytes of `path` at `rev`, or None when it does not exist there."""
        proc = self._exec(
            ["show", f"{rev}:{path}"], check=False, stdin=None, text=False, timeout=300
        )
        return proc.stdout if proc.returncode == 0 else None

    def read_many(self, specs: Sequence[str]) -> dict[str, bytes | None]:
        """Contents of many `rev:path` objects through one `git cat-file --batch` process."""
        if not specs:
            return {}
        request = "".join(f"{spec}\n" for spec in specs).encode()
        proc = self._exec(
            ["cat-file", "--batch"], check=True, stdin=request, text=False, timeout=300
        )
        out, pos, result = proc.stdout, 0, {}
        for spec in specs:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                result[spec] = out[pos : pos + size]
                pos += size + 1
            elif len(header) == 3:  # a tree or commit: skip its body
                pos += int(header[2]) + 1
                result[spec] = None
            else:  # "<spec> missing" / "ambiguous"
                result[spec] = None
        return result

    def list_files(self, rev: str | None, prefix: str = "") -> list[str]:
        """Paths of the files git has at `rev` under `prefix` (None: the working tree's tracked
        and untracked, not ignored, files), relative to the top level."""
        scope = ["--", prefix] if prefix else []
        if rev is None:
            args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard", *scope]
        else:
            args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", rev, *scope]
        proc = self._exec(args, check=True, stdin=None, text=False, timeout=300)
        return [p.decode("utf-8", "surrogateescape") for p in proc.stdout.split(b"\0") if p]

    def commit_info(self, rev: str) -> Commit:
        return self.log(rev, 1)[0]

    def log(self, rev: str, max_count: int, paths: Sequence[str] = ()) -> list[Commit]:
        """Commits reachable from `rev`, newest first (first parents only: the branch's own line)."""
        args = ["log", "--first-parent", f"--max-count={max_count}", _COMMIT_FORMAT, rev]
        if paths:
            args += ["--", *paths]
        commits = []
        for line in self.out(*args).splitlines():
            sha, subject, author, ts = line.split("\x00")
            commits.append(Commit(sha=sha, subject=subject, author=author, timestamp=int(ts)))
        return commits

    def commit_all(self, message: str) -> str:
        """Stage everything and commit (empty commits allowed); returns the new HEAD."""
        self.run("add", "--all")
        self.run("commit", "--quiet", "--allow-empty", "-m", message)
        return self.out("rev-parse", "HEAD")

    def remotes(self) -> list[str]:
        return self.out("remote").split()

    @functools.cached_property
    def remote_names(self) -> frozenset[str]:
        """The remotes, asked once: they do not change while a command runs."""
        return frozenset(self.remotes())

    def tags(self, pattern: str | None = None) -> list[str]:
        args = ["tag", "--list"] + ([pattern] if pattern else [])
        return self.out(*args).splitlines()

    def is_dirty(self, paths: Sequence[str] = ()) -> bool:
        args = ["status", "--porcelain", "--untracked-files=no"]
        if paths:
            args += ["--", *paths]
        return bool(self.out(*args))

    # --- changes ----------------------------------------------------------------------------

    def fetch(self, remote: str, *refspecs: str, depth: int | None = None) -> bool:
        """Fetch; returns False (not raising) when the remote refuses, so callers can degrade."""
        args = ["fetch", "--quiet", "--no-tags"]
        if depth is not None:
            args.append(f"--depth={depth}")
        proc = self.run(*args, remote, *refspecs, check=False)
        return proc.returncode == 0

    def unshallow(self, remote: str, *refspecs: str) -> bool:
        """Fetch the whole history of `refspecs`, making the clone complete."""
        args = ["fetch", "--quiet", "--no-tags"]
        if self.is_shallow():
            args.append("--unshallow")
        proc = self.run(*args, remote, *refspecs, check=False, timeout=3600)
        return proc.returncode == 0

    def deepen(self, remote: str, by: int, *refspecs: str) -> bool:
        proc = self.run(
            "fetch", "--quiet", "--no-tags", f"--deepen={by}", remote, *refspecs, check=False
        )
        return proc.returncode == 0
