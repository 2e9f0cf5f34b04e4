"""Reading a table (CSV, TSV, Parquet, JSON lines; a file or a directory of them) at one
revision: every row parsed once, in chunks, so memory stays bounded however large the file.

Rows are counted by the parser that reads them (pandas for text, pyarrow for Parquet), so a
blank or whitespace-only line is not a row and a line break inside a quoted field does not
start one, as pandas reads the whole file. Missing cells, dtypes, column sets and category
counts come from every row (`table_profile`); only the shift tests use a sample.

A file is streamed from disk when it is on this machine (the working tree or the local DVC
cache); a git object or an object fetched from the DVC remote arrives as bytes. Parquet needs
pyarrow (the `parquet` extra).
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mlops_ci.compare.snapshot import NOT_PRODUCED, RevisionFiles
from mlops_ci.compare.table_profile import Column, Profile

if TYPE_CHECKING:
    import pandas as pd

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t"}
LINE_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUFFIXES = (*TEXT_SUFFIXES, *LINE_SUFFIXES, *PARQUET_SUFFIXES)
# Cells parsed at a time: 75,000 rows of a 20-column table, about 12 MiB of numbers. Fewer and
# pandas' per-chunk overhead shows; more and memory grows (twice over: both revisions are read
# at once) with little gain in speed.
CHUNK_CELLS = 1_500_000
_HEAD_BYTES = 1 << 16  # what is read to tell a header line from a data line


class TableUnreadable(Exception):
    """A declared table that exists at the revision but cannot be read (why in the message)."""


class TableAbsent(Exception):
    """A declared table the revision never produced (neither in git nor recorded by DVC)."""


@dataclass(frozen=True)
class TableFile:
    """One file of a table: on disk (`path`) or in memory (`data`)."""

    name: str
    path: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Layout:
    """How text tables are laid out: `header` None means infer it; `columns` names them."""

    header: bool | None = None
    columns: tuple[str, ...] | None = None


@dataclass
class Table:
    rows: int  # every row of every file, counted by the parser
    files: int
    columns: dict[str, Column]  # every column, over every row
    frame: pd.DataFrame  # the sampled rows (all of them when the table is small)

    @property
    def sampled(self) -> bool:
        return len(self.frame) < self.rows


def open_table_file(file: TableFile) -> IO[bytes]:
    """The one place a table file is opened."""
    if file.path is not None:
        return open(file.path, "rb")  # the caller closes it
    return io.BytesIO(file.data or b"")


def table_files(reader: RevisionFiles, path: str) -> list[str]:
    """The table files of a declared path: the file itself, or a directory's table files."""
    files = reader.expand(path)
    if files == [path]:
        if not reader.exists(path):
            if reader.rev is None:
                raise TableAbsent(path)
            reader.read([path])  # records why it has no object: never produced, or unreadable
            why = reader.why.get(path, NOT_PRODUCED)
            if why != NOT_PRODUCED:
                raise TableUnreadable(f"{path} cannot be read: {why}")
            raise TableAbsent(path)
        if not path.lower().endswith(SUFFIXES):
            raise TableUnreadable(
                f"{path} is not a table mlops-ci reads (CSV, TSV, Parquet, JSON lines)"
            )
        return [path]
    found = [f for f in files if f.lower().endswith(SUFFIXES)]
    if not found:
        raise TableUnreadable(f"the directory {path} holds no CSV, TSV, Parquet or JSON lines file")
    return found


def read_table(
    reader: RevisionFiles, path: str, sample_rows: int, *, seed: int = 0, layout: Layout = Layout()
) -> Table:
    """The table at `path` of the reader's revision (TableAbsent / TableUnreadable otherwise)."""
    return build_table(path, load_table(reader, path), sample_rows, seed=seed, layout=layout)


def load_table(reader: RevisionFiles, path: str) -> list[TableFile]:
    """Where every file of the table is at the reader's revision: the part that may talk to
    DVC (its remote), kept apart so `build_table` can run in a thread."""
    names = table_files(reader, path)
    local = {name: reader.local_file(name) for name in names}
    contents = reader.read([n for n in names if local[n] is None])
    loaded = []
    for name in names:
        if local[name] is not None:
            loaded.append(TableFile(name, path=local[name]))
            continue
        data = contents.get(name)
        if data is None:
            why = reader.why.get(name, "unknown")
            if why == NOT_PRODUCED and len(names) == 1:
                raise TableAbsent(path)
            raise TableUnreadable(f"{name} cannot be read: {why}")
        loaded.append(TableFile(name, data=data))
    return loaded


