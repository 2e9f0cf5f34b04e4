"""A snapshot: metrics, params, plots data and predictions of one revision (or the workspace).

Files tracked by git are read with one `git cat-file --batch`; DVC-tracked outputs (the
predictions file) come from the local DVC cache by the hash `dvc.lock` records at that revision,
and only when that misses, through DVC's API (which can fetch from the remote).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_ci.dvcfile import PlotDef, ProjectFiles, lock_hashes, parse_dvc_yaml
from mlops_ci.errors import ConfigError
from mlops_ci.git import Git

MAX_PLOT_POINTS = 200


@dataclass
class Snapshot:
    rev: str | None  # None: the workspace
    files: ProjectFiles
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> flat key -> value
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    predictions: bytes | None = None
    has_lock: bool = False
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.rev or "workspace"


class RevisionFiles:
    """Reads files of one revision: git objects, the DVC cache, or the working tree.

    Every read is batched and remembered, so one snapshot costs two `git cat-file` processes
    (the pipeline files, then everything they name) and at most one DVC repository.
    """

    def __init__(self, repo_dir: Path, git: Git, rev: str | None) -> None:
        self.repo_dir, self.git, self.rev = repo_dir, git, rev
        self._seen: dict[str, bytes | None] = {}

    def read(self, paths: list[str]) -> dict[str, bytes | None]:
        """Files as git (or the working tree) has them."""
        wanted = [p for p in dict.fromkeys(paths) if p not in self._seen]
        if self.rev is None:
            self._seen.update({p: _read_disk(self.repo_dir / p) for p in wanted})
        elif wanted:
            blobs = self.git.read_many([f"{self.rev}:{p}" for p in wanted])
            self._seen.update({p: blobs[f"{self.rev}:{p}"] for p in wanted})
        return {p: self._seen[p] for p in paths}

    def read_outputs(self, paths: list[str], lock: dict[str, str]) -> dict[str, bytes | None]:
        """Files that may be DVC outputs: git first, then the local DVC cache by the md5 that
        `dvc.lock` records (`lock`), then DVC itself (which can fetch from the remote)."""
        found = self.read(paths)
        if self.rev is None:
            return found
        remote: list[str] = []
        for path in paths:
            md5 = lock.get(path)
            if found[path] is not None or not md5:
                continue  # in git, or not a DVC output at this revision
            cached = _read_disk(
                self.repo_dir / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
            )
            if cached is None:
                remote.append(path)
            found[path] = self._seen[path] = cached
        if remote:
            from mlops_ci.dvc import read_at_revision

            fetched = read_at_revision(self.repo_dir, self.rev, remote)
            found.update(fetched)
            self._seen.update(fetched)
        return found


def _read_disk(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def parse_structured(path: str, data: bytes) -> Any:
    """JSON, YAML or TOML by extension (metrics and params files)."""
    text = data.decode("utf-8")
    if path.endswith(".toml"):
        import tomllib  # Python 3.11+; a TOML metrics file on 3.10 is reported as unreadable

        return tomllib.loads(text)
    if path.endswith(".json"):
        return json.loads(text)  # accepts NaN and Infinity, as DVC does
    return yaml.safe_load(text)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists to `a.b.0.c` keys, as DVC shows them."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and prefix:
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict | list) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def _tracked(flat: dict[str, Any], keys: set[str] | None) -> dict[str, Any]:
    if keys is None:
        return flat
    return {k: v for k, v in flat.items() if any(k == t or k.startswith(t + ".") for t in keys)}


def take_snapshot(
    repo_dir: Path, git: Git, rev: str | None, *, predictions_path: str | None
) -> Snapshot:
    """Read everything `compare` needs from one revision; errors are recorded, not raised."""
    reader = RevisionFiles(repo_dir, git, rev)
    head = reader.read(["dvc.yaml", "dvc.lock"])
    snap = Snapshot(rev=rev, files=ProjectFiles(), has_lock=head["dvc.lock"] is not None)
    if head["dvc.yaml"] is None:
        return snap
    try:
        snap.files = parse_dvc_yaml(head["dvc.yaml"])
        lock = lock_hashes(head["dvc.lock"])
    except ConfigError as exc:
        snap.errors.append({"file": "dvc.yaml", "revision": snap.label, "message": str(exc)})
        return snap
    files = snap.files
    plot_files = [path for plot in files.plots for path in plot.y]
    outputs = [*files.metrics, *plot_files, *([predictions_path] if predictions_path else [])]
    contents = reader.read([*files.params, *outputs])  # one batch for everything named
    contents.update(reader.read_outputs(outputs, lock))
    for path in files.metrics:
        if contents[path] is None:
            continue
        try:
            snap.metrics[path] = flatten(parse_structured(path, contents[path]))
        except (ValueError, yaml.YAMLError, ImportError) as exc:
            snap.errors.append(
                {"file": path, "revision": snap.label, "message": f"not valid metrics: {exc}"}
            )
    for path, keys in files.params.items():
        if contents[path] is None:
            continue
        try:
            snap.params[path] = _tracked(flatten(parse_structured(path, contents[path])), keys)
        except (ValueError, yaml.YAMLError, ImportError) as exc:
            snap.errors.append(
                {"file": path, "revision": snap.label, "message": f"not valid params: {exc}"}
            )
    if predictions_path:
        snap.predictions = contents[predictions_path]
    for plot in files.plots:
        rows = _plot_rows(plot, contents)
        if rows is not None:
            snap.plots[plot.id] = rows
    return snap


def _plot_rows(plot: PlotDef, contents: dict[str, bytes | None]) -> list[dict[str, Any]] | None:
    if not plot.x or len(plot.y) != 1:
        return None
    ((path, fields),) = plot.y.items()
    data = contents.get(path)
    if not fields or data is None:
        return None
    try:
        rows = _table(path, data)
    except (ValueError, UnicodeDecodeError, csv.Error):
        return None
    if plot.template == "confusion":
        return _confusion(rows, plot.x, fields[0])
    keep = [plot.x, *fields]
    points = [{k: _number(r.get(k)) for k in keep} for r in rows if all(k in r for k in keep)]
    return thin(points)


def _table(path: str, data: bytes) -> list[dict[str, Any]]:
    if path.endswith((".csv", ".tsv")):
        dialect = "excel-tab" if path.endswith(".tsv") else "excel"
        return list(csv.DictReader(io.StringIO(data.decode("utf-8")), dialect=dialect))
    parsed = parse_structured(path, data)
    if isinstance(parsed, dict):
        parsed = next((v for v in parsed.values() if isinstance(v, list)), [])
    return [r for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []


def _confusion(rows: list[dict[str, Any]], actual: str, predicted: str) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (str(row.get(actual)), str(row.get(predicted)))
        counts[key] = counts.get(key, 0) + 1
    return [{"actual": a, "predicted": p, "count": n} for (a, p), n in sorted(counts.items())]


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def thin(rows: list[dict[str, Any]], limit: int = MAX_PLOT_POINTS) -> list[dict[str, Any]]:
    if len(rows) <= limit:
        return rows
    step = (len(rows) - 1) / (limit - 1)
    return [rows[round(i * step)] for i in range(limit)]
