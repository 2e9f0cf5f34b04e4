"""What `dvc.yaml` declares (metrics, params, plots) and what `dvc.lock` records, read as YAML.

`compare` reads these at two revisions with one `git cat-file` call; importing DVC alone costs
more than the whole comparison. Projects that use DVC's templating (`vars`, `${...}`,
`foreach`, `matrix`) are detected and read through DVC's own API instead (`needs_dvc`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlops_ci.errors import ConfigError

DEFAULT_PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class PlotDef:
    id: str
    title: str
    template: str
    x: str | None
    y: dict[str, list[str]]  # file -> fields


@dataclass
class ProjectFiles:
    metrics: list[str] = field(default_factory=list)
    params: dict[str, set[str] | None] = field(default_factory=dict)  # file -> keys (None: all)
    plots: list[PlotDef] = field(default_factory=list)
    needs_dvc: bool = False

    def add_params(self, file: str, keys: list[str] | None) -> None:
        if keys is None or self.params.get(file, set()) is None:
            self.params[file] = None
        else:
            self.params.setdefault(file, set()).update(keys)  # type: ignore[union-attr]


def _norm(wdir: str, path: str) -> str:
    if "\n" in path or path.startswith("/"):
        raise ConfigError(f"dvc.yaml: path {path!r} must be relative to the repository")
    return (
        posixpath.normpath(posixpath.join(wdir, path)) if wdir != "." else posixpath.normpath(path)
    )


def _entries(value: Any) -> list[tuple[str, Any]]:
    """DVC's list-of-str-or-single-key-dict form as (key, options) pairs."""
    pairs: list[tuple[str, Any]] = []
    for item in value or []:
        if isinstance(item, str):
            pairs.append((item, None))
        elif isinstance(item, dict):
            pairs.extend((str(k), v) for k, v in item.items())
    return pairs


def parse_dvc_yaml(text: bytes | str | None) -> ProjectFiles:
    """The metrics, params and plots files a `dvc.yaml` declares (empty when there is none)."""
    files = ProjectFiles()
    if text is None:
        return files
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"dvc.yaml is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("dvc.yaml must be a mapping with a `stages:` section")
    if "vars" in data or "${" in raw:
        files.needs_dvc = True
    for stage in (data.get("stages") or {}).values():
        if not isinstance(stage, dict):
            continue
        if "foreach" in stage or "matrix" in stage:
            files.needs_dvc = True
            continue
        wdir = str(stage.get("wdir", "."))
        for path, _opts in _entries(stage.get("metrics")):
            files.metrics.append(_norm(wdir, path))
        for key, opts in _entries(stage.get("params")):
            if opts is None and isinstance(key, str) and not _is_params_file(key):
                files.add_params(_norm(wdir, DEFAULT_PARAMS_FILE), [key])
            else:
                keys = [str(k) for k in opts] if isinstance(opts, list) and opts else None
                files.add_params(_norm(wdir, key), keys)
        for path, opts in _entries(stage.get("plots")):
            opts = opts if isinstance(opts, dict) else {}
            files.plots.append(_plot_def(_norm(wdir, path), opts, {_norm(wdir, path): []}))
    for path in data.get("metrics") or []:
        files.metrics.append(_norm(".", str(path)))
    for path in data.get("params") or []:
        files.add_params(_norm(".", str(path)), None)
    for name, opts in _entries(data.get("plots")):
        opts = opts if isinstance(opts, dict) else {}
        files.plots.append(_plot_def(name, opts, _plot_y(name, opts)))
    files.metrics = list(dict.fromkeys(files.metrics))
    return files


def _is_params_file(key: str) -> bool:
    return key.endswith((".yaml", ".yml", ".json", ".toml", ".py"))


def _plot_y(name: str, opts: dict[str, Any]) -> dict[str, list[str]]:
    y = opts.get("y")
    if isinstance(y, dict):
        return {_norm(".", str(f)): ([str(v)] if isinstance(v, str) else [str(i) for i in v or []])
                for f, v in y.items()}  # fmt: skip
    fields = [str(y)] if isinstance(y, str) else [str(v) for v in y or []]
    return {_norm(".", name): fields}


def _plot_def(name: str, opts: dict[str, Any], y: dict[str, list[str]]) -> PlotDef:
    x = opts.get("x")
    return PlotDef(
        id=name,
        title=str(opts.get("title") or name),
        template=str(opts.get("template") or "linear"),
        x=str(x) if isinstance(x, str) else None,
        y=y,
    )


@dataclass(frozen=True)
class LockEntry:
    """One dependency or output of a stage, as `dvc.lock` records it."""

    stage: str
    role: str  # "dep" or "out"
    path: str
    md5: str | None  # directories have `.dir` hashes
    digest: str | None  # the md5, else the etag or checksum DVC records for a cloud path
    size: int | None


def lock_entries(text: bytes | str | None) -> list[LockEntry]:
    """Every dep and out of every stage in a `dvc.lock` (empty when there is none)."""
    if text is None:
        return []
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"dvc.lock is not valid YAML: {exc}") from exc
    stages = data.get("stages") if isinstance(data, dict) else None
    entries = []
    for name, stage in (stages or {}).items():
        for role, key in (("dep", "deps"), ("out", "outs")):
            for item in (stage.get(key) if isinstance(stage, dict) else None) or []:
                if not (isinstance(item, dict) and item.get("path")):
                    continue
                md5 = str(item["md5"]) if item.get("md5") else None
                other = item.get("etag") or item.get("checksum")
                entries.append(
                    LockEntry(
                        stage=str(name),
                        role=role,
                        path=posixpath.normpath(str(item["path"])),
                        md5=md5,
                        digest=md5 or (str(other) if other else None),
                        size=item.get("size"),
                    )
                )
    return entries


def lock_hashes(text: bytes | str | None) -> dict[str, str]:
    """Output path -> md5 from a `dvc.lock` (files only; directories have `.dir` hashes)."""
    return {e.path: e.md5 for e in lock_entries(text) if e.role == "out" and e.md5}
