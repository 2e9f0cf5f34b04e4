"""The one place that talks to DVC, in-process through its Python API.

One `Repo` object serves a whole command; nothing here starts a `dvc` subprocess.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.project.errors import (
    ConfigError,
    MlopsCiError,
    NotADvcRepo,
    ServiceError,
    StageFailed,
)

if TYPE_CHECKING:
    from dvc.repo import Repo

    from mlops_ci.project.settings import RemoteSettings

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@dataclass
class StageRun:
    """What happened to one stage during a reproduction."""

    name: str
    status: str  # ran | restored | unchanged | failed | skipped
    duration_s: float = 0.0
    source: str | None = None  # for restored: run-cache | remote
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
        }
        if self.source:
            data["source"] = self.source
        return data


@contextmanager
def open_repo(repo_dir: Path) -> Iterator[Repo]:
    """Open the DVC project at `repo_dir`, turning DVC's errors into ones the user can act on.

    The working directory is the repository's while it is open: DVC resolves `dvc.yaml` and
    stage paths against it, as its own CLI does.
    """
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    previous = os.getcwd()
    try:
        os.chdir(repo_dir)
        repo = Repo(str(repo_dir))
    except NotDvcRepoError as exc:
        os.chdir(previous)
        raise NotADvcRepo(
            f"{repo_dir} is not a DVC project (no .dvc directory); run `dvc init` there first"
        ) from exc
    except DvcException as exc:
        os.chdir(previous)
        raise ConfigError(f"DVC cannot open {repo_dir}: {exc}") from exc
    try:
        yield repo
    except DvcException as exc:
        raise _dvc_error(exc, f"work with the DVC project at {repo_dir}") from exc
    finally:
        repo.close()
        os.chdir(previous)


def resolve_templated(
    root: Path, rev: str | None, path: str
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A templated `dvc.yaml` (`vars`, `${...}`, `foreach`, `matrix`) resolved by DVC's own
    resolver at `rev` (None: the workspace), plus the variables its stages use per file (DVC
    shows those as params too)."""
    from dvc.dvcfile import ProjectFile
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    previous = os.getcwd()
    os.chdir(root)
    try:
        with Repo(str(root), rev=rev) if rev else Repo(str(root)) as repo:
            resolver = ProjectFile(repo, repo.fs.join(repo.root_dir, path)).resolver
            data: dict[str, Any] = resolver.resolve()
            data["metrics"] = resolver.resolve_metrics()
            data["params"] = resolver.resolve_params()
            data["plots"] = resolver.resolve_plots()
            tracked: dict[str, list[str]] = {}
            for per_file in resolver.tracked_vars.values():
                for file, variables in per_file.items():
                    name = os.path.relpath(repo.fs.abspath(file), repo.root_dir)
                    tracked.setdefault(Path(name).as_posix(), []).extend(variables)
    except DvcException as exc:
        raise ConfigError(f"DVC cannot resolve the templating of {path}: {exc}") from exc
    finally:
        os.chdir(previous)
    return data, {file: list(dict.fromkeys(keys)) for file, keys in tracked.items()}


def check_pipeline_schema(data: Any, path: str) -> None:
    """Raise ConfigError when DVC's own schema rejects a parsed `dvc.yaml`: DVC then reads
    nothing of the revision, and neither may a comparison."""
    from dvc.schema import COMPILED_MULTI_STAGE_SCHEMA
    from voluptuous import MultipleInvalid

    try:
        COMPILED_MULTI_STAGE_SCHEMA(data)
    except MultipleInvalid as exc:
        raise ConfigError(f"{path} fails DVC's schema for dvc.yaml: {exc}") from exc


