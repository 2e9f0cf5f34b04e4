"""The DVC-tracked files and directories that changed between baseline and candidate.

DVC is the oracle: the rows are what `dvc diff BASELINE --json --show-hash` reports for the
workspace (dvc.repo.diff, in-process), with the size and file count DVC records for each
output in `dvc.lock` or its `.dvc` file (`dvc diff` itself prints no sizes). When every hash
those files record is the same at both revisions nothing tracked changed, and DVC is not
opened at all.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from mlops_ci.compare.snapshot import RevisionFiles
from mlops_ci.project import dvcfile
from mlops_ci.project.errors import ConfigError

# A table of a million changed files helps no one; the counts stay exact.
MAX_FILE_ROWS = 500


@dataclass(frozen=True)
class Recorded:
    """One output as `dvc.lock` or a `.dvc` file records it."""

    digest: str | None  # md5 (`.dir` for directories), etag or checksum
    size: int | None
    nfiles: int | None


@dataclass(frozen=True)
class Records:
    """Both revisions' records, read once for the file table, the undeclared tables and each
    table's hash; `error` says why they could not be read (then both are empty)."""

    old: dict[str, Recorded]
    new: dict[str, Recorded]
    error: ConfigError | None = None

    @classmethod
    def read(cls, base: RevisionFiles, cand: RevisionFiles) -> Records:
        try:
            return cls(recorded_outs(base), recorded_outs(cand))
        except ConfigError as exc:
            return cls({}, {}, exc)


def recorded_outs(reader: RevisionFiles) -> dict[str, Recorded]:
    """Output path -> what DVC records for it, from every `dvc.lock` and `.dvc` file."""
    pipelines, locks, dotdvc = reader.dvc_files()
    texts = reader.read([*pipelines, *locks, *dotdvc])
    found: dict[str, Recorded] = {}
    for pipeline, lock in zip(pipelines, locks, strict=True):
        if texts.get(lock) is None:
            continue
        data = dvcfile.load_pipeline_yaml(texts[pipeline] or b"", pipeline)
        wdirs = dvcfile.stage_wdirs(data, pipeline)
        base = posixpath.dirname(pipeline)
        parsed = dvcfile.load_pipeline_yaml(texts[lock], lock) or {}
        stages = parsed.get("stages") if isinstance(parsed, dict) else None
        for name, stage in (stages or {}).items():
            outs = stage.get("outs") if isinstance(stage, dict) else None
            _add(found, outs, wdirs.get(str(name), base) or base)
    for path in dotdvc:
        if texts.get(path) is None:
            continue
        parsed = dvcfile.load_pipeline_yaml(texts[path], path) or {}
        if isinstance(parsed, dict):
            wdir = dvcfile.norm(posixpath.dirname(path), str(parsed.get("wdir", ".")))
            _add(found, parsed.get("outs"), wdir)
    return found


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add(found: dict[str, Recorded], outs: Any, wdir: str) -> None:
    for item in outs if isinstance(outs, list) else []:
        if not (isinstance(item, dict) and item.get("path")):
            continue
        raw = str(item["path"])
        path = raw if "://" in raw else posixpath.normpath(posixpath.join(wdir, raw))
        digest = item.get("md5") or item.get("etag") or item.get("checksum")
        found[path] = Recorded(
            str(digest) if digest else None, _int(item.get("size")), _int(item.get("nfiles"))
        )


def tracked_changed(base: dict[str, Recorded], cand: dict[str, Recorded]) -> bool:
    """Whether any recorded hash differs: the cheap question before asking DVC."""
    return {p: r.digest for p, r in base.items()} != {p: r.digest for p, r in cand.items()}


def file_rows(
    diff: dict[str, list[dict[str, Any]]],
    base: dict[str, Recorded],
    cand: dict[str, Recorded],
) -> list[dict[str, Any]]:
    """`dvc diff`'s entries as rows, each output with its recorded sizes and file counts."""
    rows = []

    def where(entry: dict[str, Any]) -> str:  # `dvc diff`'s order: by (old) path
        path = entry.get("path")
        return str(path.get("old") if isinstance(path, dict) else path)

    # `dvc diff` lists a path whose baseline objects are missing locally twice (modified, and
    # not in cache): one row here, flagged, so the path and its bytes are counted once.
    uncached = {str(e.get("path")) for e in diff.get("not in cache") or [] if isinstance(e, dict)}
    for change in ("added", "deleted", "modified", "renamed", "not in cache"):
        for entry in sorted(diff.get(change) or [], key=where):
            path, digest = entry.get("path"), entry.get("hash")
            if change == "not in cache" and any(
                str(path) in (r["old_path"], r["path"]) for r in rows
            ):
                continue
            old_path = new_path = path
            if isinstance(path, dict):
                old_path, new_path = path.get("old"), path.get("new")
            old_hash = new_hash = digest
            if isinstance(digest, dict):
                old_hash, new_hash = digest.get("old"), digest.get("new")
            if change == "added":
                old_hash = old_path = None
            elif change == "deleted":
                new_hash = new_path = None
            before = base.get(str(old_path).rstrip("/")) if old_path else None
            after = cand.get(str(new_path).rstrip("/")) if new_path else None
            rows.append(
                {
                    "path": str(new_path or old_path),
                    "old_path": str(old_path) if change == "renamed" else None,
                    "change": change,
                    "directory": str(new_path or old_path).endswith("/"),
                    "baseline_hash": old_hash,
                    "candidate_hash": new_hash,
                    "baseline_size": before.size if before else None,
                    "candidate_size": after.size if after else None,
                    "baseline_nfiles": before.nfiles if before else None,
                    "candidate_nfiles": after.nfiles if after else None,
                    "not_in_cache": "baseline" if str(old_path) in uncached else None,
                }
            )
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per change and the recorded bytes on each side (outputs only, not their files)."""
    counts = {c: sum(1 for r in rows if r["change"] == c) for c in ("added", "deleted",
              "modified", "renamed", "not in cache")}  # fmt: skip
    counts["not in cache"] += sum(1 for r in rows if r.get("not_in_cache") and r["change"] !=
                                  "not in cache")  # fmt: skip
    return {
        "counts": counts,
        "baseline_bytes": sum(r["baseline_size"] or 0 for r in rows),
        "candidate_bytes": sum(r["candidate_size"] or 0 for r in rows),
    }
