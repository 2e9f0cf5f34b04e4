"""Deploy a version: build its bundle, put it on the target, verify it there, switch, record.

The target is `--target`, else `deploy.command` (as `command:...`) or `deploy.target` of
mlops-ci.yaml; `targets` holds the places. A `command:` target runs a program given the verified
bundle's path (`{bundle}` in the arguments, else appended), with
MLOPS_CI_BUNDLE/VERSION/ENVIRONMENT/ARTIFACT set.

Nothing is switched unless the copy at the target passes `bundle.verify_bundle`; a copy on a
remote target is read back and verified there. A `command:` target is stopped (with everything
it started) after MLOPS_CI_DEPLOY_TIMEOUT seconds (default 1800).

A rollback deploys first and writes its registry tags after: a deploy that fails leaves the
registry as it was, and tags that cannot be written or pushed switch the deployment back.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import signal
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
from mlops_ci.tokens import without_write_tokens


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
    limit = command_timeout(base)
    child_env = {
        **without_write_tokens(base),
        **{f"MLOPS_CI_{k.upper()}": v for k, v in values.items()},
    }
    try:
        # A session of its own, so a timeout (or Ctrl-C) stops whatever the program started too.
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise ConfigError(f"deploy command {args[0]!r} cannot be started: {exc}") from exc
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise ServiceError(
            f"deploy command `{shlex.join(args)}` did not finish within {limit:g} s and was "
            f"stopped with everything it started; raise {TIMEOUT_ENV} if it needs longer"
        ) from None
    except BaseException:
        _stop(proc)
        raise
    if proc.returncode != 0:
        raise ServiceError(
            f"deploy command `{shlex.join(args)}` exited with {proc.returncode}: "
            f"{(stderr or stdout).strip()[-800:]}"
        )


TIMEOUT_ENV = "MLOPS_CI_DEPLOY_TIMEOUT"
DEFAULT_COMMAND_TIMEOUT = 1800.0


def command_timeout(env: Mapping[str, str]) -> float:
    """Seconds a `command:` target may run: MLOPS_CI_DEPLOY_TIMEOUT, default 1800."""
    raw = env.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_COMMAND_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds above 0, not {raw!r}")
    return value


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the command's process group, SIGKILL whatever is left after 5 s, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its children may outlive it and hold the pipes
    proc.communicate()


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


def _use_remote(repo_dir: Path, settings: Settings, env: Mapping[str, str]) -> None:
    """Point this clone at the shared remote (`remote:` or MLOPS_CI_REMOTE_URL), as `train
    --pull` does, so a fresh runner without the DVC cache reads the model from there."""
    if not (env.get("MLOPS_CI_REMOTE_URL") or settings.remote.url):
        return
    from mlops_ci.dvc import configure_remote, open_repo

    with open_repo(repo_dir) as repo:
        configure_remote(repo, settings.remote, env)


def _put(
    repo_dir: Path,
    run_dir: Path,
    settings: Settings,
    target: str,
    *,
    version: str,
    sha: str,
    environment: str,
    env: Mapping[str, str],
) -> Deployment:
    """Bundle, copy, verify and switch one version (nothing recorded); `MlopsCiError` when it
    could not, with the target's current version as it was."""
    artifact = settings.artifact
    where = open_target(target, repo_dir)
    _use_remote(repo_dir, settings, env)
    bundle_dir = bundle.build_bundle(repo_dir, run_dir, version=version, sha=sha, settings=settings)
    result = Deployment(artifact, version, sha, environment, target, location=str(bundle_dir))
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
    return result


def _failed(
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
) -> None:
    failed = Deployment(settings.artifact, version, sha, environment, target, location="")
    failed.state = "failure"
    failed.verification = {"error": str(error)}
    documents.write(run_dir, "deployment.json", record(run_dir, failed, env, out).to_dict())


def _target_of(target: str | None, settings: Settings) -> str:
    if target is not None:
        return target
    # `deploy.command` wins over `deploy.target`.
    configured = settings.deploy
    return COMMAND_PREFIX + configured.command if configured.command else configured.target


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
    env = os.environ if env is None else env
    found = _find_version(repo_dir, settings.artifact, version)
    version, sha = found["version"], found["commit"]
    environment = (
        environment
        or settings.deploy.environment
        or _environment_for(settings.promote, found["stages"])
    )
    target = _target_of(target, settings)
    where = dict(version=version, sha=sha, environment=environment)
    try:
        result = _put(repo_dir, run_dir, settings, target, **where, env=env)
    except MlopsCiError as exc:
        _failed(run_dir, settings, target, **where, error=exc, env=env, out=out)
        raise
    documents.write(run_dir, "deployment.json", record(run_dir, result, env, out).to_dict())
    return result


ROLLBACK_JOURNAL = "rollback.json"


@dataclass
class RollbackResult:
    rollback: registry.Rollback
    deployment: Deployment

    def to_dict(self) -> dict[str, Any]:
        return {
            **documents.header("rollback"),
            "state": "done",
            "registry": self.rollback.to_dict(),
            "deployment": self.deployment.to_dict(),
        }

    def summary(self) -> str:
        r = self.rollback
        if r.tags:
            how = f"tags {', '.join(r.tags)}{', pushed' if r.pushed else ''}"
        else:
            how = "its tags were written by an earlier run that was interrupted"
        return (
            f"{r.artifact} {r.stage}: rolled back from {r.from_version} to {r.to_version} "
            f"({how})\n" + self.deployment.summary()
        )


