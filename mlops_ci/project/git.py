"""A thin wrapper over the git executable.

Every failure raises `GitError` carrying the command, its exit code and stderr, so a user sees
what git said instead of a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
    """Runs git in one repository.

    A command reads many files at revisions; each git process costs a few milliseconds to
    start, so `read_many` keeps one `git cat-file --batch` process for all its reads (`close`
    ends it; so does the end of the process). Refs are asked of git every time: tags and
    branches move under a command (promote, retrain), and a remembered answer would be stale.
    """

    def __init__(self, repo_dir: Path | str) -> None:
        self.repo_dir = Path(repo_dir)
        self._batch: _CatFile | None = None

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
        """The bytes of the file `path` at `rev`, or None when there is no such file there."""
        spec = f"{rev}:{path}"
        return self.read_many([spec])[spec]

    def read_many(self, specs: Sequence[str]) -> dict[str, bytes | None]:
        """Contents of many `rev:path` objects (None: not a file there), read through the one
        `git cat-file --batch` process this object keeps."""
        # A request is one line: a path with a line break cannot be asked for (not a file).
        asked = [spec for spec in specs if "\n" not in spec]
        result: dict[str, bytes | None] = dict.fromkeys(specs)
        if asked:
            if self._batch is None or not self._batch.alive():
                self._batch = _CatFile(self.repo_dir)
            result.update(self._batch.read(asked))
        return result

    def close(self) -> None:
        """End the `git cat-file` process, if one was started."""
        if self._batch is not None:
            self._batch.close()
            self._batch = None

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

    def symlinks(self, rev: str, prefix: str = "") -> list[str]:
        """Paths git tracks as symlinks (mode 120000) at `rev` under `prefix`."""
        scope = ["--", prefix] if prefix else []
        args = ["ls-tree", "-r", "-z", "--full-tree", rev, *scope]
        proc = self._exec(args, check=True, stdin=None, text=False, timeout=300)
        return [
            line.split(b"\t", 1)[1].decode("utf-8", "surrogateescape")
            for line in proc.stdout.split(b"\0")
            if line.startswith(b"120000 ")
        ]

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


class _CatFile:
    """One `git cat-file --batch` process: a request line in, a header and the object out. git
    flushes after each object, so requests and answers alternate without a deadlock."""

    def __init__(self, repo_dir: Path) -> None:
        try:
            self.proc = subprocess.Popen(
                ["git", "cat-file", "--batch"], cwd=repo_dir, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **_GIT_ENV},
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise GitError("git is not installed or not on PATH") from exc
        self.lock = threading.Lock()  # the data section reads tables from a second thread
        weakref.finalize(self, _end, self.proc)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read(self, specs: Sequence[str]) -> dict[str, bytes | None]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        result: dict[str, bytes | None] = {}
        with self.lock:
            try:
                for chunk in _chunks(specs):
                    stdin.write(b"".join(line for _, line in chunk))
                    stdin.flush()
                    for spec, _ in chunk:
                        result[spec] = _answer(stdout)
            except (OSError, ValueError) as exc:
                said = (
                    self.proc.stderr.read().decode("utf-8", "replace")
                    if not self.alive() and self.proc.stderr
                    else ""
                )
                _end(self.proc)
                raise GitError(f"`git cat-file --batch` failed: {said.strip() or exc}") from exc
        return result

    def close(self) -> None:
        _end(self.proc)


# Requests are written a chunk at a time, then its answers read: a chunk fits the pipe to git
# whatever git is doing, so neither side waits on the other.
_CHUNK_BYTES = 32 * 1024


def _chunks(specs: Sequence[str]) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for spec in specs:
        line = spec.encode("utf-8", "surrogateescape") + b"\n"
        if chunk and size + len(line) > _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append((spec, line))
        size += len(line)
    if chunk:
        yield chunk


def _answer(stdout: IO[bytes]) -> bytes | None:
    """One object's bytes, None for a tree, commit or tag, or a missing or ambiguous name."""
    header = stdout.readline().split()
    if not header:
        raise OSError("git cat-file stopped")
    if not _found(header):  # "<spec> missing" / "<spec> ambiguous"
        return None
    size = int(header[2])
    body = stdout.read(size + 1)
    if len(body) != size + 1:
        raise OSError("git cat-file stopped in the middle of an object")
    return body[:-1] if header[1] == b"blob" else None


def _found(header: list[bytes]) -> bool:
    """`<sha> <type> <size>`, not `<spec> missing` (a spec may hold spaces and those words)."""
    return (
        len(header) == 3
        and header[1] in (b"blob", b"tree", b"commit", b"tag")
        and header[2].isdigit()
        and len(header[0]) in (40, 64)
        and all(c in b"0123456789abcdef" for c in header[0])
    )


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Close the requests (git then exits) and reap the process."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
