"""A file of a revision, read only when it resolves inside the repository.

Tables, metrics, plots and params are files a pull request chooses: a tracked symlink
`eval/table.csv -> /etc/passwd` (or `-> ../../../secrets`) would have the report publish
whatever it points at. DVC refuses `..` in declared paths, and so does `dvcfile.norm`; a symlink
is the other way out. So every read of such a file goes through here:

- in the workspace, the file's real path (every symlink on the way resolved) must lie inside
  the repository's root; else `PathOutside` and the file is not opened;
- at a git revision, a tracked symlink is followed within that revision's tree (its target is
  the blob's text), and it must stay inside the repository too.

Either way the caller records the file as unreadable (its metric or table `unknown`).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from mlops_ci.project.errors import MlopsCiError
from mlops_ci.project.untrusted.inventory import entry_point
from mlops_ci.project.untrusted.text import inert_line

MAX_LINK_HOPS = 8


class PathOutside(MlopsCiError):
    """A file of the project resolves outside the repository (a symlink leaving it)."""


def _outside(rel: str) -> PathOutside:
    return PathOutside(
        f"{inert_line(rel, 200)} is a symlink that leaves the repository; it was not read"
    )


@entry_point("a file of the workspace that the project's declarations name")
def read_workspace_file(top: Path, path: Path, rel: str) -> bytes | None:
    """The bytes of `path` (`rel` in messages), None when there is no such file; PathOutside
    when its real path is not inside the repository's top level `top`."""
    try:
        real = Path(os.path.realpath(path))
        top = Path(os.path.realpath(top))
    except (OSError, ValueError):
        return None
    if real != top and top not in real.parents:
        raise _outside(rel)
    try:
        return real.read_bytes()
    except OSError:  # missing, a directory, unreadable
        return None


@entry_point("a symlink git tracks at a revision (its target is the blob's text)")
def link_target(rel: str, target: bytes, prefix: str = "") -> str:
    """The repository-relative path a tracked symlink at `rel` points to, within its revision;
    PathOutside when it points outside (absolute, or `..` past the top)."""
    try:
        text = target.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _outside(rel) from exc
    if not text or text.startswith("/") or "\0" in text or "\n" in text:
        raise _outside(rel)
    top = posixpath.join(prefix, rel) if prefix else rel
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(top), text))
    if joined == ".." or joined.startswith("../") or joined == ".":
        raise _outside(rel)
    return joined
