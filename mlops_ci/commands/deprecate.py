"""`mlops-ci deprecate`: GTO's deprecation, deregistration and unassignment, as tags.

- `--stage S`: unassign the version in S (or `--version V`) with `name#S!#N`; in GTO's view
  the stage goes back to the version assigned to it before, if any is still active there;
- `--version V`: deregister V with `name@vX.Y.Z!` (it stays in history, inactive);
- neither: deprecate the whole artifact with `name@deprecated`.

Tags are only ever added, never deleted, so `gto history` keeps the whole story. Nothing is
deployed or undeployed here: a pushed tag starts the registry workflow, which deploys what a
stage now holds (`mlops-ci deploy --from-tag TAG`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.project.errors import ConfigError, RegistryError
from mlops_ci.project.git import Git
from mlops_ci.project.gto import read_artifact, shown_versions, stage_holders
from mlops_ci.project.settings import load_settings
from mlops_ci.registry import registry, tags


@dataclass
class Deprecation:
    artifact: str
    action: str  # unassign | deregister | deprecate
    version: str | None
    stage: str | None
    tags: list[str] = field(default_factory=list)
    pushed: bool = False
    stage_now: str | None = None  # the version the stage holds after an unassignment

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("deprecation"), **asdict(self)}

    def summary(self) -> str:
        if self.action == "unassign":
            now = self.stage_now or "no version"
            line = (
                f"{self.artifact} {self.version} unassigned from {self.stage}; it now holds {now}"
            )
        elif self.action == "deregister":
            line = f"{self.artifact} {self.version} deregistered"
        else:
            line = f"{self.artifact} deprecated: no stage holds any of its versions"
        line += f"\ntags: {', '.join(self.tags)}" + (" (pushed)" if self.pushed else "")
        return line + "\ndeployments are left as they are until the tag push deploys the stage"


def deprecate(
    repo_dir: Path,
    run_dir: Path,
    *,
    version: str | None = None,
    stage: str | None = None,
    push: bool = False,
    remote: str = "origin",
    env: Mapping[str, str] | None = None,
) -> Deprecation:
    """Write the one GTO tag that says what was withdrawn (see the module's docstring); git
    tags in `env` (default: this process's environment)."""
    settings = load_settings(repo_dir)
    artifact = settings.artifact
    git = Git(repo_dir)
    git.toplevel()
    action = "unassign" if stage else "deregister" if version else "deprecate"

    def decide(writer: tags.TagWriter) -> str | None:
        art = read_artifact(repo_dir, artifact)
        commits = {v.version: v.commit_hexsha for v in shown_versions(art)}
        if action == "deregister":
            # gto deregisters an active registered version even of a deprecated artifact.
            commits = {v.version: v.commit_hexsha for v in art.get_versions(active_only=True)}
        if version is not None and version not in commits:
            known = ", ".join(commits) or "none"
            raise RegistryError(
                f"{artifact} has no active version {version!r} (active: {known}); "
                "fetch the tags (`git fetch --tags`) or check `gto show`"
            )
        if action == "unassign":
            held = version or registry.holder(art, stage or "")
            active = stage_holders(art, per_stage=-1).get(stage or "", [])
            if held is None or held not in [vs.version for vs in active]:
                raise RegistryError(
                    f"{version or 'no version'} of {artifact} is not in stage {stage!r}; "
                    "nothing to unassign (see `gto show`)"
                )
            writer.unassign(stage or "", commits[held], f"mlops-ci: unassign {held} from {stage}")
            return held
        if action == "deregister":
            assert version is not None
            writer.deregister(version, commits[version], f"mlops-ci: deregister {version}")
            return version
        head = git.head_sha()
        if head is None:
            raise ConfigError("the repository has no commit to tag the deprecation at")
        writer.deprecate(head, f"mlops-ci: deprecate {artifact}")
        return None

    done = tags.write_tags(
        git,
        artifact,
        decide,
        push=push,
        remote=remote,
        rerun="`mlops-ci deprecate --push` with the same options",
        env=os.environ if env is None else env,
    )
    result = Deprecation(artifact, action, done.value, stage, done.tags, done.pushed)
    if stage:
        result.stage_now = registry.holder(read_artifact(repo_dir, artifact), stage)
    documents.write(run_dir, "deprecation.json", result.to_dict())
    return result
