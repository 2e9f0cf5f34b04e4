"""`dvc diff` through DVC's own Python API (dvc.repo.diff): the DVC-tracked files and
directories that were added, deleted, modified or renamed between a revision and the workspace.

Only called when the hashes `dvc.lock` / `.dvc` files record differ between the two revisions:
opening a DVC repository costs about half a second, which a change that touches no tracked
data should not pay. When it is called, it runs in a thread beside the reading of tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_ci.project.errors import ConfigError

CHANGES = ("added", "deleted", "modified", "renamed", "not in cache")


def _posix(path: Any) -> Any:
    if isinstance(path, dict):
        return {k: _posix(v) for k, v in path.items()}
    return str(path).replace("\\", "/") if path is not None else None


def dvc_diff(root: Path, a_rev: str, b_rev: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """What `dvc diff a_rev [b_rev] --json` prints (b_rev None: the workspace), every change
    kind present (empty lists included), paths with `/` and directories ending in `/`.

    The repository is opened by its absolute root without changing the working directory
    (DVC's diff names paths by their keys from the root), so it can run beside other work."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root.resolve())) as repo:
            found = repo.diff(a_rev=a_rev, b_rev=b_rev) or {}
    except DvcException as exc:
        raise ConfigError(f"dvc diff {a_rev[:12]} could not be computed: {exc}") from exc
    return {
        kind: [{**entry, "path": _posix(entry.get("path"))} for entry in found.get(kind) or []]
        for kind in CHANGES
    }
