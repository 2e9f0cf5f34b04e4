"""Reading a declared table (CSV, TSV, Parquet, JSON lines; a file or a directory of them) at one
revision: every row counted, at most `sample_rows` rows parsed.

Text tables are indexed by their line breaks (numpy, no parsing), so a million-row file is
counted exactly and a uniform sample of its lines is handed to pandas; a file with a double
quote may hold line breaks inside fields, so it is parsed whole instead. Parquet needs pyarrow
(the `parquet` extra): its row count is in the footer and the sample is taken column-wise.
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_ci.compare.snapshot import NOT_PRODUCED, RevisionFiles

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t"}
LINE_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUFFIXES = (*TEXT_SUFFIXES, *LINE_SUFFIXES, *PARQUET_SUFFIXES)
SAMPLE_SEED = 20240917  # the same rows on every run: the report does not flicker
_CHUNK = 1 << 24  # line breaks are found 16 MiB at a time (a bool per byte is the cost)


class TableUnreadable(Exception):
    """A declared table that exists at the revision but cannot be read (why in the message)."""


class TableAbsent(Exception):
    """A declared table the revision never produced (neither in git nor recorded by DVC)."""


@dataclass
class Table:
    rows: int  # every row of every file, counted exactly
    frame: pd.DataFrame  # the rows read: all of them, or a uniform sample
    files: int

    @property
    def sampled(self) -> bool:
        return len(self.frame) < self.rows


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


def read_table(reader: RevisionFiles, path: str, sample_rows: int) -> Table:
    """The table at `path` of the reader's revision (TableAbsent / TableUnreadable otherwise)."""
    return build_table(path, load_table(reader, path), sample_rows)


def load_table(reader: RevisionFiles, path: str) -> list[tuple[str, bytes]]:
    """The bytes of every file of the table at the reader's revision (git, the DVC cache or
    the remote): the part that may talk to DVC, kept apart so `build_table` can run in a
    thread."""
    files = table_files(reader, path)
    contents = reader.read(files)
    loaded = []
    for name in files:
        data = contents.get(name)
        if data is None:
            why = reader.why.get(name, "unknown")
            if why == NOT_PRODUCED and len(files) == 1:
                raise TableAbsent(path)
            raise TableUnreadable(f"{name} cannot be read: {why}")
        loaded.append((name, data))
    return loaded


def build_table(path: str, files: list[tuple[str, bytes]], sample_rows: int) -> Table:
    """Count, sample and parse loaded table files (numpy and pandas only)."""
    parts: list[_Part] = []
    for name, data in files:
        try:
            parts.append(_index(name, data))
        except TableUnreadable:
            raise
        except Exception as exc:  # each parser has its own errors; the file is not a table
            raise TableUnreadable(f"{name} is not a valid table: {_short(exc)}") from exc
    try:
        return _sample(parts, sample_rows)
    except (TableUnreadable, MemoryError):
        raise
    except Exception as exc:  # the sampled lines fed to the parser are not a valid table
        raise TableUnreadable(f"{path} is not a valid table: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


@dataclass
class _Part:
    name: str
    data: bytes
    rows: int
    starts: np.ndarray | None = None  # text: where each data line starts
    ends: np.ndarray | None = None  # and where it ends (past its line break)
    frame: pd.DataFrame | None = None  # parsed whole already (quoted text, Parquet)
    arrow: Any = None  # a pyarrow Table


def _index(name: str, data: bytes) -> _Part:
    suffix = posixpath.splitext(name.lower())[1]
    if suffix in PARQUET_SUFFIXES:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise TableUnreadable(
                f"{name} is Parquet, which needs pyarrow: pip install 'mlops-ci[parquet]'"
            ) from exc
        table = pq.read_table(io.BytesIO(data))
        return _Part(name, data, table.num_rows, arrow=table)
    text = suffix in TEXT_SUFFIXES
    if text and b'"' in data:  # a quoted field may hold a line break: parse it all
        frame = _parse(name, data)
        return _Part(name, data, len(frame), frame=frame)
    starts, ends = _lines(data, skip_header=text)
    return _Part(name, data, len(starts), starts=starts, ends=ends)


def _lines(data: bytes, *, skip_header: bool) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the non-blank lines (after the header line, for CSV/TSV)."""
    from mlops_ci.compare.numeric import np

    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = [np.flatnonzero(raw[at : at + _CHUNK] == 10) + at for at in range(0, len(raw), _CHUNK)]
    nl = np.concatenate(breaks) if breaks else np.empty(0, dtype=np.int64)
    ends = nl + 1
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1])) if len(ends) else np.empty(0, dtype=np.int64)
    if skip_header and len(starts):
        starts, ends = starts[1:], ends[1:]
    # Blank lines (pandas skips them, and so does the count): nothing but \n or \r\n.
    length = ends - starts
    blank = length <= 1
    two = np.flatnonzero(length == 2)
    if len(two):
        blank[two] = raw[starts[two]] == 13
    return starts[~blank], ends[~blank]


def _parse(name: str, data: bytes) -> pd.DataFrame:
    from mlops_ci.compare.numeric import pd

    suffix = posixpath.splitext(name.lower())[1]
    if suffix in LINE_SUFFIXES:
        if not data.strip():
            return pd.DataFrame()
        return pd.read_json(io.BytesIO(data), lines=True)
    return pd.read_csv(io.BytesIO(data), sep=TEXT_SUFFIXES[suffix], low_memory=False)


def _sample(parts: list[_Part], sample_rows: int) -> Table:
    from mlops_ci.compare.numeric import np, pd

    total = sum(p.rows for p in parts)
    rng = np.random.default_rng(SAMPLE_SEED)
    # Each row kept with probability sample_rows / total, independently (a Bernoulli sample:
    # uniform, ten times cheaper than drawing exactly that many); its size is what is reported.
    chosen = (
        np.flatnonzero(rng.random(total) < sample_rows / total) if total > sample_rows else None
    )
    frames = []
    offset = 0
    for part in parts:
        if chosen is None:
            picks = None
        else:
            lo, hi = np.searchsorted(chosen, [offset, offset + part.rows])
            picks = chosen[lo:hi] - offset
        offset += part.rows
        frames.append(_rows_of(part, picks))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return Table(rows=total, frame=frame, files=len(parts))


def _rows_of(part: _Part, picks: np.ndarray | None) -> pd.DataFrame:
    """The part's rows at positions `picks` (None: all of them)."""
    if part.frame is not None:
        return part.frame if picks is None else part.frame.iloc[picks].reset_index(drop=True)
    if part.arrow is not None:
        table = part.arrow if picks is None else part.arrow.take(picks)
        return table.to_pandas()
    if picks is None:
        return _parse(part.name, part.data)
    from mlops_ci.compare.numeric import np

    assert part.starts is not None and part.ends is not None
    text = part.name.lower().endswith(tuple(TEXT_SUFFIXES))
    header = part.data[: part.data.find(b"\n") + 1] if text else b""  # CSV: the first line
    # The picked lines' bytes in one gather: each byte's position is its line's start plus
    # its place in the line (no Python object per line).
    starts, lengths = part.starts[picks], part.ends[picks] - part.starts[picks]
    before = np.cumsum(lengths) - lengths  # where each line begins in the result
    where = np.arange(int(lengths.sum())) + np.repeat(starts - before, lengths)
    body = header + np.frombuffer(part.data, dtype=np.uint8)[where].tobytes()
    if not body.endswith(b"\n"):
        body += b"\n"
    return _parse(part.name, body)
