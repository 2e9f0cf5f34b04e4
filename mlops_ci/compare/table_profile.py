"""What is known of a table after one pass over all its rows, chunk by chunk: the exact row
count, per column the missing cells, pandas' dtype, the values that are not numbers and the
category counts, plus a uniform sample of rows for the shift tests.

Chunks are parsed on their own, so a column's dtype is merged the way pandas infers it over the
whole file: integers with a missing cell are floats, numbers and text together are text, and a
chunk where the column is all missing does not vote (pandas reads it as float64).

The sample is a bottom-k sample: each row draws a random key and the `size` smallest keys are
kept, a uniform sample without replacement in bounded memory. The keys come from the caller's
generator, which `data` seeds from the content hashes of both revisions, so which rows are
checked cannot be known before the change is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Distinct values counted per column over every row; past this the column is an identifier or
# free text (drift.MAX_CATEGORIES is the chi-square's own, smaller bound).
MAX_TRACKED = 256
_PREFIX = 4 * MAX_TRACKED  # the first rows of a chunk, looked at before counting all of them


@dataclass
class Column:
    """One column over every row read so far."""

    missing: int = 0
    values: int = 0  # non-missing cells
    text: int = 0  # non-missing cells that are not numbers
    dtypes: set[str] = field(default_factory=set)  # of the chunks where it had a value
    no_rows_dtype: str | None = None  # of a file with no rows (pandas types it by its header)
    counts: Counter[str] | None = field(default_factory=Counter)  # None: over MAX_TRACKED

    def dtype(self) -> str:
        """pandas' dtype for the whole column (read_csv on the whole file)."""
        kinds = {_kind(d) for d in self.dtypes}
        if not kinds:  # no value in any row: all missing, or no rows at all
            return "float64" if self.missing else self.no_rows_dtype or "object"
        if kinds == {"int"}:
            return "float64" if self.missing else "int64"
        if kinds <= {"int", "float"}:
            return "float64"
        if kinds == {"bool"} and not self.missing:
            return "bool"
        text = sorted(d for d in self.dtypes if _kind(d) == "text")
        return text[0] if text else "object"

    @property
    def non_numeric_share(self) -> float:
        return self.text / self.values if self.values else 0.0


def _kind(dtype: str) -> str:
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        return "int"
    if dtype.startswith(("float", "Float")):
        return "float"
    if dtype in ("bool", "boolean"):
        return "bool"
    return "text"


def _key(value: object) -> str:
    """A category as text: an integral float written as the integer (a chunk with a missing
    cell reads 1 as 1.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Profile:
    """Accumulates chunks of one table (every file of it) into columns and a sample."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.rows = 0
        self.columns: dict[str, Column] = {}
        self.size, self.rng = size, rng
        # Rows that may still be in the sample, with their keys; pruned to `size` rows only
        # when twice that many wait, so a chunk costs a comparison of its keys and a copy of
        # the few rows that enter, never a copy of the sample.
        self.pool: list[pd.DataFrame] = []
        self.pool_keys: list[np.ndarray] = []
        self.pooled = 0
        self.bound = 1.0  # keys at or above it cannot enter: the largest key kept

    def add(self, chunk: pd.DataFrame) -> None:
        n = len(chunk)
        present = chunk.count().to_numpy()  # non-missing cells per column, in one call
        chunk.columns = [str(c) for c in chunk.columns]
        for (name, series), count in zip(chunk.items(), present, strict=True):
            column = self.columns.get(name)
            if column is None:  # a later file with a new column: missing in the rows before
                column = self.columns[name] = Column(missing=self.rows)
            _add_cells(column, series, int(count))
        for name, column in self.columns.items():
            if name not in chunk.columns:
                column.missing += n
        self.rows += n
        self._sample(chunk)

    def _sample(self, chunk: pd.DataFrame) -> None:
        from mlops_ci.compare.numeric import np

        keys = self.rng.random(len(chunk))
        if self.bound < 1.0:
            entering = np.flatnonzero(keys < self.bound)
            chunk, keys = chunk.iloc[entering], keys[entering]
        if not len(keys) and self.pool:
            return
        self.pool.append(chunk)
        self.pool_keys.append(keys)
        self.pooled += len(keys)
        if self.pooled >= 2 * self.size:
            self._prune()

    def _prune(self) -> None:
        """Keep the `size` smallest keys of the pool, in the order the rows were read. Each
        piece is let go once its rows are taken, so the pool and the sample are not both
        held twice over."""
        from mlops_ci.compare.numeric import np, pd

        keys = np.concatenate(self.pool_keys)
        keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
        pieces, self.pool = self.pool[::-1], []
        kept, start = [], 0
        while pieces:
            piece = pieces.pop()
            lo, hi = np.searchsorted(keep, (start, start + len(piece)))
            if hi > lo:
                kept.append(piece.iloc[keep[lo:hi] - start])
            start += len(piece)
        del piece
        self.pool = [pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]]
        self.pool_keys, self.pooled = [keys[keep]], len(keep)
        self.bound = float(self.pool_keys[0].max())

    def frame(self) -> pd.DataFrame:
        from mlops_ci.compare.numeric import pd

        if self.pooled > self.size:
            self._prune()
        if not self.pool:
            sample = pd.DataFrame()
        else:
            sample = (pd.concat(self.pool, ignore_index=True) if len(self.pool) > 1
                      else self.pool[0].reset_index(drop=True))  # fmt: skip
        for name in self.columns:  # every column, in the order first seen
            if name not in sample.columns:
                sample[name] = pd.Series([float("nan")] * len(sample), dtype="float64")
        return sample[list(self.columns)]


def _add_cells(column: Column, series: pd.Series, present: int) -> None:
    from mlops_ci.compare.numeric import pd

    column.missing += len(series) - present
    column.values += present
    if not present:
        if not len(series):
            column.no_rows_dtype = str(series.dtype)
        return
    dtype = str(series.dtype)
    column.dtypes.add(dtype)
    kind = _kind(dtype)
    if kind in ("int", "float"):
        if column.counts is not None and series.iloc[:_PREFIX].nunique() > MAX_TRACKED:
            column.counts = None  # so many values in the first rows: no need to count them all
        if column.counts is None:
            return  # nothing more to learn from a number's cells
    try:
        counts = series.value_counts(dropna=True, sort=False)
    except TypeError:  # JSON lines: lists and objects are counted by their text
        counts = series.dropna().astype(str).value_counts(sort=False)
    if kind == "text":
        numeric = pd.to_numeric(counts.index.to_numpy(dtype=object), errors="coerce")
        column.text += int(counts.to_numpy()[pd.isna(numeric)].sum())
    elif kind == "bool":
        column.text += present
    if column.counts is None:
        return
    if len(counts) > MAX_TRACKED:  # no Python loop over a chunk of identifiers
        column.counts = None
        return
    for value, count in counts.items():
        column.counts[_key(value)] += int(count)
    if len(column.counts) > MAX_TRACKED:
        column.counts = None
