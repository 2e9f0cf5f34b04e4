"""The tables profiled without being declared: every DVC-tracked CSV, TSV, Parquet or JSON lines
file whose recorded hash changed between baseline and candidate, a file output or a file inside
a directory output (compared by the directories' manifests), up to a byte budget per revision.

DVC's records are the oracle of what changed (the hashes `dvc.lock` and `.dvc` files record,
the manifests in the DVC cache), so nothing is read that did not change.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.compare import data_files
from mlops_ci.compare.snapshot import RevisionFiles
from mlops_ci.project.data_settings import TABLE_SUFFIXES, DataSettings, TableSettings

MAX_TABLES = 100  # tables per comparison.json (its schema's bound)
PREDICTIONS_LEFT_OUT = (
    "the model's predictions (the policy's predictions file), compared by the metrics' "
    "intervals; declare it under data.tables to profile it"
)


@dataclass(frozen=True)
class Candidate:
    path: str
    size: int  # the larger side's bytes, as far as known


def changed_tables(base: RevisionFiles, cand: RevisionFiles) -> list[Candidate]:
    """Table files DVC tracks whose hash differs between the revisions (or that exist at one
    only), in path order."""
    old, new = data_files.recorded_outs(base), data_files.recorded_outs(cand)
    found: list[Candidate] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if "://" in path or (a and b and a.digest == b.digest):
            continue
        digest = (b or a).digest if (b or a) else None  # type: ignore[union-attr]
        if not (digest and digest.endswith(".dir")):
            if path.lower().endswith(TABLE_SUFFIXES):
                size = max((r.size or 0) for r in (a, b) if r is not None)
                found.append(Candidate(path, size))
            continue
        before = _manifest(base, a.digest if a else None)
        after = _manifest(cand, b.digest if b else None)
        for rel in sorted(set(before) | set(after)):
            if before.get(rel) != after.get(rel) and rel.lower().endswith(TABLE_SUFFIXES):
                name = f"{path}/{rel}"
                found.append(Candidate(name, max(_size(base, name), _size(cand, name))))
    return found


def _manifest(reader: RevisionFiles, digest: str | None) -> dict[str, str]:
    if not digest or not digest.endswith(".dir"):
        return {}
    return reader.cached_manifest(digest) or {}


def _size(reader: RevisionFiles, path: str) -> int:
    local = reader.local_file(path)
    return local.stat().st_size if local is not None else 0


def auto_tables(
    base: RevisionFiles,
    cand: RevisionFiles,
    settings: DataSettings,
    declared: list[str],
    *,
    predictions: str | None = None,
) -> tuple[list[TableSettings], list[dict[str, str]]]:
    """The undeclared changed tables to profile, and those left out with the reason.
    The policy's `predictions` file is the model's output, not its data: every change of the
    model changes it, and the metrics' intervals already compare it."""
    if not settings.auto:
        return [], []
    tables: list[TableSettings] = []
    left_out: list[dict[str, str]] = []
    spent = 0
    for found in changed_tables(base, cand):
        if any(found.path == d or found.path.startswith(d.rstrip("/") + "/") for d in declared):
            continue  # declared, or inside a declared directory: read as declared
        if found.path == predictions:
            left_out.append({"path": found.path, "reason": PREDICTIONS_LEFT_OUT})
        elif len(declared) + len(tables) >= MAX_TABLES:
            left_out.append({"path": found.path, "reason": f"over {MAX_TABLES} tables"})
        elif spent + found.size > settings.max_auto_bytes:
            reason = (
                f"{found.size:,} bytes would exceed data.max_auto_bytes "
                f"({settings.max_auto_bytes:,}); declare it under data.tables to profile it"
            )
            left_out.append({"path": found.path, "reason": reason})
        else:
            spent += found.size
            tables.append(TableSettings(path=found.path, auto=True))
    return tables, left_out
