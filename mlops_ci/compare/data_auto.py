"""The tables profiled without being declared: every DVC-tracked CSV, TSV, Parquet or JSON lines
file whose recorded hash changed between baseline and candidate, a file output or a file inside
a directory output (compared by the directories' manifests), up to a byte budget per revision;
not the model's outputs the report compares elsewhere (`model_outputs`).

DVC's records are the oracle of what changed (the hashes `dvc.lock` and `.dvc` files record,
the manifests in the DVC cache), so nothing is read that did not change.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_ci.compare import data_files
from mlops_ci.compare.snapshot import RevisionFiles
from mlops_ci.project.data_settings import TABLE_SUFFIXES, DataSettings, TableSettings
from mlops_ci.project.dvcfile import at_or_under

MAX_TABLES = 100  # tables per comparison.json (its schema's bound)
# Why a model's output is not profiled, by kind (the `output` of a left-out entry).
MODEL_OUTPUT = {
    "predictions": "the model's predictions (the policy's predictions file), compared by the "
    "metrics' intervals; declare it under data.tables to profile it",
    "plot": "a plot (dvc.yaml declares it), drawn in the report; declare it under data.tables "
    "to profile it",
}


@dataclass(frozen=True)
class Candidate:
    path: str
    size: int  # the larger side's bytes, as far as known


def changed_tables(
    base: RevisionFiles, cand: RevisionFiles, records: data_files.Records
) -> list[Candidate]:
    """Table files DVC tracks whose hash differs between the revisions (or that exist at one
    only), in path order."""
    old, new = records.old, records.new
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


def model_outputs(
    base: RevisionFiles, cand: RevisionFiles, predictions: str | None
) -> dict[str, str]:
    """Paths the report already compares as the model's output, with the reason they are not
    profiled as data: the policy's `predictions` file (the metrics' intervals compare it) and
    whatever DVC declares as plots at either revision (a plotted directory covers its files,
    DVCLive's step logs among them). Every change of the model changes them; profiling them
    would report the model's change as drift in its data."""
    found: dict[str, str] = {}  # path -> "plot" or "predictions"
    for reader in (base, cand):
        decl = reader.declarations
        for _config, name, props, path_id in decl.plots if decl is not None else []:
            files = [name] if path_id else [
                f for axis in ("y", "x") if isinstance(props.get(axis), dict) for f in props[axis]
            ]  # fmt: skip
            found.update(dict.fromkeys(files, "plot"))
    if predictions:
        found[predictions] = "predictions"
    return found


def auto_tables(
    base: RevisionFiles,
    cand: RevisionFiles,
    settings: DataSettings,
    declared: list[str],
    records: data_files.Records,
    *,
    predictions: str | None = None,
) -> tuple[list[TableSettings], list[dict[str, str]]]:
    """The undeclared changed tables to profile, and those left out with the reason (the
    model's outputs, `model_outputs`; the byte budget; the table count)."""
    if not settings.auto:
        return [], []
    if records.error is not None:  # the file table reports the broken records
        return [], [{"path": "*", "reason": str(records.error)[:300]}]
    tables: list[TableSettings] = []
    left_out: list[dict[str, str]] = []
    spent = 0
    outputs = model_outputs(base, cand, predictions)
    for found in changed_tables(base, cand, records):
        if at_or_under(found.path, declared):
            continue  # declared, or inside a declared directory: read as declared
        output = next((outputs[p] for p in sorted(outputs) if at_or_under(found.path, [p])), None)
        if output is not None:
            left_out.append({"path": found.path, "reason": MODEL_OUTPUT[output], "output": output})
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
