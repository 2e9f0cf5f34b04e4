"""The `data` section of comparison.json: what changed in the data between baseline and
candidate (docs/data.md).

- `files`: every DVC-tracked file and directory added, deleted, modified or renamed, as
  `dvc diff` reports it, with recorded sizes and file counts (`data_files`);
- `tables`: each table `data.tables` declares, read at both revisions (`tabular`): rows,
  schema, missing values, per-column shift with the correction, label balance (`drift`).

A table whose recorded hash is the same at both revisions is not read. A table that cannot be
read at a revision is `unknown` with the reason, never `added` or `unchanged`, so a data rule
that needs it fails closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mlops_ci.compare import data_files
from mlops_ci.compare.snapshot import Project, RevisionFiles, read_declarations
from mlops_ci.project.data_settings import DataSettings, TableSettings
from mlops_ci.project.errors import ConfigError, MlopsCiError

if TYPE_CHECKING:  # the tables' module loads only when a table is declared
    from mlops_ci.compare.tabular import Table

MAX_COLUMNS = 1000  # per table in comparison.json (its schema's bound)


def _reader(project: Project, rev: str | None, fetch: Any) -> RevisionFiles:
    reader = RevisionFiles(project, rev, fetch)
    # Fills reader.outs (DVC outputs). compare already reports a broken dvc.yaml, and the
    # tables then report their own reasons.
    with contextlib.suppress(ConfigError):
        read_declarations(reader, rev or "workspace")
    return reader


def data_section(
    project: Project,
    baseline_sha: str | None,
    settings: DataSettings,
    *,
    extra_tables: tuple[TableSettings, ...] = (),
    fetch: Any = None,
    readers: tuple[RevisionFiles | None, RevisionFiles | None] = (None, None),
) -> dict[str, Any] | None:
    """The `data` section, or None when there is nothing to say (no baseline, nothing asked).
    `readers`: the snapshots' (baseline, workspace) readers, declarations read, to reuse."""
    tables = [*settings.tables, *(t for t in extra_tables if t.path not in
                                  {s.path for s in settings.tables})]  # fmt: skip
    if baseline_sha is None or (not settings.files and not tables):
        return None
    base = readers[0] or _reader(project, baseline_sha, fetch)
    cand = readers[1] or _reader(project, None, fetch)
    section: dict[str, Any] = {
        "inputs": {"baseline": baseline_sha, "candidate": "workspace"},
        "sample_rows": settings.sample_rows,
        "fdr": settings.fdr,
        "files": None,
        "tables": [],
    }
    files = _Files(project, baseline_sha, base, cand) if settings.files else None
    results = [_table(t, base, cand, settings) for t in tables]
    section["files"] = files.result() if files is not None else None
    from_drift = [r for r in results if r.get("columns")]
    if from_drift:
        from mlops_ci.compare.drift import correct

        correct([c for r in from_drift for c in r["columns"]], settings.fdr)
        for r in from_drift:
            r["drifted_columns"] = [c["name"] for c in r["columns"] if c["drifted"]]
    section["tables"] = results
    return section


class _Files:
    """The file-level table. When recorded hashes differ, the records answer what `dvc diff`
    would (`tracked_diff`) when the workspace holds what they say; otherwise `dvc diff` itself
    runs in a thread while the tables are read: its import and index walk are the slow half of
    the section, and reading tables spends most of its time in numpy and pandas' C parser,
    outside the GIL."""

    def __init__(
        self, project: Project, baseline_sha: str, base: RevisionFiles, cand: RevisionFiles
    ) -> None:
        self.done: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        try:
            self.old, self.new = data_files.recorded_outs(base), data_files.recorded_outs(cand)
        except ConfigError as exc:
            self.done = {"source": "unreadable", "error": str(exc)[:500], "rows": [],
                         "more_rows": 0}  # fmt: skip
            return
        if not data_files.tracked_changed(self.old, self.new):
            self.done = {"source": "recorded hashes equal", "rows": [], "more_rows": 0,
                         **data_files.summary([])}  # fmt: skip
            return
        from mlops_ci.compare.tracked_diff import tracked_diff

        recorded = tracked_diff(base, cand, self.new)
        if recorded is not None:
            self.done = _file_table(recorded, self.old, self.new, source="records")
            return
        self.thread = threading.Thread(
            target=self._run, args=(project, baseline_sha), name="dvc-diff", daemon=True
        )
        self.thread.start()

    def _run(self, project: Project, baseline_sha: str) -> None:
        from mlops_ci.project.dvc_diff import dvc_diff

        try:
            self.diff = dvc_diff(project.root, baseline_sha)
        except BaseException as exc:  # handed to the main thread by result()
            self.error = exc

    def result(self) -> dict[str, Any]:
        if self.done is not None:
            return self.done
        assert self.thread is not None
        self.thread.join()
        if isinstance(self.error, MlopsCiError):
            return {"source": "dvc diff failed", "error": str(self.error)[:500], "rows": [],
                    "more_rows": 0}  # fmt: skip
        if self.error is not None:
            raise self.error
        return _file_table(self.diff, self.old, self.new)