def _journal(run_dir: Path, state: str, plan: registry.RollbackPlan) -> None:
    """What a rollback is doing, written before it starts: a rerun after a crash finds it."""
    documents.write(
        run_dir,
        ROLLBACK_JOURNAL,
        {
            **documents.header("rollback"),
            "state": state,
            "registry": {
                "artifact": plan.artifact,
                "stage": plan.stage,
                "from_version": plan.current,
                "to_version": plan.previous,
            },
        },
    )


def _interrupted_rollback(run_dir: Path, plan: registry.RollbackPlan) -> tuple[str, str] | None:
    """The version an earlier rollback of this stage moved the registry to before it was
    stopped (its tags landed, the record did not): finish that one, do not roll back again."""
    try:
        journal = documents.read(run_dir, ROLLBACK_JOURNAL, kind="rollback", required=False)
    except MlopsCiError:
        return None
    if not isinstance(journal, dict) or journal.get("state") != "started":
        return None
    moved = journal.get("registry") or {}
    if moved.get("stage") != plan.stage or moved.get("artifact") != plan.artifact:
        return None
    if plan.current is None or moved.get("to_version") != plan.current:
        return None
    return str(moved.get("from_version")), plan.current


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
    """Give `stage` back to its previous version and redeploy that version.

    The order keeps the registry honest: the previous version is deployed first (a failure
    leaves the tags as they were), then the tags are written (and pushed); tags that cannot be
    written switch the deployment back to the version the registry still names. A rerun after
    a crash between the tags and the record finishes that rollback instead of starting another.
    """
    settings = load_settings(repo_dir)
    env = os.environ if env is None else env
    target = _target_of(target, settings)
    plan = registry.plan_rollback(repo_dir, stage=stage, push=push, settings=settings)
    resumed = _interrupted_rollback(run_dir, plan)
    if resumed is not None:
        deployment = deploy(
            repo_dir, run_dir, target=target, version=resumed[1], environment=plan.stage,
            env=env, out=out, settings=settings,
        )  # fmt: skip
        moved = registry.Rollback(plan.artifact, plan.stage, *resumed)
        result = RollbackResult(moved, deployment)
        documents.write(run_dir, ROLLBACK_JOURNAL, result.to_dict())
        return result
    current, previous = plan.require()
    _journal(run_dir, "started", plan)
    back = dict(version=previous, sha=plan.commits[previous], environment=plan.stage)
    try:
        deployed = _put(repo_dir, run_dir, settings, target, **back, env=env)
    except MlopsCiError as exc:
        _failed(run_dir, settings, target, **back, error=exc, env=env, out=out)
        _journal(run_dir, "failed", plan)
        raise type(exc)(
            f"{exc}; the registry is unchanged ({plan.artifact} {plan.stage} is still {current})"
        ) from exc
    try:
        moved = registry.rollback(
            repo_dir, stage=plan.stage, push=push, settings=settings, expect=(current, previous)
        )
    except MlopsCiError as exc:
        raise _undo(repo_dir, run_dir, settings, target, plan, deployed, exc, env, out) from exc
    deployment = record(run_dir, deployed, env, out)
    documents.write(run_dir, "deployment.json", deployment.to_dict())
    result = RollbackResult(moved, deployment)
    documents.write(run_dir, ROLLBACK_JOURNAL, result.to_dict())
    return result


def _undo(
    repo_dir: Path,
    run_dir: Path,
    settings: Settings,
    target: str,
    plan: registry.RollbackPlan,
    deployed: Deployment,
    error: MlopsCiError,
    env: Mapping[str, str],
    out: TextIO | None,
) -> MlopsCiError:
    """The tags could not be written: put back what was live, so the target agrees with the
    registry again; returns the error that says which state it left."""
    current = plan.current or ""
    live = deployed.previous if deployed.previous in plan.commits else current
    try:
        _put(
            repo_dir, run_dir, settings, target, version=live, sha=plan.commits[live],
            environment=plan.stage, env=env,
        )  # fmt: skip
    except MlopsCiError as undo_error:
        _failed(
            run_dir, settings, target, version=deployed.version, sha=deployed.sha,
            environment=plan.stage, error=error, env=env, out=out,
        )  # fmt: skip
        return type(error)(
            f"{error}; switching the deployment back to {live} failed too ({undo_error}): "
            f"{plan.stage} now serves {deployed.version} while the registry names {current}; "
            "rerun the rollback once the registry and the target answer"
        )
    _failed(
        run_dir, settings, target, version=deployed.version, sha=deployed.sha,
        environment=plan.stage, error=error, env=env, out=out,
    )  # fmt: skip
    _journal(run_dir, "failed", plan)
    return type(error)(
        f"{error}; the deployment was switched back to {live}, so the registry "
        f"({plan.stage}: {current}) and the target agree as before"
    )
