"""Refresh a project's imported data the way `dvc update` does (DVC's own code), and say which
.dvc files it changed.

Only `dvc import` / `dvc import-url` outputs have an upstream to refresh; a .dvc file of a plain
`dvc add` has none and is refused by name, so a typo in `retrain.sources` is not a silent no-op.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.project.errors import ConfigError


@dataclass(frozen=True)
class UpdatedSource:
    path: str  # the .dvc file, relative to the DVC project root
    changed: bool  # the .dvc file differs after the update (new upstream revision or data)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "changed": self.changed}


def import_files(repo: Any) -> list[str]:
    """Every .dvc file of the project that records a `dvc import` or `dvc import-url`."""
    root = Path(repo.root_dir)
    return sorted(
        Path(os.path.relpath(stage.path, root)).as_posix()
        for stage in repo.index.stages
        if getattr(stage, "is_import", False) and str(stage.path).endswith(".dvc")
    )


def update_sources(repo: Any, sources: Sequence[str] = ()) -> list[UpdatedSource]:
    """`dvc update` the named .dvc files (default: every import); per file, whether it changed."""
    from dvc.exceptions import DvcException

    imports = import_files(repo)
    targets = list(sources) or imports
    root = Path(repo.root_dir)
    for path in targets:
        if not (root / path).is_file():
            raise ConfigError(f"mlops-ci.yaml: retrain.sources names {path}, which does not exist")
        if path not in imports:
            raise ConfigError(
                f"mlops-ci.yaml: retrain.sources names {path}, which is not a `dvc import` or "
                "`dvc import-url` output: there is no upstream to refresh it from"
            )
    if not targets:
        return []
    before = {path: _digest(root / path) for path in targets}
    try:
        repo.update(targets=[str(root / path) for path in targets])
    except DvcException as exc:
        from mlops_ci.project.errors import ServiceError

        raise ServiceError(f"cannot refresh {', '.join(targets)} (dvc update): {exc}") from exc
    return [UpdatedSource(path, _digest(root / path) != before[path]) for path in targets]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
