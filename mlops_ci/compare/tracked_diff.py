"""`dvc diff BASELINE --json --show-hash` without opening DVC, from what the two revisions record.

DVC builds a data index of each revision's cached outputs (the hashes `dvc.lock` and `.dvc`
files record, directories expanded through their `.dir` manifests in the local cache) and of
the workspace (hashing the files), then walks both from the outputs down
(dvc.repo.diff, dvc_data.index.diff). When the workspace holds exactly what its records say,
which is what `train` leaves, the records give the same answer at a fraction of the cost:
opening DVC and indexing the workspace take about half a second. This module walks the records
the way DVC walks its indexes; `tests/compare/test_data_files_oracle.py` holds the result to
`dvc diff` itself. Where the workspace may differ from its records (an output missing, of
another size, or not recorded at all) or where DVC's answer depends on its version (a
baseline directory whose manifest is not in the local cache), it answers None and the caller
asks DVC.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from mlops_ci.compare.snapshot import RevisionFiles
from mlops_ci.project import dvcfile
from mlops_ci.project.errors import ConfigError

CHANGES = ("added", "deleted", "modified", "renamed", "not in cache")


@dataclass(frozen=True)
class Entry:
    """One node of a revision's data index: an output, or a file inside a directory output."""

    path: str  # project-relative, no trailing slash
    digest: str | None
    isdir: bool


def tracked_diff(
    base: RevisionFiles, cand: RevisionFiles, recorded: dict[str, Any]
) -> dict[str, list[dict[str, Any]]] | None:
    """What `dvc diff` prints for `base` against the workspace `cand` (both after
    read_declarations), every kind present; None when only DVC can tell (see the module).
    `recorded`: the candidate's output path -> its record (size, nfiles), to check the disk."""
    old_outs = _cached_outputs(base)
    new_outs = _cached_outputs(cand)
    if old_outs is None or new_outs is None or not workspace_matches(cand, new_outs, recorded):
        return None
    if any(d.endswith(".dir") and cand.cached_manifest(d) is None for d in new_outs.values()):
        return None  # DVC lists the workspace directory itself; we would not know its files
    if any(d.endswith(".dir") and base.cached_manifest(d) is None for d in old_outs.values()):
        return None  # what DVC lists inside a directory it cannot open differs by version
    old = {p: Entry(p, d, d.endswith(".dir")) for p, d in old_outs.items()}
    new = {p: Entry(p, d, d.endswith(".dir")) for p, d in new_outs.items()}
    # Outputs, then the files of directory outputs (a manifest is flat: files only).
    changes = _changes(old, new)
    for path in old.keys() | new.keys():
        a, b = old.get(path), new.get(path)
        if (a and a.isdir) or (b and b.isdir):
            changes += _changes(_files_in(base, a), _files_in(cand, b))
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CHANGES}
    for typ, a, b in _renames(changes):
        if typ == "add" and b:
            out["added"].append({"path": _path(b), "hash": b.digest})
        elif typ == "delete" and a:
            out["deleted"].append({"path": _path(a), "hash": a.digest})
        elif typ == "modify" and a and b:
            out["modified"].append({"path": _path(a), "hash": {"old": a.digest, "new": b.digest}})
        elif typ == "rename" and a and b:
            out["renamed"].append({"path": {"old": _path(a), "new": _path(b)}, "hash": a.digest})
        if a and a.digest and not base.in_local_cache(a.digest):
            out["not in cache"].append({"path": _path(a), "hash": a.digest})
    if not any(out.values()):
        return {kind: [] for kind in CHANGES}
    return out


def _path(entry: Entry) -> str:
    return entry.path + "/" if entry.isdir else entry.path


def _changes(
    old: dict[str, Entry], new: dict[str, Entry]
) -> list[tuple[str, Entry | None, Entry | None]]:
    """Each path's change as dvc_data's diff names it (`meta_cmp_key` compares isdir only)."""
    found: list[tuple[str, Entry | None, Entry | None]] = []
    for path in old.keys() | new.keys():
        a, b = old.get(path), new.get(path)
        if a is None or b is None:
            typ = "add" if a is None else "delete"
        else:
            typ = "modify" if (a.isdir != b.isdir or a.digest != b.digest) else "unchanged"
        found.append((typ, a, b))
    return found


def _files_in(reader: RevisionFiles, entry: Entry | None) -> dict[str, Entry]:
    """The files of a directory output, from its manifest in the local cache (checked there
    before: DVC reads no remote here)."""
    if entry is None or not entry.isdir or not entry.digest:
        return {}
    manifest = reader.cached_manifest(entry.digest) or {}
    return {
        f"{entry.path}/{rel}": Entry(f"{entry.path}/{rel}", md5, False)
        for rel, md5 in manifest.items()
    }


