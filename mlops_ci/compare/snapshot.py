"""A snapshot: metrics, params, plots and predictions of one revision (or the workspace).

What is read equals what DVC's own commands read (`dvc metrics/params/plots diff`): the same
declarations (`dvcfile`), the same parsers, directories expanded, files inside directory
outputs found through their `.dir` manifest. The fast path: files tracked by git come from one
`git cat-file --batch`, DVC outputs from the local cache by the hash the revision records;
only what the cache lacks is fetched from the DVC remote (`dvc.fetch_objects`). A file declared
but unreadable is an error naming the file, the revision and why, never silently absent.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci.documents import parse_bounded
from mlops_ci.ci.untrusted.paths import (
    MAX_LINK_HOPS,
    PathOutside,
    link_target,
    read_workspace_file,
)
from mlops_ci.compare import plot_data
from mlops_ci.compare.confusion_rows import ConfusionFile, confusion_files
from mlops_ci.compare.plot_data import short as _short
from mlops_ci.project import dvcfile
from mlops_ci.project.dvcfile import Declarations, LockEntry, parse_structured
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git

# Neither in git nor recorded as an output at the revision: never produced there.
NOT_PRODUCED = "not in git and no dvc.lock or .dvc file records it at this revision"
# DVC reads a `cache: false` output at a revision from git only (`dvc metrics diff` shows null),
# even when its object sits in the local cache (the run-cache keeps one): a fresh clone has
# neither, so reading it from the cache would make local and CI verdicts differ.
UNCACHED_NOT_IN_GIT = (
    "declared `cache: false` and not committed to git at this revision, so DVC cannot read it "
    "there (nor can a fresh clone): commit it (take it out of .gitignore and `git add` it), or "
    "drop `cache: false` and `dvc push` it"
)


@dataclass
class Snapshot:
    rev: str | None  # None: the workspace
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> flat key -> value
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> plot entry
    predictions: bytes | None = None
    has_lock: bool = False
    declared_metrics: set[str] = field(default_factory=set)  # metrics files at this revision
    predictions_missing: str | None = None  # why the predictions file could not be read
    # Without a predictions file: the data files of its confusion plots (per-sample rows).
    confusion: dict[str, ConfusionFile] = field(default_factory=dict, repr=False)
    absent: list[str] = field(default_factory=list)  # declared metrics files never produced
    errors: list[dict[str, str]] = field(default_factory=list)
    broken: bool = False  # its declarations could not be read: nothing of it is known
    # The revision's reader, declarations read: later readers (the data section) reuse it.
    files: RevisionFiles | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return self.rev or "workspace"

    def unreadable(self, path: str) -> bool:
        """Whether `path`, or a declared directory holding it, could not be read."""
        return self.broken or dvcfile.at_or_under(path, (e["file"] for e in self.errors))


@dataclass(frozen=True)
class Project:
    """Where the DVC project sits: its root directory and its path inside the git repository."""

    git_top: Path
    root: Path
    prefix: str  # "" when the DVC project is the repository's top level

    @classmethod
    def find(cls, start: Path, git_top: Path) -> Project:
        """The DVC project containing `start` (the nearest directory with `.dvc/`, as DVC finds
        it), else the repository's top level."""
        here = start.resolve()
        top = git_top.resolve()
        while True:
            if (here / ".dvc").is_dir() or here == top or here.parent == here:
                break
            here = here.parent
        root = here if (here / ".dvc").is_dir() else top
        prefix = "" if root == top else root.relative_to(top).as_posix()
        return cls(top, root, prefix)

    @functools.cached_property
    def git(self) -> Git:
        """One `Git` for everything read of this project: git's answers and its `cat-file`
        process are shared by the revisions, the policy and the data section."""
        return Git(self.git_top)


