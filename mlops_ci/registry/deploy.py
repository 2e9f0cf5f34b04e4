"""Deploy a version: build its bundle, put it on the target, verify it there, switch.

Recording the deployment on the forge and rolling back are commands (`mlops_ci.commands.deploy`,
`mlops_ci.commands.rollback`); this module never talks to a forge.

The target is `--target`, else `deploy.command` (as `command:...`) or `deploy.target` of
mlops-ci.yaml; `targets` holds the places. A `command:` target runs a program given the verified
bundle's path (`{bundle}` in the arguments, else appended), with
MLOPS_CI_BUNDLE/VERSION/ENVIRONMENT/ARTIFACT set.

Nothing is switched unless the copy at the target passes `bundle.verify_bundle`; a copy on a
remote target is read back and verified there. A `command:` target is stopped (with everything
it started) after MLOPS_CI_DEPLOY_TIMEOUT seconds (default 1800).
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
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.ci.documents import now
from mlops_ci.ci.tokens import without_write_tokens
from mlops_ci.project import gto
from mlops_ci.project.errors import (
    ConfigError,
    RegistryError,
    ServiceError,
    VerificationFailed,
)
from mlops_ci.project.git import Git
from mlops_ci.project.settings import PromoteSettings, Settings
from mlops_ci.registry import bundle
from mlops_ci.registry.targets import COMMAND_PREFIX, Target, open_target


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
    # Why a deploy went ahead without a recorded passing verdict (`deploy --override`).
    override: str | None = None
    # What moved the stage, for a deploy a registry tag started (`deploy --from-tag`).
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("deployment"), **asdict(self)}

    def summary(self) -> str:
        was = f" (was {self.previous})" if self.previous else ""
        checked = self.verification
        how = {  # deploy.verify of mlops-ci.yaml
            "checksums": "",
            "command": f"; {checked.get('command')} passed",
        }.get(
            checked.get("mode", ""),
            f"; {checked.get('rows', 0)} recorded test rows predicted the same in a fresh process",
        )
        line = (
            f"{self.artifact} {self.version} deployed to {self.environment}{was}: {self.location}\n"
            f"verified: sha256 of every file{how}"
        )
        if self.record_error:
            line += f"\nwarning: the deployment was not recorded: {self.record_error}"
        return line


def deploy_bundle(
    bundle_dir: Path,
    target: Target,
    *,
    artifact: str,
    environment: str,
    version: str,
    env: Mapping[str, str],
) -> tuple[str | None, bool, dict[str, Any]]:
    """Put `bundle_dir` on `target`, verify the copy there (in `env`), switch to it.

    Returns (previous current version, whether an intact earlier copy was reused, verification).
    Raises `VerificationFailed` before any switch; the current version stays as it was.
    """
    previous = target.current(artifact, environment)
    if target.has(artifact, environment, version):
        try:
            with target.local_view(artifact, environment, version) as view:
                checked = bundle.verify_bundle(view, env=env)
            target.switch(artifact, environment, version)
            return previous, True, checked
        except VerificationFailed:
            # The copy there was damaged: replace it with the fresh bundle below.
            target.remove(artifact, environment, version)
    target.upload(bundle_dir, artifact, environment, version)
    try:
        with target.local_view(artifact, environment, version) as view:
            checked = bundle.verify_bundle(view, env=env)
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
    env: Mapping[str, str],
) -> None:
    """Run a `command:` target in `env` (without its write tokens), the bundle's facts set."""
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
    limit = command_timeout(env)
    child_env = {
        **without_write_tokens(env),
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


def find_version(repo_dir: Path, artifact: str, version: str | None) -> dict[str, Any]:
    """`version` (default: the one registered at HEAD) as `gto.show` lists it."""
    art = gto.read_artifact(repo_dir, artifact)
    deprecated = gto.deprecation_note(art, artifact)
    if deprecated:
        raise RegistryError(f"nothing to deploy: {deprecated}")
    # A commit that holds a stage without a registration is shown, but it is no version.
    known = [v for v in gto.show_artifact(art, artifact)["versions"] if v["registered"]]
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


def environment_for(promote: PromoteSettings, held: list[str]) -> str:
    """The latest of `promote.stages` the version holds, else the automatic stage."""
    for stage in reversed(promote.stages):
        if stage in held:
            return stage
    return promote.auto or promote.stages[0]


def _use_remote(repo_dir: Path, settings: Settings, env: Mapping[str, str]) -> None:
    """Point this clone at the shared remote (`remote:` or MLOPS_CI_REMOTE_URL), as `train
    --pull` does, so a fresh runner without the DVC cache reads the model from there."""
    if not (env.get("MLOPS_CI_REMOTE_URL") or settings.remote.url):
        return
    from mlops_ci.project.dvc import configure_remote, open_repo

    with open_repo(repo_dir) as repo:
        configure_remote(repo, settings.remote, env)


def put_version(
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
        result.verification = bundle.verify_bundle(bundle_dir, env=env)
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
            bundle_dir, where, artifact=artifact, environment=environment, version=version,
            env=env,
        )  # fmt: skip
    return result


def target_of(target: str | None, settings: Settings) -> str:
    if target is not None:
        return target
    # `deploy.command` wins over `deploy.target`.
    configured = settings.deploy
    return COMMAND_PREFIX + configured.command if configured.command else configured.target
