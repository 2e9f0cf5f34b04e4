"""Read-only questions to the model registry (GTO's git tags), through gto's own Python API.

Writing tags (register, assign, roll back) is `mlops_ci.registry`'s job; this module only reads,
so that `compare` can resolve a `stage:` baseline without depending on the registry package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_ci.project.errors import RegistryError


def read_artifact(repo_dir: Path, artifact: str) -> Any:
    """gto's view of `artifact` from the tags in `repo_dir` (empty when it has none yet).

    Read once per question: every answer below comes from this one parse of the tags.
    """
    from gto.exceptions import GTOException
    from gto.registry import GitRegistry

    try:
        with GitRegistry.from_url(str(repo_dir)) as reg:
            return reg.get_state().find_artifact(artifact, create_new=True)
    except GTOException as exc:
        raise RegistryError(f"the registry (git tags) in {repo_dir}: {exc.msg}") from exc


def stage_holders(art: Any, per_stage: int = 1) -> dict[str, list[Any]]:
    """Stage -> active assignments, newest first: `gto show`'s default (`--sort timestamp`)."""
    from gto.constants import VersionSort

    return art.get_vstages(
        assignments_per_version=-1, versions_per_stage=per_stage, sort=VersionSort.Timestamp
    )


def show(repo_dir: Path, artifact: str) -> dict[str, Any]:
    """`gto show`-style state: every version with its commit and the stages it holds now."""
    art = read_artifact(repo_dir, artifact)
    held = stage_holders(art)
    versions = [
        {
            "version": v.version,
            "commit": v.commit_hexsha,
            "stages": sorted(s for s, vs in held.items() if vs and vs[0].version == v.version),
        }
        for v in art.get_versions(active_only=True)
    ]
    return {"artifact": artifact, "versions": versions}