def _file_table(
    diff: dict[str, Any],
    old: dict[str, data_files.Recorded],
    new: dict[str, data_files.Recorded],
    *,
    source: str = "dvc diff",
) -> dict[str, Any]:
    rows = data_files.file_rows(diff, old, new)
    limit = data_files.MAX_FILE_ROWS
    return {"source": source, "rows": rows[:limit], "more_rows": max(len(rows) - limit, 0),
            **data_files.summary(rows)}  # fmt: skip


def _digest(reader: RevisionFiles, path: str) -> str | None:
    """The hash DVC records for the table's path (file or directory output), if it is one."""
    md5 = reader.outs.get(path)
    return f"md5:{md5}" if md5 else None


def _load(reader: RevisionFiles, path: str) -> tuple[list[tuple[str, bytes]] | None, str | None]:
    """(files, None), (None, None) when absent, or (None, why) when unreadable."""
    from mlops_ci.compare.tabular import TableAbsent, TableUnreadable, load_table

    try:
        return load_table(reader, path), None
    except TableAbsent:
        return None, None
    except TableUnreadable as exc:
        return None, str(exc)[:500]


def _build(
    path: str, files: list[tuple[str, bytes]] | None, sample_rows: int
) -> tuple[Table | None, str | None]:
    if files is None:
        return None, None
    from mlops_ci.compare.tabular import TableUnreadable, build_table

    try:
        return build_table(path, files, sample_rows), None
    except TableUnreadable as exc:
        return None, str(exc)[:500]
    except MemoryError:
        return None, "too large to read in memory"


def _sides(
    path: str, base: RevisionFiles, cand: RevisionFiles, sample_rows: int
) -> tuple[tuple[Table | None, str | None], tuple[Table | None, str | None]]:
    """Both revisions of a table. The files are read one side after the other (reading may
    open DVC for its remote), then counted and parsed side by side: numpy and pandas' C parser
    release the GIL, so two cores share the work."""
    (old_files, old_err), (new_files, new_err) = _load(base, path), _load(cand, path)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="table") as pool:
        old = pool.submit(_build, path, old_files, sample_rows)
        new = _build(path, new_files, sample_rows)
        old_result = old.result()
    return (old_result if old_err is None else (None, old_err)), (
        new if new_err is None else (None, new_err)
    )


def _summary(table: Table | None, digest: str | None) -> dict[str, Any] | None:
    if table is None:
        return None
    return {
        "rows": table.rows,
        "columns": int(table.frame.shape[1]),
        "files": table.files,
        "sample": len(table.frame),
        "sampled": table.sampled,
        "digest": digest,
    }


def _content_digest(table: Table) -> str:
    """A digest of the rows read, for tables DVC records no hash for (files in git)."""
    from mlops_ci.compare.numeric import pd

    hashed = pd.util.hash_pandas_object(table.frame, index=False).to_numpy().tobytes()
    cols = "\x1f".join(f"{c}:{t}" for c, t in table.frame.dtypes.astype(str).items())
    return "rows:" + hashlib.sha256(cols.encode() + hashed).hexdigest()[:32]


def _table(
    spec: TableSettings, base: RevisionFiles, cand: RevisionFiles, settings: DataSettings
) -> dict[str, Any]:
    out: dict[str, Any] = {"path": spec.path, "target": spec.target, "key": spec.key,
                           "status": "unchanged", "errors": [], "baseline": None,
                           "candidate": None, "columns": [], "label": None}  # fmt: skip
    old_digest, new_digest = _digest(base, spec.path), _digest(cand, spec.path)
    if old_digest is not None and old_digest == new_digest:
        out["baseline"] = out["candidate"] = {"digest": old_digest}
        out["note"] = "the same hash at both revisions: not read"
        return out
    (old, old_err), (new, new_err) = _sides(spec.path, base, cand, settings.sample_rows)
    for revision, err in ((base.rev, old_err), (cand.rev, new_err)):
        if err:
            out["errors"].append({"revision": revision or "workspace", "message": err})
    if old is not None and old_digest is None:
        old_digest = _content_digest(old)
    if new is not None and new_digest is None:
        new_digest = _content_digest(new)
    out["baseline"], out["candidate"] = _summary(old, old_digest), _summary(new, new_digest)
    if old_err or new_err:
        out["status"] = "unknown"
        return out
    if old is None and new is None:
        out["status"] = "absent"
        return out
    if old is None or new is None:
        out["status"] = "added" if old is None else "removed"
        return out
    out["status"] = "unchanged" if old_digest == new_digest and old.rows == new.rows else "changed"
    if out["status"] == "unchanged":
        return out
    from mlops_ci.compare.drift import column_rows, label_balance

    out["row_change"] = new.rows - old.rows
    out["row_change_pct"] = round(100.0 * (new.rows - old.rows) / old.rows, 4) if old.rows else None
    columns = column_rows(old.frame, new.frame, spec.key)
    out["columns"] = columns[:MAX_COLUMNS]
    if len(columns) > MAX_COLUMNS:
        out["more_columns"] = len(columns) - MAX_COLUMNS
    if spec.target:
        out["label"] = label_balance(old.frame, new.frame, spec.target)
    return out