def content_digest(files: list[TableFile]) -> str:
    """A digest of the table's bytes (names and contents), for tables DVC records no hash for."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open_table_file(file) as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()[:32]


def build_table(
    path: str,
    files: list[TableFile],
    sample_rows: int,
    *,
    seed: int = 0,
    layout: Layout = Layout(),
    chunk_rows: int | None = None,
) -> Table:
    """Parse every row of the table's files once (pandas, pyarrow), a chunk at a time
    (`chunk_rows` rows, else `CHUNK_CELLS` cells), profiling as it goes."""
    from mlops_ci.compare.numeric import np

    profile = Profile(sample_rows, np.random.default_rng(seed))
    for file in files:
        try:
            for chunk in _chunks(file, layout, chunk_rows):
                profile.add(chunk)
        except (TableUnreadable, MemoryError):
            raise
        except Exception as exc:  # each parser has its own errors; the file is not a table
            raise TableUnreadable(f"{file.name} is not a valid table: {_short(exc)}") from exc
    return Table(
        rows=profile.rows, files=len(files), columns=profile.columns, frame=profile.frame()
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _rows(columns: int | None, chunk_rows: int | None) -> int:
    """Rows per chunk: `chunk_rows` when given, else `CHUNK_CELLS` cells (20 columns when the
    first line does not say how many)."""
    return chunk_rows or max(1_000, CHUNK_CELLS // (columns or 20))


def _chunks(file: TableFile, layout: Layout, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    from mlops_ci.compare.numeric import pd

    suffix = posixpath.splitext(file.name.lower())[1]
    if suffix in PARQUET_SUFFIXES:
        yield from _parquet_chunks(file, chunk_rows)
        return
    with open_table_file(file) as fh:
        head = fh.read(_HEAD_BYTES)
    if suffix in LINE_SUFFIXES:
        if not head.strip():
            return  # an empty file: no rows, no columns
        rows = _rows(_json_fields(head), chunk_rows)
        with open_table_file(file) as fh:
            yield from pd.read_json(fh, lines=True, chunksize=rows)
        return
    sep = TEXT_SUFFIXES[suffix]
    first = _first_row(head, sep)
    header = layout.header
    if header is None:
        header = False if layout.columns else _names_columns(first)
    options = {"sep": sep, "header": 0 if header else None, "names": layout.columns}
    columns = len(layout.columns) if layout.columns else len(first) if first is not None else None
    seen = False
    with open_table_file(file) as fh:
        for chunk in pd.read_csv(fh, chunksize=_rows(columns, chunk_rows), **options):
            seen = True
            yield chunk
    if not seen:  # a header and no rows: the columns still count
        with open_table_file(file) as fh:
            yield pd.read_csv(fh, nrows=0, **options)


def _parquet_chunks(file: TableFile, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise TableUnreadable(
            f"{file.name} is Parquet, which needs pyarrow: pip install 'mlops-ci[parquet]'"
        ) from exc
    with open_table_file(file) as fh:
        parquet = pq.ParquetFile(fh)
        if parquet.metadata.num_rows == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
            return
        rows = _rows(len(parquet.schema_arrow), chunk_rows)
        for batch in parquet.iter_batches(batch_size=rows):
            yield batch.to_pandas()


def _first_row(head: bytes, sep: str) -> pd.Series | None:
    """The first non-blank line's fields as text (None when there is none, or it does not
    parse on its own: the full read says what is wrong)."""
    from mlops_ci.compare.numeric import pd

    first = next((line for line in head.split(b"\n") if line.strip()), b"")
    if not first:
        return None
    try:
        return pd.read_csv(io.BytesIO(first), sep=sep, header=None, dtype=str).iloc[0]
    except Exception:
        return None


def _json_fields(head: bytes) -> int | None:
    """How many fields the first JSON line has, when it fits in `head`."""
    try:
        record = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return None
    return len(record) if isinstance(record, dict) else None


def _names_columns(first: pd.Series | None) -> bool:
    """Whether the first line names the columns: not when one of its fields is a number (a
    data line, as in a headerless TSV), the way a reader of the file would tell."""
    from mlops_ci.compare.numeric import pd

    if first is None:
        return True
    values = pd.to_numeric(first.dropna().str.strip(), errors="coerce")
    return not values.notna().any()


def table_from_frame(frame: pd.DataFrame, sample_rows: int = 50_000, seed: int = 0) -> Table:
    """A table already in memory, profiled as if read in chunks from a file."""
    from mlops_ci.compare.numeric import np

    profile = Profile(sample_rows, np.random.default_rng(seed))
    rows = _rows(len(frame.columns), None)
    for start in range(0, max(len(frame), 1), rows):
        profile.add(frame.iloc[start : start + rows].copy())
    return Table(rows=profile.rows, files=1, columns=profile.columns, frame=profile.frame())