class RevisionFiles:
    """Reads the files of one revision of the project: git objects, the DVC cache (directory
    outputs through their manifests), the DVC remote, or the working tree."""

    def __init__(self, project: Project, rev: str | None, fetch: Any = None) -> None:
        self.project, self.rev = project, rev
        self.git = project.git
        self.fetch = fetch  # md5s -> {md5: bytes | None} and {md5: why}; None: no remote tried
        self._links: set[str] | None = None  # top-level paths of tracked symlinks, when asked
        self.why: dict[str, str] = {}  # path -> why it could not be read
        top_files = self.git.list_files(rev, project.prefix)
        cut = len(project.prefix) + 1 if project.prefix else 0
        files = [p[cut:] for p in top_files]
        self._ignores: list[tuple[str, Any]] = []  # (directory, its .dvcignore patterns)
        nested = {p[: -len("/.dvc/config")] for p in files if p.endswith("/.dvc/config")}
        files = [p for p in files if not any(p.startswith(n + "/") for n in nested)]
        self.files = self._not_ignored(files)
        self.tracked = set(self.files)
        self.outs: dict[str, str] = {}  # output path -> md5 (`.dir` for directories)
        self.uncached: set[str] = set()  # outputs declared `cache: false` (read_declarations)
        self.manifests: dict[str, dict[str, str] | None] = {}
        self.declarations: Declarations | None = None  # once `read_declarations` has run
        self._cache_dirs = _cache_dirs(project.root)

    def _not_ignored(self, files: list[str]) -> list[str]:
        """What `.dvcignore` files leave for DVC to see (gitignore patterns, each file for its
        own directory, as dvc/ignore.py applies them)."""
        ignores = sorted(p for p in files if posixpath.basename(p) == ".dvcignore")
        texts = self._read_plain(ignores) if ignores else {}
        patterns = {
            path: lines
            for path in ignores
            if (lines := (texts.get(path) or b"").decode("utf-8", "replace").splitlines())
            and any(line.strip() and not line.startswith("#") for line in lines)
        }  # `dvc init` writes one of comments only: nothing to match, nothing to import
        if not patterns:
            return files
        import pathspec

        for path, lines in patterns.items():
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
            self._ignores.append((posixpath.dirname(path), spec))
        return self._visible(files)

    def visible(self, files: list[str]) -> list[str]:
        """The project-relative `files` DVC sees: those no `.dvcignore` matches."""
        return self._visible(files)

    def _visible(self, files: list[str]) -> list[str]:
        for base, spec in self._ignores:
            files = [
                f
                for f in files
                if (base and not f.startswith(base + "/"))
                or not spec.match_file(f[len(base) + 1 :] if base else f)
            ]
        return files

    def _read_plain(self, paths: list[str]) -> dict[str, bytes | None]:
        if self.rev is None:
            return {p: self._read_workspace(p) for p in paths}
        return self._read_git(paths)

    def _read_workspace(self, path: str) -> bytes | None:
        """A workspace file, only when it resolves inside the repository (untrusted.paths)."""
        try:
            return read_workspace_file(self.project.git_top, self.project.root / path, path)
        except PathOutside as exc:
            self.why[path] = str(exc)
            return None

    def _read_git(self, paths: list[str]) -> dict[str, bytes | None]:
        """Blobs of tracked files; a tracked symlink followed within the revision's tree, only
        while it stays inside the repository (untrusted.paths.link_target)."""
        assert self.rev is not None
        specs = {p: f"{self.rev}:{self._git_path(p)}" for p in paths}
        blobs = self.git.read_many(list(specs.values()))
        found = {p: blobs.get(spec) for p, spec in specs.items()}
        if self._links is None:
            self._links = set(self.git.symlinks(self.rev, self.project.prefix))
        for p in paths:
            top_path = self._git_path(p)
            hops = 0
            try:
                while top_path in self._links and found[p] is not None:
                    if hops == MAX_LINK_HOPS:
                        raise PathOutside(f"{p} is a chain of more than {MAX_LINK_HOPS} symlinks")
                    top_path = link_target(top_path, found[p] or b"")
                    found[p] = self.git.show(self.rev, top_path)
                    hops += 1
            except PathOutside as exc:
                found[p] = None
                self.why[p] = str(exc)
        return found

    # --- listing ---------------------------------------------------------------------------

    def dvc_files(self) -> tuple[list[str], list[str], list[str]]:
        """The revision's `dvc.yaml` files, the `dvc.lock` beside each, and its `.dvc` files."""
        pipelines = [p for p in self.files if posixpath.basename(p) == "dvc.yaml"]
        if self.rev is None and (self.project.root / "dvc.yaml").is_file():
            pipelines = list(dict.fromkeys(["dvc.yaml", *pipelines]))
        locks = [posixpath.join(posixpath.dirname(p), "dvc.lock") for p in pipelines]
        dotdvc = [p for p in self.files if p.endswith(".dvc") and not p.startswith(".dvc/")]
        return pipelines, locks, dotdvc

    def exists(self, path: str) -> bool:
        if self.rev is None and (self.project.root / path).is_file():
            return True
        if self.rev is None:  # an output missing from the workspace: DVC reads its cache
            return self._md5(path) is not None
        return path in self.tracked or self._md5(path) is not None

    def expand(self, path: str) -> list[str]:
        """A declared path as the files DVC would read: every file of a directory (from its
        manifest when the directory is an output the workspace lacks, as DVC reads it)."""
        if self.rev is None:
            full = self.project.root / path
            if full.is_dir():
                found = [
                    (Path(d) / name).relative_to(self.project.root).as_posix()
                    for d, _dirs, names in os.walk(full)
                    for name in names
                ]
                return sorted(self._visible(found))
            if full.exists():
                return [path]
        inside = sorted(p for p in self.tracked if p.startswith(path + "/")) if self.rev else []
        md5 = self.outs.get(path)
        if md5 and md5.endswith(".dir"):
            inside += [f"{path}/{rel}" for rel in sorted(self._manifest(md5) or {})]
        else:
            parent, manifest = self._parent_manifest(path)
            if manifest is not None and parent is not None:
                rel = path[len(parent) + 1 :]
                inside += [f"{parent}/{r}" for r in sorted(manifest) if r.startswith(rel + "/")]
        return sorted(set(inside)) or [path]

    # --- reading ---------------------------------------------------------------------------

    def read(self, paths: list[str]) -> dict[str, bytes | None]:
        """The bytes of each path at this revision; None (and `why[path]`) when unreadable."""
        paths = list(dict.fromkeys(paths))
        found: dict[str, bytes | None]
        if self.rev is None:
            # An output the workspace lacks is read from the cache (or the remote) by the hash
            # the workspace's dvc.lock records, as DVC's filesystem reads it; a path that
            # leaves the repository is never read, from anywhere.
            found = {}
            for p in paths:
                data = self._read_workspace(p)
                if data is not None or p in self.why:
                    found[p] = data
        else:
            found = self._read_git([p for p in paths if p in self.tracked])
        wanted = {p: self._md5(p) for p in paths if p not in found}
        for p, md5 in wanted.items():
            if md5 is None:
                found[p] = None
                self.why[p] = self._why_absent(p)
            elif self._uncached(p):
                wanted[p], found[p] = None, None
                self.why[p] = UNCACHED_NOT_IN_GIT
        objects = self._objects({md5 for md5 in wanted.values() if md5})
        for p, md5 in wanted.items():
            if md5:
                found[p] = objects.get(md5)
                if found[p] is None:
                    self.why[p] = self.why.get(md5, "not in the local DVC cache")
        return found

    def local_file(self, path: str) -> Path | None:
        """The file on this machine that holds `path` at this revision (the working tree, or
        its object in the local DVC cache), so a large table can be streamed; None when it is
        a git object or must come from the remote (`read` it)."""
        if self.rev is None:
            full = self.project.root / path
            return full if full.is_file() and self._inside(full) else None
        md5 = None if path in self.tracked else self._md5(path)
        if md5 is None:
            return None
        for cache in self._cache_dirs:
            for found in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
                if found.is_file() and self._inside(found):
                    return found
        return None

    def _inside(self, path: Path) -> bool:
        """Whether `path`, every symlink resolved, lies inside the repository. Anything else
        (a symlink out, a cache elsewhere) is left to `read`, which checks what it reads."""
        top = Path(os.path.realpath(self.project.git_top))
        real = Path(os.path.realpath(path))
        return real == top or top in real.parents

    def _uncached(self, path: str) -> bool:
        return dvcfile.at_or_under(path, self.uncached)

    def _git_path(self, path: str) -> str:
        return f"{self.project.prefix}/{path}" if self.project.prefix else path

    def _md5(self, path: str) -> str | None:
        md5 = self.outs.get(path)
        if md5 and not md5.endswith(".dir"):
            return md5
        parent, manifest = self._parent_manifest(path)
        if parent is None or manifest is None:
            return None
        return manifest.get(path[len(parent) + 1 :])

    def _why_absent(self, path: str) -> str:
        """Why a path has no object: never produced, or a directory output (or a file inside
        one) whose manifest cannot be read (then the manifest's reason)."""
        parent = path
        while parent:
            md5 = self.outs.get(parent)
            if md5 and md5.endswith(".dir") and self.manifests.get(md5) is None:
                reason = self.why.get(md5, "unreadable")
                if parent == path:
                    return f"the directory output {path} cannot be listed: its manifest is {reason}"
                return f"inside the directory output {parent}, which is {reason}"
            parent = posixpath.dirname(parent)
        return "missing in the workspace" if self.rev is None else NOT_PRODUCED

    def _parent_manifest(self, path: str) -> tuple[str | None, dict[str, str] | None]:
        parent = posixpath.dirname(path)
        while parent:
            md5 = self.outs.get(parent)
            if md5:
                return parent, self._manifest(md5) if md5.endswith(".dir") else None
            parent = posixpath.dirname(parent)
        return None, None

    def _manifest(self, md5: str) -> dict[str, str] | None:
        """A directory output's file list (relpath -> md5), from its `.dir` object."""
        if md5 not in self.manifests:
            raw = self._objects({md5}).get(md5)
            try:
                entries = json.loads(raw) if raw is not None else None
                self.manifests[md5] = (
                    {str(e["relpath"]): str(e["md5"]) for e in entries}
                    if entries is not None
                    else None
                )
            except (ValueError, KeyError, TypeError):
                self.manifests[md5] = None
                self.why[md5] = "its directory manifest in the DVC cache is corrupt"
        return self.manifests[md5]

    def _objects(self, md5s: set[str]) -> dict[str, bytes | None]:
        found = {md5: self._cached(md5) for md5 in md5s}
        missing = sorted(m for m, data in found.items() if data is None)
        if missing and self.fetch is not None:
            fetched, why = self.fetch(missing)
            found.update(fetched)
            self.why.update(why)
        elif missing:
            self.why.update(dict.fromkeys(missing, "not in the local DVC cache"))
        return found

    def in_local_cache(self, md5: str) -> bool:
        """Whether the object is in the local DVC cache (what `dvc diff` checks; no remote)."""
        return any(
            path.is_file()
            for cache in self._cache_dirs
            for path in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:])
        )

    def cached_manifest(self, md5: str) -> dict[str, str] | None:
        """A directory output's manifest from the local cache only, as DVC's index reads it."""
        if md5 in self.manifests:
            return self.manifests[md5] if self.in_local_cache(md5) else None
        return self._manifest(md5) if self.in_local_cache(md5) else None

    def _cached(self, md5: str) -> bytes | None:
        for cache in self._cache_dirs:
            for path in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
                data = _read_disk(path)
                if data is not None:
                    return data
        return None


