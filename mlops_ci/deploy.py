"""Deploy a version: build its bundle, put it on the target, verify it there, switch, record.

The target is `--target`, else `deploy.command` (as `command:...`) or `deploy.target` of
mlops-ci.yaml; `targets` holds the places. A `command:` target runs a program given the verified
bundle's path (`{bundle}` in the arguments, else appended), with
MLOPS_CI_BUNDLE/VERSION/ENVIRONMENT/ARTIFACT set.

Nothing is switched unless the copy at the target passes `bundle.verify_bundle`; a copy on a
remote target is read back and verified there.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci import bundle, documents, registry
from mlops_ci.documents import now
from mlops_ci.errors import (
    ConfigError,
    MlopsCiError,
    RegistryError,
    ServiceError,
    VerificationFailed,
)
from mlops_ci.git import Git
from mlops_ci.settings import PromoteSettings, Settings, load_settings
from mlops_ci.targets import COMMAND_PREFIX, Target, open_target


@dataclass
class Deployment:
    artifact: str
    version: str
    sha: str
    environment: str
    target: str
    location: str
    state: str = "success"
    previous: str | None = None
    reused: bool = False
    verification: dict[str, Any] = field(default_factory=dict)
    recorded: dict[str, Any] | None = None
    record_error: str | None = None
    deployed_at: str = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("deployment"), **asdict(self)}

    def summary(self) -> str:
        was = f" (was {self.previous})" if self.previous else ""
        checked = self.verification
        line = (
            f"{self.artifact} {self.version} deployed to {self.environment}{was}: {self.location}\n"
            f"verified: sha256 of every file; {checked.get('rows', 0)} recorded test rows "
            f"predicted the same in a fresh process"
        )
        if self.record_error:
            line += f"\nwarning: the deployment was not recorded: {self.record_error}"
        return line


def deploy_bundle(
    bundle_dir: Path, target: Target, *, artifact: str, environment: str, version: str
) -> tuple[str | None, bool, dict[str, Any]]:
    """Put `bundle_dir` on `target`, verify the copy there, switch to it.

    Returns (previous current version, whether an intact earlier copy was reused, verification).
    Raises `VerificationFailed` before any switch; the current version stays as it was.
    """
    previous = target.current(artifact, environment)
    if target.has(artifact, environment, version):
        try:
            with target.local_view(artifact, environment, version) as view:
                checked = bundle.verify_bundle(view)
            target.switch(artifact, environment, version)
            return previous, True, checked
        except VerificationFailed:
            # The copy there was damaged: replace it with the fresh bundle below.
            target.remove(artifact, environment, version)
    target.upload(bundle_dir, artifact, environment, version)
    try:
        with target.local_view(artifact, environment, version) as view:
            checked = bundle.verify_bundle(view)
    except VerificationFailed:
        target.remove(artifact, environment, version)
        raise
    target.switch(artifact, environment, version)
    return previous, False, checked


def _fill(arg: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def run_command(
    argv: list[str],
    bundle_dir: Path,
    *,
    artifact: str,
    environment: str,
    version: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> None:
    values = {
        "bundle": str(bundle_dir),
        "version": version,
        "environment": environment,
        "artifact": artifact,
    }
    # Only the four placeholders are filled: other braces (a JSON argument) pass through as given.
    args = [_fill(a, values) for a in argv]
    if not any("{bundle}" in a for a in argv):
        args.append(str(bundle_dir))
    base = os.environ if env is None else env
    child_env = {**base, **{f"MLOPS_CI_{k.upper()}": v for k, v in values.items()}}
    try:
        proc = subprocess.run(
            args, cwd=cwd, env=child_env, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise ConfigError(f"deploy command {args[0]!r} cannot be started: {exc}") from exc
    if proc.returncode != 0:
        raise ServiceError(
            f"deploy command `{shlex.join(args)}` exited with {proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}"
        )


def _find_version(repo_dir: Path, artifact: str, version: str | None) -> dict[str, Any]:
    """`version` (default: the one registered at HEAD) as `registry.show` lists it."""
    known = registry.show(repo_dir, artifact)["versions"]
    if version is None:
        head = Git(repo_dir).head_sha() or ""
        found = next((v for v in known if v["commit"] == head), None)
        if found is None:
            raise ConfigError(
                f"HEAD ({head[:12]}) has no registered version of {artifact}; run "
                "`mlops-ci promote` first, or pass --version"
            )
        return found
    found = next((v for v in known if v["version"] == version), None)
    if found is None:
        names = ", ".join(v["version"] for v in known) or "none"
        raise RegistryError(
            f"{artifact} has no registered version {version!r} (registered: {names}); "
            "run `mlops-ci promote` first or fetch the tags (`git fetch --tags`)"
        )
    return found


def _environment_for(promote: PromoteSettings, held: list[str]) -> str:
    """The latest of `promote.stages` the version holds, else the automatic stage."""
    for stage in reversed(promote.stages):
        if stage in held:
            return stage
    return promote.auto or promote.stages[0]


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
) -> Deployment:
    """Bundle + deploy + verify + record one version (default: the version at HEAD)."""
    settings = settings or load_settings(repo_dir)
    artifact, configured = settings.artifact, settings.deploy
    found = _find_version(repo_dir, artifact, version)
    version, sha = found["version"], found["commit"]
    environment = (
        environment or configured.environment or _environment_for(settings.promote, found["stages"])
    )
    if target is None:
        # `deploy.command` wins over `deploy.target`.
        target = COMMAND_PREFIX + configured.command if configured.command else configured.target
    where = open_target(target, repo_dir)
    bundle_dir = bundle.build_bundle(repo_dir, run_dir, version=version, sha=sha, settings=settings)
    result = Deployment(artifact, version, sha, environment, target, location=str(bundle_dir))
    try:
        if isinstance(where, list):
            result.verification = bundle.verify_bundle(bundle_dir)
            run_command(
                where,
                bundle_dir,
                artifact=artifact,
                environment=environment,
                version=version,
                cwd=repo_dir,
                env=env,
            )
        else:
            result.location = where.location(artifact, environment, version)
            result.previous, result.reused, result.verification = deploy_bundle(
                bundle_dir, where, artifact=artifact, environment=environment, version=version
            )
    except MlopsCiError as exc:
        result.state = "failure"
        result.verification = {"error": str(exc)}
        documents.write(run_dir, "deployment.json", record(run_dir, result, env, out).to_dict())
        raise
    documents.write(run_dir, "deployment.json", record(run_dir, result, env, out).to_dict())
    return result


@dataclass
class RollbackResult:
    rollback: registry.Rollback
    deployment: Deployment

    def to_dict(self) -> dict[str, Any]:
        return {
            **documents.header("rollback"),
            "registry": self.rollback.to_dict(),
            "deployment": self.deployment.to_dict(),
        }

    def summary(self) -> str:
        r = self.rollback
        return (
            f"{r.artifact} {r.stage}: rolled back from {r.from_version} to {r.to_version} "
            f"(tags {', '.join(r.tags)}{', pushed' if r.pushed else ''})\n"
            + self.deployment.summary()
        )


def rollback(
    repo_dir: Path,
    run_dir: Path,
    *,
    stage: str | None = None,
    target: str | None = None,
    push: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> RollbackResult:
    """Give `stage` back to its previous version (new GTO tags) and redeploy that version."""
    settings = load_settings(repo_dir)
    moved = registry.rollback(repo_dir, stage=stage, push=push, settings=settings)
    deployment = deploy(
        repo_dir,
        run_dir,
        target=target,
        version=moved.to_version,
        environment=moved.stage,
        env=env,
        out=out,
        settings=settings,
    )
    return RollbackResult(moved, deployment)