def _renames(
    changes: list[tuple[str, Entry | None, Entry | None]],
) -> list[tuple[str, Entry | None, Entry | None]]:
    """An added entry with the hash of a deleted one is a rename, paired in path order."""
    kept = [c for c in changes if c[0] not in ("add", "delete")]
    added = sorted((c for c in changes if c[0] == "add"), key=lambda c: _key(c[2]))
    deleted = sorted((c for c in changes if c[0] == "delete"), key=lambda c: _key(c[1]))
    by_hash: dict[str | None, deque[tuple[str, Entry | None, Entry | None]]] = defaultdict(deque)
    for change in deleted:
        by_hash[change[1].digest if change[1] else None].appendleft(change)
    for change in added:
        digest = change[2].digest if change[2] else None
        queue = by_hash.get(digest) if digest else None
        if queue:
            kept.append(("rename", queue.pop()[1], change[2]))
        else:
            kept.append(change)
    kept.extend(c for queue in by_hash.values() for c in queue)
    return kept


def _key(entry: Entry | None) -> tuple[str, ...]:
    return tuple(entry.path.split("/")) if entry else ()


def _cached_outputs(reader: RevisionFiles) -> dict[str, str] | None:
    """Output path -> recorded hash of every output DVC caches (not `cache: false`); None when
    a declared cached output has no record (DVC would hash the workspace for it)."""
    pipelines, _locks, dotdvc = reader.dvc_files()
    texts = reader.read([*pipelines, *dotdvc])
    uncached: set[str] = set()
    declared: set[str] = set()
    try:
        for path in pipelines:
            data = dvcfile.load_pipeline_yaml(texts.get(path) or b"", path)
            if isinstance(data, dict) and dvcfile.is_templated(data, texts.get(path) or b""):
                return None  # templated outputs: DVC resolves them
            for stage in (
                ((data or {}).get("stages") or {}).values() if isinstance(data, dict) else []
            ):
                if not isinstance(stage, dict):
                    continue
                wdir = dvcfile.norm(posixpath.dirname(path), str(stage.get("wdir", ".")))
                for key in ("outs", "metrics", "plots"):
                    for out, opts in dvcfile.entries(stage.get(key)):
                        target = uncached if _uncached(opts) else declared
                        target.add(dvcfile.norm(wdir, out))
        for path in dotdvc:
            data = dvcfile.load_pipeline_yaml(texts.get(path) or b"", path)
            outs = data.get("outs") if isinstance(data, dict) else None
            wdir = dvcfile.norm(posixpath.dirname(path), str((data or {}).get("wdir", ".")))
            for item in outs if isinstance(outs, list) else []:
                if isinstance(item, dict) and item.get("path"):
                    out = dvcfile.norm(wdir, str(item["path"]))
                    (uncached if item.get("cache") is False else declared).add(out)
    except ConfigError:
        return None
    found = {p: d for p, d in reader.outs.items() if p not in uncached and "://" not in p}
    if declared - set(found):
        return None  # declared but unrecorded: DVC hashes what the workspace holds
    return found


def _uncached(opts: Any) -> bool:
    return isinstance(opts, dict) and opts.get("cache") is False


def workspace_matches(cand: RevisionFiles, outs: dict[str, str], recorded: dict[str, Any]) -> bool:
    """Whether the workspace holds each output as recorded (size, and file count for a
    directory): what `train` leaves. Anything else is DVC's to hash."""
    root = cand.project.root
    for path in outs:
        record = recorded.get(path)
        size = getattr(record, "size", None)
        full = root / path
        if full.is_dir():
            seen = _workspace_files(cand, path)
            total = sum(os.path.getsize(root / f) for f in seen)
            if size is None or (total, len(seen)) != (size, getattr(record, "nfiles", None)):
                return False
        elif not full.is_file() or size is None or full.stat().st_size != size:
            return False
    return True


def workspace_holds(cand: RevisionFiles, path: str, md5: str) -> bool:
    """Whether the workspace's bytes at `path` are what DVC recorded as `md5`: the file's md5,
    or for a directory its files against the manifest in the local cache (none there: not
    known, so False). What `dvc status` finds by hashing, for an output whose record alone
    would decide something; a record written by DVC 2 (md5 of text with CRLF made LF) may
    not match and then counts as edited, which only costs a read."""
    if not md5.endswith(".dir"):
        return _md5(cand, path) == md5
    manifest = cand.cached_manifest(md5)
    if manifest is None or not (cand.project.root / path).is_dir():
        return False
    expected = {posixpath.join(path, rel): digest for rel, digest in manifest.items()}
    if sorted(_workspace_files(cand, path)) != sorted(expected):
        return False
    return all(_md5(cand, name) == digest for name, digest in expected.items())


def _workspace_files(cand: RevisionFiles, path: str) -> list[str]:
    """The files of a workspace directory that DVC hashes (those no `.dvcignore` matches)."""
    full = cand.project.root / path
    found = [
        posixpath.join(path, os.path.relpath(os.path.join(d, n), full).replace(os.sep, "/"))
        for d, _dirs, names in os.walk(full)
        for n in names
    ]
    return cand.visible(found)


def _md5(cand: RevisionFiles, path: str) -> str | None:
    """The md5 of a workspace file, read only when it is a regular file inside the repository
    (as every read of the working tree is); None otherwise."""
    full = cand.local_file(path)
    if full is None:
        return None
    digest = hashlib.md5()  # noqa: S324 - DVC's content hash, not a security boundary
    with open(full, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
