"""Deploy a version: build its bundle, put it on the target, verify it there, switch, record.

Targets (`--target` or `deploy.target` in mlops-ci.yaml):
- a local directory (the default `deployments/`): `<dir>/<artifact>/<environment>/versions/<v>/`
  side by side, and a `current` symlink switched atomically (`rename(2)` over the old link);
- any fsspec URL (`s3://bucket/prefix`, `memory://x`): the same layout, with `current.json` as
  the pointer (one object PUT, which S3 makes atomic); the uploaded copy is read back and verified;
- `command:<program and arguments>`: a program given the verified bundle's path (`{bundle}` in
  the arguments, else appended), with MLOPS_CI_BUNDLE/VERSION/ENVIRONMENT/ARTIFACT set.

Nothing is switched unless the copy at the target passes `bundle.verify_bundle`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from mlops_ci import bundle, documents, registry
from mlops_ci.errors import ConfigError, MlopsCiError, ServiceError, VerificationFailed
from mlops_ci.git import Git

DEFAULT_TARGET = "deployments/"
COMMAND_PREFIX = "command:"
POINTER = "current"
POINTER_FILE = "current.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Target:
    """Where versions live side by side and which one is current, per artifact and environment."""

    url: str

    def current(self, artifact: str, environment: str) -> str | None:
        raise NotImplementedError

    def has(self, artifact: str, environment: str, version: str) -> bool:
        raise NotImplementedError

    def upload(self, bundle_dir: Path, artifact: str, environment: str, version: str) -> None:
        raise NotImplementedError

    @contextmanager
    def local_view(self, artifact: str, environment: str, version: str) -> Iterator[Path]:
        raise NotImplementedError
        yield  # pragma: no cover

    def remove(self, artifact: str, environment: str, version: str) -> None:
        raise NotImplementedError

    def switch(self, artifact: str, environment: str, version: str) -> None:
        raise NotImplementedError

    def location(self, artifact: str, environment: str, version: str) -> str:
        raise NotImplementedError


class LocalTarget(Target):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _env_dir(self, artifact: str, environment: str) -> Path:
        return self.root / artifact / environment

    def _version_dir(self, artifact: str, environment: str, version: str) -> Path:
        return self._env_dir(artifact, environment) / "versions" / version

    def location(self, artifact: str, environment: str, version: str) -> str:
        return str(self._version_dir(artifact, environment, version))

    def current(self, artifact: str, environment: str) -> str | None:
        link = self._env_dir(artifact, environment) / POINTER
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def has(self, artifact: str, environment: str, version: str) -> bool:
        return self._version_dir(artifact, environment, version).is_dir()

    def upload(self, bundle_dir: Path, artifact: str, environment: str, version: str) -> None:
        final = self._version_dir(artifact, environment, version)
        final.parent.mkdir(parents=True, exist_ok=True)
        work = final.parent / f".{version}.{uuid.uuid4().hex[:8]}"
        shutil.copytree(bundle_dir, work)
        work.rename(final)

    @contextmanager
    def local_view(self, artifact: str, environment: str, version: str) -> Iterator[Path]:
        yield self._version_dir(artifact, environment, version)

    def remove(self, artifact: str, environment: str, version: str) -> None:
        shutil.rmtree(self._version_dir(artifact, environment, version), ignore_errors=True)

    def switch(self, artifact: str, environment: str, version: str) -> None:
        env_dir = self._env_dir(artifact, environment)
        tmp = env_dir / f".{POINTER}.{uuid.uuid4().hex[:8]}"
        # Relative, so the whole directory can be moved or mounted elsewhere.
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, env_dir / POINTER)


class FsspecTarget(Target):
    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            # A fresh instance: a cached one would keep an endpoint or credentials of the past.
            self.fs, self.root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True)
        except (ImportError, ValueError) as exc:
            raise ConfigError(
                f"deploy target {url!r} cannot be opened: {exc} (S3 needs `pip install s3fs`)"
            ) from exc

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def location(self, artifact: str, environment: str, version: str) -> str:
        return f"{self.url}/{artifact}/{environment}/versions/{version}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError) as exc:
            raise ServiceError(f"deploy target {self.url}: cannot {doing}: {exc}") from exc

    def current(self, artifact: str, environment: str) -> str | None:
        path = self._path(artifact, environment, POINTER_FILE)
        with self._errors("read the current pointer"):
            if not self.fs.exists(path):
                return None
            return json.loads(self.fs.cat_file(path)).get("version")

    def has(self, artifact: str, environment: str, version: str) -> bool:
        path = self._path(artifact, environment, "versions", version, bundle.CHECKSUMS)
        with self._errors("list versions"):
            return bool(self.fs.exists(path))

    def upload(self, bundle_dir: Path, artifact: str, environment: str, version: str) -> None:
        dest = self._path(artifact, environment, "versions", version)
        with self._errors("upload the bundle"):
            for path in sorted(bundle_dir.rglob("*")):
                if path.is_file():
                    rel = path.relative_to(bundle_dir).as_posix()
                    self.fs.pipe_file(f"{dest}/{rel}", path.read_bytes())
            self.fs.invalidate_cache()

    @contextmanager
    def local_view(self, artifact: str, environment: str, version: str) -> Iterator[Path]:
        src = self._path(artifact, environment, "versions", version)
        with tempfile.TemporaryDirectory(prefix="mlops-ci-verify-") as tmp:
            with self._errors("read the bundle back"):
                for remote in self.fs.find(src):
                    rel = remote[len(src) :].lstrip("/")
                    local = Path(tmp) / rel
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(self.fs.cat_file(remote))
            yield Path(tmp)

    def remove(self, artifact: str, environment: str, version: str) -> None:
        with self._errors("remove a refused upload"):
            self.fs.rm(self._path(artifact, environment, "versions", version), recursive=True)

    def switch(self, artifact: str, environment: str, version: str) -> None:
        pointer = {
            "version": version,
            "path": f"versions/{version}",
            "switched_at": _now(),
        }
        with self._errors("write the current pointer"):
            self.fs.pipe_file(
                self._path(artifact, environment, POINTER_FILE),
                (json.dumps(pointer, indent=2) + "\n").encode(),
            )


def open_target(target: str, repo_dir: Path) -> Target | list[str]:
    """A `Target`, or the argv of a `command:` target."""
    if target.startswith(COMMAND_PREFIX):
        argv = shlex.split(target[len(COMMAND_PREFIX) :])
        if not argv:
            raise ConfigError("a `command:` deploy target needs a program to run")
        return argv
    if target.startswith("file://"):
        return LocalTarget(Path(target[len("file://") :]))
    if "://" in target:
        return FsspecTarget(target)
    path = Path(target)
    return LocalTarget(path if path.is_absolute() else repo_dir / path)


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
    deployed_at: str = field(default_factory=_now)

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
    args = [a.format(**values) if "{" in a else a for a in argv]
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


def _deploy_settings(repo_dir: Path) -> tuple[str, str | None]:
    """The configured target (`deploy.command` wins over `deploy.target`) and environment."""
    from mlops_ci.settings import load_settings

    section = load_settings(repo_dir).deploy
    if section.command:
        return COMMAND_PREFIX + section.command, section.environment
    return section.target or DEFAULT_TARGET, section.environment


def _environment_for(repo_dir: Path, config: registry.PromoteConfig, version: str) -> str:
    held = registry.stages_of(repo_dir, config.artifact, version)
    for stage in reversed(config.stages):
        if stage in held:
            return stage
    return config.auto or config.stages[0]


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
) -> Deployment:
    """Bundle + deploy + verify + record one version (default: the version at HEAD)."""
    config = registry.load_promote_config(repo_dir)
    spec = bundle.load_bundle_spec(repo_dir)
    if version is None:
        head = Git(repo_dir).head_sha() or ""
        version = registry.version_at_commit(repo_dir, config.artifact, head)
        if version is None:
            raise ConfigError(
                f"HEAD ({head[:12]}) has no registered version of {config.artifact}; run "
                "`mlops-ci promote` first, or pass --version"
            )
    sha = registry.version_commit(repo_dir, config.artifact, version)
    configured_target, configured_environment = _deploy_settings(repo_dir)
    environment = (
        environment or configured_environment or _environment_for(repo_dir, config, version)
    )
    target_text = target or configured_target
    where = open_target(target_text, repo_dir)
    bundle_dir = bundle.build_bundle(repo_dir, run_dir, version=version, sha=sha, spec=spec)
    result = Deployment(
        config.artifact, version, sha, environment, target_text, location=str(bundle_dir)
    )
    try:
        if isinstance(where, list):
            result.verification = bundle.verify_bundle(bundle_dir)
            run_command(
                where,
                bundle_dir,
                artifact=config.artifact,
                environment=environment,
                version=version,
                cwd=repo_dir,
                env=env,
            )
        else:
            result.location = where.location(config.artifact, environment, version)
            result.previous, result.reused, result.verification = deploy_bundle(
                bundle_dir,
                where,
                artifact=config.artifact,
                environment=environment,
                version=version,
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
    moved = registry.rollback(repo_dir, stage=stage, push=push)
    deployment = deploy(
        repo_dir,
        run_dir,
        target=target,
        version=moved.to_version,
        environment=moved.stage,
        env=env,
        out=out,
    )
    return RollbackResult(moved, deployment)
