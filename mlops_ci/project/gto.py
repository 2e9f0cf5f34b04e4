"""Read-only questions to the model registry (GTO's git tags), through gto's own Python API.

Writing tags (register, assign, roll back) is `mlops_ci.registry`'s job; this module only reads,
so that `compare` can resolve a `stage:` baseline without depending on the registry package.

Every answer is gto's own index asked the way `gto show` asks it: stages are held by the
newest active assignment (`--sort timestamp`), a commit assigned with `--skip-registration`
holds a stage under its hexsha as a version name, and a deprecated artifact holds nothing
(`gto show` leaves it out). Reading through gto rather than re-parsing the tags keeps every
corner of its semantics (deregistrations, unassignments, nested names) equal by construction;
one parse costs a few milliseconds.
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


def is_deprecated(art: Any) -> bool:
    """Whether the artifact's newest event is a deprecation (`gto deprecate NAME`)."""
    return bool(art.deprecations) and not art.is_active


def stage_holders(art: Any, per_stage: int = 1) -> dict[str, list[Any]]:
    """Stage -> active assignments, newest first: `gto show`'s default (`--sort timestamp`).

    Empty for a deprecated artifact, which `gto show` does not list at all.
    """
    from gto.constants import VersionSort

    if not art.is_active:
        return {}
    return art.get_vstages(
        assignments_per_version=-1, versions_per_stage=per_stage, sort=VersionSort.Timestamp
    )


def shown_versions(art: Any) -> list[Any]:
    """The versions `gto show NAME` lists: active registered ones and commits that hold a stage
    without a registration (named by their hexsha); none for a deprecated artifact."""
    if not art.is_active:
        return []
    return art.get_versions(active_only=True, include_non_explicit=True, include_discovered=True)


def commit_of(art: Any, version: str) -> str | None:
    """The commit of `version` as `gto show` lists it (a bare commit's version is its hexsha)."""
    return next((v.commit_hexsha for v in shown_versions(art) if v.version == version), None)


def deprecation_note(art: Any, artifact: str) -> str | None:
    """Why nothing of `artifact` is shown, when a deprecation is the reason."""
    if not is_deprecated(art):
        return None
    when = art.deprecations[-1].created_at
    return (
        f"{artifact} is deprecated (`gto deprecate`, {when:%Y-%m-%d %H:%M:%S %Z}): no stage "
        "holds any of its versions until a version is registered or assigned again"
    )


def show_artifact(art: Any, artifact: str) -> dict[str, Any]:
    held = stage_holders(art)
    versions = [
        {
            "version": v.version,
            "commit": v.commit_hexsha,
            "registered": v.is_registered,
            "stages": sorted(s for s, vs in held.items() if vs and vs[0].version == v.version),
        }
        for v in shown_versions(art)
    ]
    return {"artifact": artifact, "versions": versions}


def show(repo_dir: Path, artifact: str) -> dict[str, Any]:
    """`gto show NAME`-style state: every version it lists with its commit and current stages."""
    return show_artifact(read_artifact(repo_dir, artifact), artifact)


def reading(repo_dir: Path, artifact: str) -> dict[str, Any]:
    """Everything mlops-ci answers about `artifact` from one parse: the shown versions, the
    holder of each stage, the latest registered version and whether it is deprecated."""
    art = read_artifact(repo_dir, artifact)
    latest = art.get_latest_version(registered_only=True) if art.is_active else None
    return {
        **show_artifact(art, artifact),
        "holders": {s: vs[0].version for s, vs in stage_holders(art).items() if vs},
        "latest": latest.version if latest else None,
        "deprecated": is_deprecated(art),
    }


def stage_commit(repo_dir: Path, artifact: str, stage: str) -> tuple[str | None, str | None]:
    """(commit of the version in `stage`, None), or (None, why) when the artifact is
    deprecated, or (None, None) when no version is in the stage."""
    art = read_artifact(repo_dir, artifact)
    note = deprecation_note(art, artifact)
    if note:
        return None, note
    vstages = stage_holders(art).get(stage)
    return (vstages[0].commit_hexsha if vstages else None), None
