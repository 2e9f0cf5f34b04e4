"""Deploy targets: where versions live side by side, and the pointer to the current one.

- a local directory (the default `deployments/`): `<dir>/<artifact>/<environment>/versions/<v>/`
  side by side, and a `current` symlink switched atomically (`rename(2)` over the old link);
- any fsspec URL (`s3://bucket/prefix`, `memory://x`): the same layout, with `current.json` as
  the pointer (one object PUT, which S3 makes atomic);
- `command:<program and arguments>`: not a place but a program (`deploy.run_command`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops_ci.ci.documents import now
from mlops_ci.project.errors import ConfigError, ServiceError
from mlops_ci.registry.bundle import CHECKSUMS, remove_stale_work, work_path

COMMAND_PREFIX = "command:"
POINTER = "current"
POINTER_FILE = "current.json"


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
        # Copied beside its place and renamed in: a copy cut short is never a version.
        remove_stale_work(final.parent, f".{version}")
        work = work_path(final.parent, f".{version}")
        shutil.copytree(bundle_dir, work)
        work.rename(final)

    @contextmanager
    def local_view(self, artifact: str, environment: str, version: str) -> Iterator[Path]:
        yield self._version_dir(artifact, environment, version)

    def remove(self, artifact: str, environment: str, version: str) -> None:
        shutil.rmtree(self._version_dir(artifact, environment, version), ignore_errors=True)

    def switch(self, artifact: str, environment: str, version: str) -> None:
        env_dir = self._env_dir(artifact, environment)
        remove_stale_work(env_dir, f".{POINTER}")
        tmp = work_path(env_dir, f".{POINTER}")
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
        path = self._path(artifact, environment, "versions", version, CHECKSUMS)
        with self._errors("list versions"):
            return bool(self.fs.exists(path))

    def upload(self, bundle_dir: Path, artifact: str, environment: str, version: str) -> None:
        dest = self._path(artifact, environment, "versions", version)
        with self._errors("upload the bundle"):
            # SHA256SUMS last: `has` looks for it, so a copy cut short is not taken as whole.
            for path in sorted(bundle_dir.rglob("*"), key=lambda p: (p.name == CHECKSUMS, p)):
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
            "switched_at": now(),
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