def _cache_dirs(root: Path) -> list[Path]:
    """The local cache: `cache.dir` from the project's config (local config first), else
    `.dvc/cache`, as DVC resolves it (relative to the config file's directory)."""
    import configparser

    dirs: list[Path] = []
    for name in ("config.local", "config"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read(root / ".dvc" / name)
            value = parser.get("cache", "dir", fallback=None)
        except configparser.Error:
            value = None
        if value:
            path = Path(os.path.expanduser(value))
            dirs.append(path if path.is_absolute() else (root / ".dvc" / path).resolve())
    dirs.append(root / ".dvc" / "cache")
    return dirs


def _read_disk(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


# --- declarations at a revision --------------------------------------------------------------


def read_declarations(reader: RevisionFiles, label: str) -> tuple[Declarations, bool]:
    """Parse every `dvc.yaml`, `dvc.lock` and `.dvc` file of the revision; fills `reader.outs`.
    Returns the declarations and whether any `dvc.lock` exists."""
    pipelines, locks, dotdvc = reader.dvc_files()
    texts = reader.read([*pipelines, *locks, *dotdvc])
    decl = Declarations()
    has_lock = False
    for path, lock in zip(pipelines, locks, strict=True):
        text = texts.get(path)
        if text is None:
            continue
        data = dvcfile.load_pipeline_yaml(text, path) or {}
        if not dvcfile.plainly_valid(data):
            from mlops_ci.project.dvc import check_pipeline_schema

            check_pipeline_schema(data, path)
        if dvcfile.is_templated(data, text):
            from mlops_ci.project.dvc import resolve_templated

            data, tracked = resolve_templated(reader.project.root, reader.rev, path)
            decl.templated = True
            for file, keys in tracked.items():
                if file not in decl.params:
                    decl.add_params(file, keys)
        dvcfile.declare(decl, path, data)
        if texts.get(lock) is not None:
            has_lock = True
            wdirs = dvcfile.stage_wdirs(data, path)
            for entry in dvcfile.lock_entries(texts[lock], posixpath.dirname(path), wdirs):
                _add_out(reader, entry)
    for path in dotdvc:
        if texts.get(path) is not None:
            for entry in dvcfile.dvcfile_entries(texts[path], path):
                _add_out(reader, entry)
    reader.uncached = decl.uncached
    reader.declarations = dvcfile.finish(decl, reader.exists(dvcfile.DEFAULT_PARAMS_FILE))
    return reader.declarations, has_lock


def _add_out(reader: RevisionFiles, entry: LockEntry) -> None:
    if entry.role == "out" and entry.md5:
        reader.outs[entry.path] = entry.md5


# --- the snapshot ------------------------------------------------------------------------------


def take_snapshot(
    project: Project, rev: str | None, *, predictions_path: str | None, fetch: Any = None
) -> Snapshot:
    """Read everything `compare` needs from one revision; errors are recorded, not raised."""
    snap = Snapshot(rev=rev)
    reader = RevisionFiles(project, rev, fetch)
    try:
        decl, snap.has_lock = read_declarations(reader, snap.label)
    except ConfigError as exc:
        # Nothing of this revision can be read: every metric of it is unknown, as DVC reports
        # a load error for the whole revision.
        snap.errors.append({"file": "dvc.yaml", "revision": snap.label, "message": str(exc)})
        snap.broken = True
        return snap
    snap.files = reader
    metric_files = [f for path in decl.metrics for f in reader.expand(path)]
    param_files = {f: keys for path, keys in decl.params.items() for f in reader.expand(path)}
    plot_defs = plot_data.plot_defs(
        reader,
        decl,
        lambda path, why: snap.errors.append(
            {"file": path, "revision": snap.label, "message": why}
        ),
    )
    plot_files = [f for plot in plot_defs for f in (*plot.files, *plot.x_files)]
    wanted = [*metric_files, *param_files, *plot_files]
    contents = reader.read([*wanted, *([predictions_path] if predictions_path else [])])
    snap.declared_metrics = set(metric_files)

    def fail(path: str, message: str) -> None:
        snap.errors.append({"file": path, "revision": snap.label, "message": message})

    for path in metric_files:
        data = contents.get(path)
        if data is None and reader.why.get(path) == NOT_PRODUCED:
            snap.absent.append(path)  # declared, never produced here: its metrics are new
            continue
        if data is None:
            fail(path, f"declared metrics file cannot be read: {reader.why.get(path, 'unknown')}")
            continue
        try:
            snap.metrics[path] = flatten(
                extract_metrics(parse_bounded(path, data, parse_structured))
            )
        except (ValueError, UnicodeDecodeError, ImportError, RecursionError) as exc:
            fail(path, f"not valid metrics: {_short(exc)}")
        except Exception as exc:  # ruamel's own errors: the file is not valid YAML
            fail(path, f"not valid metrics: {_short(exc)}")
    for path, keys in param_files.items():
        data = contents.get(path)
        if data is None:
            if reader.why.get(path) != NOT_PRODUCED or keys:
                fail(path, f"params file cannot be read: {reader.why.get(path, 'unknown')}")
            continue
        try:
            snap.params[path] = flatten(select(parse_bounded(path, data, parse_structured), keys))
        except Exception as exc:  # any parser's error: the file is not valid
            fail(path, f"not valid params: {_short(exc)}")
    if predictions_path:
        snap.predictions = contents.get(predictions_path)
        if snap.predictions is None:
            snap.predictions_missing = reader.why.get(predictions_path, "unknown")
    for plot in plot_defs:
        snap.plots[plot.id] = plot_data.plot_entry(plot, contents)
        for file, problem in snap.plots[plot.id].pop("problems", {}).items():
            why = reader.why.get(file)
            if why != NOT_PRODUCED:  # declared and never produced here: absent, not unreadable
                fail(file, f"plot data cannot be read: {problem or why or 'unknown'}")
                snap.plots[plot.id]["unreadable"] = True
    if not predictions_path:
        snap.confusion = confusion_files(plot_defs, contents, snap.unreadable)
    return snap


def extract_metrics(data: Any) -> Any:
    """DVC's `_extract_metrics`: numbers and strings (and booleans) stay, lists and other
    values are dropped, and so is a mapping left empty."""
    if isinstance(data, int | float | str):
        return data
    if not isinstance(data, dict):
        return None
    kept = {}
    for key, value in data.items():
        inner = extract_metrics(value)
        if inner not in (None, {}):
            kept[key] = inner
    return kept


def select(data: Any, keys: list[str]) -> Any:
    """The tracked keys of a params file (`a.b` paths), whole when none are named (dpath, as
    DVC's read_param_file)."""
    if not keys or not isinstance(data, dict):
        return data
    import dpath

    out: dict[str, Any] = {}
    for key in dict.fromkeys(keys):
        dpath.merge(out, dpath.search(data, key, separator="."), separator=".")
    return out


def flatten(data: Any) -> dict[str, Any]:
    """Nested mappings to `a.b.c` keys, as DVC's `flatten` (lists stay whole); a file that is
    one value has the key ""."""
    if not isinstance(data, dict):
        return {"": data} if data not in (None, {}) else {}
    flat: dict[str, Any] = {}

    def walk(node: dict[Any, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                walk(value, name)  # an empty mapping has no leaves: dropped, as DVC does
            elif name in flat:
                # `{"a": {"b": 1}, "a.b": 2}`: DVC stops (flatten_dict's ValueError) rather
                # than keep one of the two values.
                raise ValueError(f"duplicated key '{name}'")
            else:
                flat[name] = value

    walk(data, "")
    return flat


def metric_names(snapshots: list[Snapshot]) -> dict[tuple[str, str], str]:
    """(file, key) -> display name: `key` where unique across files, else `file:key` (a file
    that holds one bare value is named by its path)."""
    owners: dict[str, set[str]] = {}
    for snap in snapshots:
        for path, flat in snap.metrics.items():
            for key in flat:
                owners.setdefault(key, set()).add(path)
    return {
        (path, key): (key if len(paths) == 1 else f"{path}:{key}") if key else path
        for key, paths in owners.items()
        for path in paths
    }
