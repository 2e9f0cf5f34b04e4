"""SIGKILL at real file operations: a fork server that runs `mlops-ci` with a kill point.

No hook in mlops-ci and no patched function: the child installs a CPython audit hook
(`sys.addaudithook`, PEP 578), which the interpreter calls before every file operation it
audits. Each operation under the watched directories that changes something (an open for
writing, rename/replace, symlink, mkdir, remove, rmtree, copyfile) and each start of `git tag`,
`git push` or the verification process is a kill point; the child SIGKILLs itself *before*
operation N. An open for writing is a second point *after* it: the file is created or truncated
as the open would, then the process dies (what a kill between `open` and `write` leaves).

The server imports mlops-ci, DVC, gto and pandas once and forks one child per run, so a kill
point costs what the command does after start-up, not an interpreter start.

    python tests/faults.py          # jobs as JSON lines on stdin, results as JSON lines on stdout
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WATCHED = {
    "open",
    "os.rename",
    "os.symlink",
    "os.mkdir",
    "os.remove",
    "os.rmdir",
    "shutil.rmtree",
    "shutil.copyfile",
    "subprocess.Popen",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class KillPoints:
    """Counts the kill points a command passes and kills the process at number `kill_at`."""

    def __init__(self, roots: Sequence[str], base: str, kill_at: int) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.base = os.path.abspath(base)
        self.kill_at = kill_at
        self.seen: list[str] = []
        self.busy = False
        self.copying: str | None = None  # the destination of the copyfile in progress

    def _rel(self, path: Any) -> str | None:
        try:
            text = os.path.abspath(os.fsdecode(path))
        except TypeError:
            return None  # a file descriptor
        if not any(text == r or text.startswith(r + os.sep) for r in self.roots):
            return None
        return os.path.relpath(text, self.base)

    def _describe(self, event: str, args: tuple[Any, ...]) -> tuple[str, bool] | None:
        """(what the operation is, whether it opens a file for writing), or None to ignore."""
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            writes = (
                any(c in mode for c in "wax+")
                if isinstance(mode, str)
                else isinstance(flags, int) and flags > 0 and bool(flags & WRITE_FLAGS)
            )
            rel = self._rel(path) if writes else None
            return (f"open {rel}", True) if rel else None
        if event == "subprocess.Popen":
            argv = [str(a) for a in (args[1] or [])]
            names = {Path(a).name for a in argv[:3]}
            git_tag_or_push = "git" in names and bool({"tag", "push"} & set(argv[1:4]))
            if git_tag_or_push or "check-predictions" in argv:
                shown = " ".join(a for a in argv[:6] if not a.startswith("/"))
                return f"run {shown}", False
            return None
        if event in ("os.rename", "shutil.copyfile"):
            src, dst = self._rel(args[0]), self._rel(args[1])
            return (f"{event} {src} -> {dst}", False) if (src or dst) else None
        if event == "os.symlink":
            rel = self._rel(args[1])
            return (f"{event} {rel}", False) if rel else None
        rel = self._rel(args[0])
        return (f"{event} {rel}", False) if rel else None

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.busy or event not in WATCHED:
            return
        self.busy = True
        try:
            found = self._describe(event, args)
            if found is None:
                return
            what, opens = found
            phases = ["before", "after"] if opens else ["before"]
            if event == "shutil.copyfile":
                self.copying = self._rel(args[1])
            elif opens and what == f"open {self.copying}":
                # Nothing changed since the copyfile's own point: only "after" is a new state.
                phases, self.copying = ["after"], None
            for phase in phases:
                self.seen.append(f"{what} ({phase})")
                if len(self.seen) == self.kill_at:
                    if phase == "after":
                        _open_as(args)
                    os.kill(os.getpid(), signal.SIGKILL)
        finally:
            self.busy = False


def _open_as(args: tuple[Any, ...]) -> None:
    """Do to the file what the audited open does before anything is written to it."""
    path, mode, flags = args[0], args[1], args[2]
    if isinstance(mode, str):
        flags = os.O_WRONLY | os.O_CREAT
        flags |= os.O_TRUNC if ("w" in mode) else 0
        if "r" in mode and "+" in mode:
            return  # r+ neither creates nor truncates
    os.close(os.open(path, flags & WRITE_FLAGS, 0o600))


def run_child(job: dict[str, Any]) -> None:
    """In the forked child: the command with the kill points; never returns."""
    from mlops_ci.cli import main

    fd = os.open(job["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(job["cwd"])
    os.environ.update(job.get("env") or {})
    points = KillPoints(job["roots"], job["cwd"], int(job["kill_at"]))
    sys.addaudithook(points)
    try:
        code = main(job["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 99
    points.busy = True  # the log below is not a kill point
    sys.stdout.flush()
    sys.stderr.flush()
    Path(job["points"]).write_text(json.dumps(points.seen))
    os._exit(code)


def serve() -> None:
    # Everything a command imports, imported once before the first fork.
    import dvc.repo  # noqa: F401
    import gto.registry  # noqa: F401
    import pandas  # noqa: F401

    import mlops_ci.cli
    import mlops_ci.forge  # noqa: F401

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(job)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            result = {"signal": os.WTERMSIG(status), "code": None}
        else:
            result = {"signal": None, "code": os.WEXITSTATUS(status)}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    serve()
