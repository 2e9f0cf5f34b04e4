"""`mlops-ci deploy`: bundle, deploy and verify one version, then record it on the forge."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from mlops_ci.ci import documents
from mlops_ci.project.errors import MlopsCiError
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.registry.deploy import (
    Deployment,
    environment_for,
    find_version,
    put_version,
    target_of,
)


def record(
    run_dir: Path,
    deployment: Deployment,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> Deployment:
    """Tell the forge (GitHub deployment, GitLab deployment, local log) what happened."""
    try:
        from mlops_ci.forge import detect_forge

        forge = detect_forge(dict(os.environ if env is None else env), run_dir, out=out)
        description = f"{deployment.artifact} {deployment.version} ({deployment.state})"
        if deployment.override:
            description += f"; override: {deployment.override}"
        if deployment.reason:
            description += f"; {deployment.reason}"
        deployment.recorded = forge.record_deployment(
            deployment.sha,
            deployment.environment,
            deployment.version,
            deployment.state,
            description,
            url=deployment.location if "://" in deployment.location else None,
        )
    except (MlopsCiError, OSError, ImportError) as exc:
        deployment.record_error = str(exc)
    return deployment


def record_failure(
    run_dir: Path,
    settings: Settings,
    target: str,
    *,
    version: str,
    sha: str,
    environment: str,
    error: MlopsCiError,
    env: Mapping[str, str],
    out: TextIO | None,
    override: str | None = None,
) -> None:
    failed = Deployment(settings.artifact, version, sha, environment, target, location="")
    failed.state = "failure"
    failed.override = override
    failed.verification = {"error": str(error)}
    documents.write(run_dir, "deployment.json", record(run_dir, failed, env, out).to_dict())


def deploy(
    repo_dir: Path,
    run_dir: Path,
    *,
    target: str | None = None,
    version: str | None = None,
    environment: str | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    settings: Settings | None = None,
    override: str | None = None,
    reason: str | None = None,
) -> Deployment:
    """Bundle + deploy + verify + record one version (default: the version at HEAD).

    A deploy that fails after its version was given the stage (promote, a pushed stage tag)
    leaves the stage assigned and the target as it was; the error says so and how to finish
    or undo it: the same command again, or a rollback of the stage.
    """
    settings = settings or load_settings(repo_dir)
    env = os.environ if env is None else env
    found = find_version(repo_dir, settings.artifact, version)
    version, sha = found["version"], found["commit"]
    environment = (
        environment
        or settings.deploy.environment
        or environment_for(settings.promote, found["stages"])
    )
    target = target_of(target, settings)
    where = dict(version=version, sha=sha, environment=environment)
    try:
        result = put_version(repo_dir, run_dir, settings, target, **where, env=env)
    except MlopsCiError as exc:
        record_failure(
            run_dir, settings, target, **where, error=exc, env=env, out=out, override=override
        )
        if environment in found["stages"]:
            raise type(exc)(
                f"{exc}; {_stage_left(settings.artifact, version, environment)}"
            ) from exc
        raise
    result.override, result.reason = override, reason
    documents.write(run_dir, "deployment.json", record(run_dir, result, env, out).to_dict())
    return result


def _stage_left(artifact: str, version: str, stage: str) -> str:
    return (
        f"the registry already names {artifact} {version} in {stage} but the target still "
        f"serves what it served before: rerun `mlops-ci deploy --version {version}` once the "
        f"cause is fixed, or take the stage back from it with `mlops-ci rollback --stage "
        f"{stage} --push` (redeploys the previous version) or `mlops-ci deprecate --stage "
        f"{stage} --push` (unassigns it)"
    )
