"""The `data` section of comparison.json: what changed in the data between baseline and
candidate (docs/data.md).

- `files`: every DVC-tracked file and directory added, deleted, modified or renamed, as
  `dvc diff` reports it, with recorded sizes and file counts (`data_files`);
- `tables`: each table `data.tables` declares, and each DVC-tracked table whose hash changed
  (`data_auto`), read at both revisions (`tabular`): rows, schema, missing values over every
  row, per-column shift with the correction, label balance (`drift`).

A table is `unchanged`, and not read, only when its content hash is the same at both
revisions (DVC's recorded hash, else the digest of its bytes). A table that cannot be read at
a revision is `unknown` with the reason, never `added` or `unchanged`, so a data rule that
needs it fails closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mlops_ci.compare import data_files
from mlops_ci.compare.data_auto import auto_tables
from mlops_ci.compare.snapshot import Project, RevisionFiles, read_declarations
from mlops_ci.project.data_settings import DataSettings, TableSettings
from mlops_ci.project.dvcfile import at_or_under
from mlops_ci.project.errors import ConfigError, MlopsCiError

if TYPE_CHECKING:  # the tables' module loads only when a table is declared
    from mlops_ci.compare.tabular import Layout, Table, TableFile

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
    predictions: str | None = None,
) -> dict[str, Any] | None:
    """The `data` section, or None when there is nothing to say (no baseline, nothing asked).
    `readers`: the snapshots' (baseline, workspace) readers, declarations read, to reuse.
    `predictions`: the policy's predictions file, which is not profiled unless declared."""
    tables = [*settings.tables, *(t for t in extra_tables if t.path not in
                                  {s.path for s in settings.tables})]  # fmt: skip
    if baseline_sha is None or (not settings.files and not tables and not settings.auto):
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
    records = data_files.Records.read(base, cand)
    files = _Files(project, baseline_sha, base, cand, records) if settings.files else None
    auto, left_out = auto_tables(base, cand, settings, [t.path for t in tables], records,
                                 predictions=predictions)  # fmt: skip
    if settings.auto:
        section["auto"] = {"max_bytes": settings.max_auto_bytes, "left_out": left_out[:50],
                           "more_left_out": max(len(left_out) - 50, 0)}  # fmt: skip
    # The working tree's records: each table's record is trusted only while the file still
    # matches it (`_recorded`).
    on_disk = records.new if records.error is None else None
    results = [_table(t, base, cand, settings, on_disk) for t in tables]
    found = [_table(t, base, cand, settings, on_disk) for t in auto]
    section["files"] = files.result() if files is not None else None
    # Declared tables are corrected as one family and the undeclared ones as another, so
    # what the gate judges does not depend on what else changed.
    _correct(results, settings.fdr)
    _correct(found, settings.fdr)
    section["tables"] = [*results, *found]
    if not section["tables"] and not settings.files and not left_out:
        return None
    return section


def _correct(results: list[dict[str, Any]], fdr: float) -> None:
    from_drift = [r for r in results if r.get("columns")]
    if from_drift:
        from mlops_ci.compare.drift import correct

        correct([c for r in from_drift for c in r["columns"]], fdr)
        for r in from_drift:
            r["drifted_columns"] = [c["name"] for c in r["columns"] if c["drifted"]]