class RemoteFetcher:
    """Reads objects the local cache lacks from the project's DVC remote, by hash.

    The remote is the one the working tree's configuration names (plus `remote:` from
    mlops-ci.yaml or MLOPS_CI_REMOTE_URL), resolved the way DVC's CLI resolves it, whatever
    revision the object belongs to. `failures` collects reasons that are the remote's fault
    (unreachable), as opposed to objects it simply lacks.
    """

    def __init__(
        self, root: Path, remote: RemoteSettings | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.root, self.remote, self.env = root, remote, env or {}
        self.failures: list[str] = []

    def __call__(self, md5s: list[str]) -> tuple[dict[str, bytes | None], dict[str, str]]:
        from dvc.config import NoRemoteError
        from dvc.exceptions import DvcException

        found: dict[str, bytes | None] = dict.fromkeys(md5s)
        why: dict[str, str] = {}
        try:
            with open_repo(self.root) as repo:
                if self.remote is not None:
                    configure_remote(repo, self.remote, self.env)
                try:
                    odbs = [repo.cloud.get_remote_odb(command="fetch")]
                    odbs.append(
                        repo.cloud.get_remote_odb(command="fetch", hash_name="md5-dos2unix")
                    )
                except NoRemoteError:
                    return found, dict.fromkeys(
                        md5s, "not in the local DVC cache, and no DVC remote is configured"
                    )
                name = repo.config["core"].get("remote")
                url = repo.config["remote"].get(name, {}).get("url") or name
                for md5 in md5s:
                    if self.failures:  # unreachable: no point waiting out each retry again
                        why[md5] = self.failures[-1]
                        continue
                    found[md5], reason = _read_object(odbs, md5)
                    if reason == "missing":
                        why[md5] = f"neither in the local DVC cache nor on the DVC remote {url}"
                    elif reason:
                        why[md5] = f"the DVC remote {url} could not be read: {reason}"
                        self.failures.append(why[md5])
        except (DvcException, MlopsCiError) as exc:
            reason = f"the DVC remote could not be opened: {exc}"
            self.failures.append(reason)
            why = dict.fromkeys(md5s, reason)
        return found, why


def _read_object(odbs: list[Any], md5: str) -> tuple[bytes | None, str | None]:
    """One object from the first remote layout that has it: (bytes, None) or (None, why)."""
    for odb in odbs:
        try:
            return odb.fs.cat_file(odb.oid_to_path(md5)), None
        except FileNotFoundError:
            continue
        except Exception as exc:  # each filesystem has its own errors (botocore, fsspec, OS)
            return None, str(exc) or type(exc).__name__
    return None, "missing"


class _StageLog(logging.Handler):
    """Collects DVC's own log lines while one stage reproduces; they tell how it was satisfied."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:
            self.lines.append(str(record.msg))


def _classify(ret: object, lines: list[str]) -> tuple[str, str | None]:
    # DVC reports how it satisfied a stage only through its log: these are its own messages
    # (dvc/stage/__init__.py `reproduce`, dvc/stage/cache.py `restore`, dvc/stage/run.py).
    if any(line.startswith("Running stage") for line in lines):
        return "ran", None
    if any("is cached - skipping run" in line for line in lines):
        return "restored", "run-cache"
    if any(line.startswith("Pulling data for") for line in lines):
        return "restored", "remote"
    if ret is None:
        return "unchanged", None
    return "ran", None


def reproduce(
    repo: Repo,
    *,
    hidden: Collection[str],
    pull: bool = False,
    on_stage_start: Callable[[str], None] | None = None,
) -> list[StageRun]:
    """Reproduce every pipeline in `repo`, reporting per stage how it was satisfied. The
    stages run without the environment variables named in `hidden` (the write tokens).

    On a failing stage raises `StageFailed` after recording it; stages that already ran keep
    their outputs (DVC commits each stage as it finishes).
    """
    from dvc.exceptions import DvcException, ReproductionError
    from dvc.repo.reproduce import _reproduce_stage

    runs: list[StageRun] = []
    dvc_logger = logging.getLogger("dvc")

    def repro_fn(stage: Any, **kwargs: Any) -> Any:
        name = stage.addressing
        if on_stage_start:
            on_stage_start(name)
        handler = _StageLog()
        old_level = dvc_logger.level
        dvc_logger.addHandler(handler)
        dvc_logger.setLevel(logging.INFO)
        start = time.perf_counter()
        try:
            ret = _reproduce_stage(stage, **kwargs)
        except BaseException:
            runs.append(StageRun(name, "failed", time.perf_counter() - start, None, handler.lines))
            raise
        finally:
            dvc_logger.removeHandler(handler)
            dvc_logger.setLevel(old_level)
        status, source = _classify(ret, handler.lines)
        runs.append(StageRun(name, status, time.perf_counter() - start, source, handler.lines))
        return ret

    try:
        with _without(hidden):
            repo.reproduce(pull=pull, repro_fn=repro_fn, run_env=_stage_env())
    except ReproductionError as exc:
        failed = next((r for r in runs if r.status == "failed"), None)
        cause = exc.__cause__ or exc
        error = StageFailed(f"stage '{failed.name if failed else '?'}' failed: {cause}")
        error.stage = failed.name if failed else None
        error.runs = runs
        raise error from exc
    except DvcException as exc:
        raise _dvc_error(exc, "reproduce the pipeline") from exc
    return runs


def set_remote(
    repo: Repo, name: str, url: str, *, endpoint_url: str | None = None, level: str = "local"
) -> None:
    """Make `url` the default remote at `level`: `repo` (committed .dvc/config) or `local`
    (.dvc/config.local, this clone only: what CI passes in from settings or action inputs)."""
    import re

    from dvc.config_schema import RelPath

    if not re.match(r"\w+://", url) and not os.path.isabs(url):
        # DVC keeps a RelPath relative to the config file; a plain str it would take as
        # relative to the current directory.
        url = RelPath(os.path.join(repo.dvc_dir, url))
    remote: dict[str, Any] = {"url": url}
    if endpoint_url:
        remote["endpointurl"] = endpoint_url
    with repo.config.edit(level) as conf:
        conf["remote"][name] = remote
        conf["core"]["remote"] = name


def configure_remote(repo: Repo, remote: RemoteSettings, env: Mapping[str, str]) -> str | None:
    """Point this clone at the shared remote of `mlops-ci.yaml` (or MLOPS_CI_REMOTE_URL);
    returns its URL, or None to keep the project's own DVC configuration."""
    url = env.get("MLOPS_CI_REMOTE_URL") or remote.url
    if not url:
        return None
    endpoint = env.get("MLOPS_CI_REMOTE_ENDPOINT_URL") or remote.endpoint_url
    set_remote(repo, remote.name, url, endpoint_url=endpoint)
    return url


@contextmanager
def _without(hidden: Collection[str]) -> Iterator[None]:
    """Stages run the repository's code and inherit this process's environment (DVC adds
    `run_env` to it and cannot take anything away): none of `hidden` is in it meanwhile."""
    saved = {k: os.environ.pop(k) for k in hidden if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _stage_env() -> dict[str, str]:
    # Stage commands say `python`: let that be the interpreter mlops-ci runs in, so a virtual
    # environment works without being activated.
    bin_dir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] == bin_dir:
        return {}
    return {"PATH": os.pathsep.join([bin_dir, path]) if path else bin_dir}


def pipeline_stages(repo: Repo) -> list[str]:
    """Stage names in the order DVC would run them."""
    import networkx as nx
    from dvc.repo.reproduce import get_active_graph

    # DVC's edges point from a stage to what it depends on: post-order is run order.
    graph = get_active_graph(repo.index.graph)
    return [stage.addressing for stage in nx.dfs_postorder_nodes(graph)]


def push(repo: Repo) -> int:
    """Push outputs and the run-cache to the default remote; returns the number of objects sent."""
    from dvc.exceptions import DvcException

    try:
        return int(repo.push(run_cache=True) or 0)
    except DvcException as exc:
        raise _dvc_error(exc, "push to the DVC remote") from exc


def _dvc_error(exc: Exception, doing: str) -> Exception:
    from dvc.config import NoRemoteError
    from dvc.exceptions import DvcException

    text = str(exc) or type(exc).__name__
    if isinstance(exc, NoRemoteError):
        return ConfigError(
            f"cannot {doing}: no DVC remote is configured; add one with "
            "`dvc remote add -d NAME URL` (or drop --pull/--push)"
        )
    if isinstance(exc, DvcException) and any(
        word in text.lower() for word in ("failed to pull", "failed to push", "connection")
    ):
        return ServiceError(f"cannot {doing}: {text}")
    return ConfigError(f"cannot {doing}: {text}")


def reproduce_stage(repo: Repo, stage: str, *, hidden: Collection[str]) -> None:
    """Run one stage again with its inputs unchanged (`dvc repro --force --single-item`),
    without the environment variables named in `hidden`."""
    from dvc.exceptions import DvcException

    try:
        with _without(hidden):
            repo.reproduce(stage, single_item=True, force=True, run_env=_stage_env())
    except DvcException as exc:
        raise _dvc_error(exc, f"re-run stage '{stage}'") from exc
