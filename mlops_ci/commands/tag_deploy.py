"""`mlops-ci deploy --from-tag TAG`: deploy what a registry tag push left in a stage.

Whoever moved the stage (`gto assign` by a person, a promotion made elsewhere), the version
the stage now holds ships only when its commit is on the default branch's history and its
version tag records a verdict the gate let through (`gate: pass` or `gate: neutral`, written by
`mlops-ci promote`), or when an override with a reason is given; the override is recorded in
`deployment.json` and in the forge's deployment. Anything else is refused (exit 1), so a tag
cannot ship a model the gate never judged.

A deregistration (`name@vX.Y.Z!`) deploys, for each stage its version held, what `gto show`
names there now; a stage that holds nothing any more (emptied, or the artifact deprecated) is
left serving what it served and listed under `left` with the reason; a stage held by a bare
commit (`gto assign --skip-registration`) is refused, since only registered versions ship.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci import documents
from mlops_ci.commands.deploy import deploy
from mlops_ci.project.errors import EXIT_GATE_FAILED, ConfigError, MlopsCiError
from mlops_ci.project.git import Git
from mlops_ci.project.gto import deprecation_note, read_artifact, shown_versions, stage_holders
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.registry import registry, tags
from mlops_ci.registry.deploy import Deployment

TAG_DEPLOY = "tag-deploy.json"


class DeployRefused(MlopsCiError):
    """The version a tag put in a stage has no passing verdict, or is not on the default
    branch: it is not deployed (exit 1, as a failed gate)."""

    exit_code = EXIT_GATE_FAILED


@dataclass
class TagDeploy:
    tag: str
    action: str
    artifact: str
    deployed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Environments whose stage no longer holds a version: left as they were, with the reason.
    left: list[dict[str, str]] = field(default_factory=list)
    override: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("tag-deploy"), **asdict(self)}

    def summary(self) -> str:
        lines = [f"{self.tag}: {self.action}"]
        lines += [
            f"{d['artifact']} {d['version']} deployed to {d['environment']}: {d['location']}"
            + (f" (override: {self.override})" if self.override else "")
            for d in self.deployed
        ]
        lines += self.skipped
        return "\n".join(lines)


def _stages_moved(parsed: dict[str, Any], art: Any) -> list[str]:
    """The stages whose holder the tag may have changed."""
    action = str(getattr(parsed.get("action"), "value", parsed.get("action")))
    if action in ("assign", "unassign"):
        return [parsed["stage"]]
    if action == "register":
        held = stage_holders(art)
        return sorted(s for s, vs in held.items() if vs and vs[0].version == parsed["version"])
    if action == "deregister":
        return _stages_held_by_deregistered(art, parsed["version"])
    # A deprecation withdraws every stage the artifact held.
    return sorted(s for s, vs in art.get_vstages().items() if vs)


def _stages_held_by_deregistered(art: Any, version: str) -> list[str]:
    """The stages `version` held by gto's rule just before it was deregistered: its active
    assignment to the stage is at least as new as the one of the stage's holder now."""
    gone = next((v for v in art.versions if v.version == version and v.is_registered), None)
    if gone is None or gone.is_active:
        return []
    held = stage_holders(art)
    stages = []
    for vstage in gone.get_vstages():
        now = held.get(vstage.stage)
        if not now or vstage.activated_at >= now[0].activated_at:
            stages.append(vstage.stage)
    return sorted(stages)


def _reason(tag: str, parsed: dict[str, Any], action: str, stage: str, version: str) -> str:
    """Why the registry tag `tag` deploys `version` to `stage`, in the deployment's record."""
    named = f"gto show names {version} in {stage}"
    if action == "deregister":
        return f"{tag} deregistered {parsed['version']}; {named} now"
    if action == "unassign":
        return f"{tag} unassigned {stage}; {named} now"
    return f"{tag}: {named}"