class _Files:
    """The file-level table. When recorded hashes differ, the records answer what `dvc diff`
    would (`tracked_diff`) when the workspace holds what they say; otherwise `dvc diff` itself
    runs in a thread while the tables are read: its import and index walk are the slow half of
    the section, and reading tables spends most of its time in numpy and pandas' C parser,
    outside the GIL."""

    def __init__(
        self,
        project: Project,
        baseline_sha: str,
        base: RevisionFiles,
        cand: RevisionFiles,
        records: data_files.Records,
    ) -> None:
        self.done: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.old, self.new = records.old, records.new
        if records.error is not None:
            self.done = {"source": "unreadable", "error": str(records.error)[:500], "rows": [],
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


def _recorded(
    reader: RevisionFiles, path: str, on_disk: dict[str, data_files.Recorded] | None
) -> str | None:
    """The hash DVC records for the table's path (file or directory output), if it is one.
    In the working tree (`on_disk`: its records) only while it holds what the record says (its
    size, and file count for a directory, as the file table checks it; its bytes too where
    the record would call it unchanged, `_Side.holds_record`): a table edited since DVC
    recorded it is known by its bytes, so an edit without `dvc add` is not taken as
    unchanged."""
    md5 = reader.outs.get(path)
    if not md5:
        return None
    if reader.rev is None:
        from mlops_ci.compare.tracked_diff import workspace_matches

        # Records that cannot be read vouch for nothing: the bytes decide.
        if on_disk is None or not workspace_matches(reader, {path: md5}, on_disk):
            return None
    return f"md5:{md5}"


class _Side:
    """One revision of a table: where its files are, their content hash, then the table."""

    def __init__(
        self, reader: RevisionFiles, path: str, on_disk: dict[str, data_files.Recorded] | None
    ) -> None:
        self.reader, self.path = reader, path
        self.files: list[TableFile] | None = None
        self.error: str | None = None
        self.table: Table | None = None
        self.digest = _recorded(reader, path, on_disk)

    def holds_record(self) -> bool:
        """Whether the digest taken from the record is the table's: always at a commit, and
        in the working tree once its bytes hash to it (see `tracked_diff.workspace_holds`)."""
        if self.reader.rev is not None or self.digest is None:
            return True
        from mlops_ci.compare.tracked_diff import workspace_holds

        return workspace_holds(self.reader, self.path, self.digest.removeprefix("md5:"))

    def locate(self) -> None:
        from mlops_ci.compare.tabular import TableAbsent, TableUnreadable, load_table

        try:
            self.files = load_table(self.reader, self.path)
        except TableAbsent:
            return
        except TableUnreadable as exc:
            self.error = str(exc)[:500]
            return

    def hash(self) -> None:
        """Git-tracked tables (and workspace files DVC records nothing for) by their bytes."""
        if self.files is not None and self.digest is None:
            from mlops_ci.compare.tabular import content_digest

            self.digest = content_digest(self.files)

    def build(self, path: str, sample_rows: int, seed: int, layout: Layout) -> None:
        if self.files is None or self.error is not None:
            return
        from mlops_ci.compare.tabular import TableUnreadable, build_table

        try:
            self.table = build_table(path, self.files, sample_rows, seed=seed, layout=layout)
        except TableUnreadable as exc:
            self.error = str(exc)[:500]
        except MemoryError:
            self.error = "too large to read in memory"


def plot_header(reader: RevisionFiles, path: str) -> bool | None:
    """DVC's `header` plot property where the table is also a plot (or in a plotted
    directory), as the candidate's `dvc.yaml` declares it; None when it says nothing."""
    decl = reader.declarations
    found: dict[int, bool] = {}  # by the length of the plotted path
    for _config, name, props, path_id in decl.plots if decl is not None else []:
        header = props.get("header") if isinstance(props, dict) else None
        if path_id and isinstance(header, bool) and at_or_under(path, [name]):
            found[len(name)] = header
    return found[max(found)] if found else None  # the most specific definition


def sample_seed(old_digest: str | None, new_digest: str | None) -> int:
    """The sample's seed, from the content hashes of both revisions: the rows a drift test
    sees cannot be known before the change is written, and a rerun sees the same rows."""
    joined = f"{old_digest}\0{new_digest}".encode()
    return int.from_bytes(hashlib.sha256(joined).digest()[:8], "big")


def _sides(
    path: str,
    base: RevisionFiles,
    cand: RevisionFiles,
    sample_rows: int,
    layout: Layout,
    on_disk: dict[str, data_files.Recorded] | None,
) -> tuple[_Side, _Side, int | None]:
    """Both revisions of a table, and the sample seed (None: equal hashes, nothing read).
    The files are located one side after the other (reading may open DVC for its remote),
    then hashed and parsed side by side: hashing and pandas' C parser release the GIL, so
    two cores share the work."""
    old, new = _Side(base, path, None), _Side(cand, path, on_disk)
    if old.digest is not None and old.digest == new.digest:  # DVC's records: not even located
        if new.holds_record():
            return old, new, None
        new.digest = None  # edited since `dvc add`, its size kept: known by its bytes
    old.locate()
    new.locate()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="table") as pool:
        hashed = pool.submit(old.hash)
        new.hash()
        hashed.result()
        if old.digest is not None and old.digest == new.digest and not (old.error or new.error):
            return old, new, None
        seed = sample_seed(old.digest, new.digest)
        built = pool.submit(old.build, path, sample_rows, seed, layout)
        new.build(path, sample_rows, seed, layout)
        built.result()
    return old, new, seed


def _summary(side: _Side) -> dict[str, Any] | None:
    table = side.table
    if table is None:
        return None
    return {
        "rows": table.rows,
        "columns": len(table.columns),
        "files": table.files,
        "sample": len(table.frame),
        "sampled": table.sampled,
        "digest": side.digest,
    }


def _table(
    spec: TableSettings,
    base: RevisionFiles,
    cand: RevisionFiles,
    settings: DataSettings,
    on_disk: dict[str, data_files.Recorded] | None,
) -> dict[str, Any]:
    from mlops_ci.compare.tabular import Layout

    out: dict[str, Any] = {"path": spec.path, "target": spec.target, "key": spec.key,
                           "status": "unchanged", "errors": [], "baseline": None,
                           "candidate": None, "columns": [], "label": None}  # fmt: skip
    if spec.auto:
        out["auto"] = True  # profiled because its DVC hash changed, not declared
    header = spec.header if spec.header is not None else plot_header(cand, spec.path)
    layout = Layout(header, spec.columns)
    old, new, seed = _sides(spec.path, base, cand, settings.sample_rows, layout, on_disk)
    if seed is None:
        out["baseline"] = out["candidate"] = {"digest": old.digest}
        out["note"] = "the same content hash at both revisions: not read"
        return out
    for revision, err in ((base.rev, old.error), (cand.rev, new.error)):
        if err:
            out["errors"].append({"revision": revision or "workspace", "message": err})
    out["baseline"], out["candidate"] = _summary(old), _summary(new)
    if old.error or new.error:
        out["status"] = "unknown"
        return out
    if old.table is None and new.table is None:
        out["status"] = "absent"
        return out
    if old.table is None or new.table is None:
        out["status"] = "added" if old.table is None else "removed"
        return out
    out["status"] = "changed"
    from mlops_ci.compare.drift import column_rows, label_balance

    rows_old, rows_new = old.table.rows, new.table.rows
    out["row_change"] = rows_new - rows_old
    out["row_change_pct"] = round(100.0 * (rows_new - rows_old) / rows_old, 4) if rows_old else None
    columns = column_rows(old.table, new.table, spec.key)
    out["columns"] = columns[:MAX_COLUMNS]
    if len(columns) > MAX_COLUMNS:
        out["more_columns"] = len(columns) - MAX_COLUMNS
        # a column left out of the document still fails a drift rule it cannot pass
        out["more_untestable"] = sum(1 for c in columns[MAX_COLUMNS:] if c["untestable"])
    if spec.target:
        out["label"] = label_balance(old.table, new.table, spec.target)
    return out
