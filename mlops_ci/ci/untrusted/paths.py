"""A file of a revision, read only when it resolves inside the repository.

Tables, metrics, plots and params are files a pull request chooses: a tracked symlink
`eval/table.csv -> /etc/passwd` (or `-> ../../../secrets`) would have the report publish
whatever it points at. DVC refuses `..` in declared paths, and so does `dvcfile.norm`; a symlink
is the other way out. So every read of such a file goes through here:

- in the workspace, the file's real path (every symlink on the way resolved) must lie inside
  the repository's root, or be an object of a DVC cache (DVC's `symlink` cache type) whose
  bytes have the md5 its path names; else `PathOutside` and the file is not returned;
- at a git revision, a tracked symlink is followed within that revision's tree (its target is
  the blob's text), and it must stay inside the repository too.

Either way the caller records the file as unreadable (its metric or table `unknown`).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from pathlib import Path

from mlops_ci.ci.untrusted.inventory import entry_point
from mlops_ci.ci.untrusted.text import inert_line
from mlops_ci.project.errors import MlopsCiError

MAX_LINK_HOPS = 8
_CACHE_OBJECT = re.compile(r"[0-9a-f]{2}/[0-9a-f]{30}")


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
    inside = real == top or top in real.parents
    if not inside and not _CACHE_OBJECT.fullmatch(f"{real.parent.name}/{real.name}"):
        raise _outside(rel)
    try:
        data = real.read_bytes()
    except OSError:  # missing, a directory, unreadable
        return None
    # DVC's `symlink` cache type links outputs to its cache, which may sit outside the
    # repository (a shared cache): such a link is followed only to a content-addressed object
    # whose bytes have the md5 its path names, which no file of the machine has by chance.
    if not inside and hashlib.md5(data).hexdigest() != real.parent.name + real.name:  # noqa: S324
        raise _outside(rel)
    return data


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