def check_deployable(
    git: Git, settings: Settings, version: str, sha: str, override: str | None
) -> None:
    """Refuse a version whose commit is off the default branch, or that has no passing
    verdict recorded, unless `override` gives a reason (the branch rule has no override)."""
    branch = settings.target_branch
    ref = registry.branch_ref(git, branch)
    if ref is None:
        raise ConfigError(
            f"the default branch {branch!r} (target_branch of mlops-ci.yaml) is not in this "
            "clone: check it out with its history (actions/checkout with fetch-depth: 0)"
        )
    if not registry.on_history(git, sha, ref):
        raise DeployRefused(
            f"{settings.artifact} {version} is at {sha[:12]}, which is not on the history of "
            f"{branch}: only commits that reached {branch} (through its gate) are deployed"
        )
    verdict = registry.recorded_verdict(git, settings.artifact, version)
    if verdict in registry.PASSING or override:
        return
    found = f"the gate's verdict was {verdict}" if verdict else "no gate verdict is recorded"
    raise DeployRefused(
        f"{settings.artifact} {version} ({sha[:12]}): {found} in its version tag, so it is not "
        "deployed; register versions with `mlops-ci promote` after a passing `mlops-ci gate`, "
        "or deploy it anyway with `--override REASON` (the reason is recorded)"
    )


def deploy_from_tag(
    repo_dir: Path,
    run_dir: Path,
    tag: str,
    *,
    override: str | None = None,
    target: str | None = None,
    remote: str = "origin",
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> TagDeploy:
    """Deploy what each stage `tag` moved now holds (the tag itself may be stale: what counts
    is the registry after it, with the remote's tags fetched first)."""
    from gto.tag import parse_name

    parsed = parse_name(tag.removeprefix("refs/tags/"), raise_on_fail=False)
    if not parsed:
        raise ConfigError(
            f"{tag!r} is not a GTO tag (name@vX.Y.Z, name#stage#N, name#stage!#N, "
            "name@vX.Y.Z!, name@deprecated)"
        )
    settings = load_settings(repo_dir)
    env = os.environ if env is None else env
    action = str(getattr(parsed["action"], "value", parsed["action"]))
    result = TagDeploy(tag, action, parsed["name"], override=override or None)
    if parsed["name"] != settings.artifact:
        result.skipped.append(
            f"nothing to deploy: the tag is for {parsed['name']!r}, this project's artifact "
            f"is {settings.artifact!r}"
        )
        documents.write(run_dir, TAG_DEPLOY, result.to_dict())
        return result
    git = Git(repo_dir)
    git.toplevel()
    if remote in git.remotes():
        tags.sync_tags(git, remote)
    art = read_artifact(repo_dir, settings.artifact)
    commits = {v.version: v.commit_hexsha for v in shown_versions(art)}
    stages = _stages_moved(parsed, art)
    if not stages and action == "register":
        result.skipped.append(f"nothing to deploy: {parsed['version']} holds no stage")
    elif not stages:
        result.skipped.append(f"nothing to deploy: this {action} tag moved no stage")
    plans: list[tuple[str, str, str]] = []
    why_empty = deprecation_note(art, settings.artifact) or "no version holds it now"
    for stage in stages:
        version = registry.holder(art, stage)
        if version is None:
            # Chosen: an emptied stage leaves its environment serving what it served (taking
            # a model down is a person's call); the record says so and why.
            result.left.append({"environment": stage, "reason": why_empty})
            result.skipped.append(
                f"{stage}: {why_empty}; its environment is left serving what it served"
            )
            continue
        sha = commits[version]
        if version == sha:
            raise DeployRefused(
                f"stage {stage!r} of {settings.artifact} is held by commit {sha[:12]}, assigned "
                "without a version (`gto assign --skip-registration`); only registered versions "
                f"are deployed: check out that commit and run `mlops-ci promote --stage {stage} "
                "--push` (or `gto register`), then the stage tag deploys it"
            )
        check_deployable(git, settings, version, sha, result.override)
        plans.append((stage, version, commits[version]))
    for stage, version, _sha in plans:
        deployed: Deployment = deploy(
            repo_dir, run_dir, target=target, version=version, environment=stage,
            env=env, out=out, settings=settings, override=result.override,
            reason=_reason(tag, parsed, action, stage, version),
        )  # fmt: skip
        result.deployed.append(deployed.to_dict())
    documents.write(run_dir, TAG_DEPLOY, result.to_dict())
    return result
