"""Per-sample predictions of one revision: loading, validation and the task they belong to.

A predictions file has one row per test sample and the columns

- `id`: unique per row; rows of two revisions are matched by it;
- `y_true`: the label (classification) or target (regression), a number;
- `y_pred`: the predicted label or value, a number;
- `y_score` (optional): for binary classification the score of the positive class (label 1),
  needed by `roc_auc` (any real score) and `log_loss` (a probability in [0, 1]).

Other columns are ignored. CSV is the format; `.json` (records) and `.jsonl` are read too.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlops_ci.compare.intervals import Task
from mlops_ci.compare.numeric import np
from mlops_ci.project.errors import ConfigError

REQUIRED_COLUMNS = ("id", "y_true", "y_pred")
SCORE_COLUMN = "y_score"

# Above this many distinct labels whole numbers are taken for a regression target (counts,
# ages, prices in cents), not for classes: see `task_of`.
MAX_CLASSES = 100


class InvalidPredictions(ConfigError):
    """A predictions file (or the arrays given instead) cannot be used."""


@dataclass(frozen=True, eq=False)
class Predictions:
    """Validated columns of one predictions file; build with `load_predictions` or `from_arrays`."""

    ids: np.ndarray  # text (numpy str, or object holding str), unique
    y_true: np.ndarray  # float64, finite
    y_pred: np.ndarray  # float64, finite
    y_score: np.ndarray | None  # float64, finite, or None when the file has no scores
    source: str  # where the rows came from, for messages (file and revision)

    def __len__(self) -> int:
        return len(self.y_true)

    def take(self, rows: np.ndarray) -> Predictions:
        """These rows in this order (distinct row numbers: the result stays valid unchecked)."""
        score = None if self.y_score is None else self.y_score[rows]
        return Predictions(self.ids[rows], self.y_true[rows], self.y_pred[rows], score, self.source)

    @classmethod
    def from_arrays(
        cls,
        y_true: Any,
        y_pred: Any,
        y_score: Any = None,
        *,
        ids: Any = None,
        source: str = "predictions",
    ) -> Predictions:
        """Validate in-memory columns; `ids` default to the row numbers.

        >>> Predictions.from_arrays([0, 1, 1], [0, 1, 0], [0.2, 0.9, 0.4]).y_pred
        array([0., 1., 0.])
        """
        y_true_arr = np.asarray(y_true)
        n = len(y_true_arr) if y_true_arr.ndim else 0
        ids_arr = np.arange(n) if ids is None else np.asarray(ids)
        columns: dict[str, np.ndarray] = {"id": ids_arr, "y_true": y_true_arr}
        columns["y_pred"] = np.asarray(y_pred)
        if y_score is not None:
            columns[SCORE_COLUMN] = np.asarray(y_score)
        return _validated(columns, source, text_ids=False)


def load_predictions(
    path_or_buffer: str | os.PathLike[str] | IO[Any] | bytes, *, source: str
) -> Predictions:
    """Read and validate a predictions file; `source` names it (and its revision) in errors.

    `bytes` (the file's content, as a snapshot holds it) are read as CSV, or as JSON when they
    start with `[` (records) or `{` (one object per line).

    >>> import io
    >>> preds = load_predictions(io.StringIO("id,y_true,y_pred\\na,1,1\\nb,0,1\\n"), source="x.csv")
    >>> len(preds), task_of(preds)
    (2, 'classification')
    """
    raw, suffix = _content(path_or_buffer, source)
    if not suffix:
        suffix = {b"[": ".json", b"{": ".jsonl"}.get(raw.lstrip()[:1], ".csv")
    try:
        if suffix in (".jsonl", ".ndjson", ".json"):
            header, columns = _read_json(raw, lines=suffix != ".json")
        else:
            header, columns = read_csv_columns(raw)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidPredictions(
            f"{source}: cannot be read as a predictions table ({exc}); write CSV with a header row"
        ) from exc
    if header is None:
        raise InvalidPredictions(
            f"{source}: the predictions file is empty; it needs a header "
            f"({', '.join(REQUIRED_COLUMNS)}, optional {SCORE_COLUMN}) and one row per sample"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InvalidPredictions(
            f"{source}: missing column(s) {', '.join(missing)}; found "
            f"{', '.join(header) or 'none'}. A predictions file needs "
            f"{', '.join(REQUIRED_COLUMNS)} (and {SCORE_COLUMN} for roc_auc and log_loss)"
        )
    return _validated(columns, source)


def load_pair(
    baseline: bytes, candidate: bytes, *, sources: tuple[str, str]
) -> tuple[Predictions, Predictions]:
    """Both revisions' predictions files (`load_predictions` each). Two large files are read at
    once on two threads: pandas' tokenizer lets go of the interpreter, the strings it makes for
    ids do not, so a million rows a side take about 0.9 of the time one after the other. An
    error is the baseline's first."""
    if min(len(baseline), len(candidate)) < PANDAS_FROM_BYTES:
        return (
            load_predictions(baseline, source=sources[0]),
            load_predictions(candidate, source=sources[1]),
        )
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(load_predictions, raw, source=source)
            for raw, source in zip((baseline, candidate), sources, strict=True)
        ]
        base, cand = (future.result() for future in futures)
    return base, cand


# pandas' C parser pays for its import (~0.3 s) from about this size on; below it the csv module
# reads a whole file faster than pandas imports. Both read the same table (tests/compare/
# test_predictions_reader.py compares them cell by cell).
PANDAS_FROM_BYTES = 2 * 1024 * 1024

# What pandas.read_csv takes for a missing value by default (pandas._libs.parsers.STR_NA_VALUES).
NA_STRINGS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
_BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
             "false": False}  # fmt: skip
_WANTED = (*REQUIRED_COLUMNS, SCORE_COLUMN)


def read_csv_columns(
    raw: bytes, *, pandas_from: int = PANDAS_FROM_BYTES
) -> tuple[list[str] | None, dict[str, np.ndarray]]:
    """The header (None for an empty file) and the predictions columns of a CSV, as
    `pandas.read_csv(dtype={"id": str}, skipinitialspace=True)` reads them: ids as text with
    missing ones as None, numbers as float64 (a missing cell is NaN), a True/False column as bool,
    anything else as the strings found (validation names the first bad cell)."""
    if len(raw) >= pandas_from:
        return _read_csv_pandas(raw)
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row]
    if not rows:
        return None, {}
    header = [cell.strip() for cell in rows[0]]
    width = len(header)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) > width:
            raise ValueError(f"Expected {width} fields in line {number}, saw {len(row)}")
    columns: dict[str, np.ndarray] = {}
    for name in _WANTED:
        if name not in header:
            continue
        at = header.index(name)
        cells = [row[at] if at < len(row) else "" for row in rows[1:]]
        columns[name] = _ids(cells) if name == "id" else _typed(cells)
    return header, columns


def _ids(cells: list[str]) -> np.ndarray:
    return np.array([None if c in NA_STRINGS else c for c in cells], dtype=object)


def _typed(cells: list[str]) -> np.ndarray:
    if cells and all(c in _BOOLEANS for c in cells):
        return np.array([_BOOLEANS[c] for c in cells], dtype=bool)
    try:
        return np.array(["nan" if c in NA_STRINGS else c for c in cells], dtype=np.float64)
    except ValueError:
        return np.array(cells, dtype=object)


def _read_csv_pandas(raw: bytes) -> tuple[list[str] | None, dict[str, np.ndarray]]:
    from mlops_ci.compare.numeric import pd  # only for large files: see PANDAS_FROM_BYTES

    try:
        # ids as object: the parser's own strings, where `str` (pyarrow-backed in pandas 3)
        # would cost a conversion each way, 0.2 s per million rows.
        frame = pd.read_csv(io.BytesIO(raw), dtype={"id": object}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return None, {}
    except pd.errors.ParserError as exc:
        raise ValueError(str(exc)) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = {c: frame[c].to_numpy() for c in _WANTED if c in frame}
    if "id" in frame and (missing := frame["id"].isna().to_numpy()).any():
        columns["id"] = columns["id"].copy()
        columns["id"][missing] = None  # as the csv module reads them
    return list(frame.columns), columns


def _read_json(raw: bytes, *, lines: bool) -> tuple[list[str] | None, dict[str, np.ndarray]]:
    text = raw.decode("utf-8")
    if lines:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = json.loads(text) if text.strip() else []
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("expected a list of objects, one per row")
    if not records:
        return None, {}
    header = list(dict.fromkeys(str(k).strip() for r in records for k in r))
    columns: dict[str, np.ndarray] = {}
    for name in _WANTED:
        if name not in header:
            continue
        cells = [r.get(name) for r in records]
        if name == "id":
            columns[name] = np.array([None if c is None else str(c) for c in cells], dtype=object)
        else:
            columns[name] = _json_numbers(cells)
    return header, columns


def _json_numbers(cells: list[Any]) -> np.ndarray:
    if cells and all(isinstance(c, bool) for c in cells):
        return np.array(cells, dtype=bool)
    try:
        return np.array([math.nan if c is None else c for c in cells], dtype=np.float64)
    except (TypeError, ValueError):
        return np.array(cells, dtype=object)


def _content(
    path_or_buffer: str | os.PathLike[str] | IO[Any] | bytes, source: str
) -> tuple[bytes, str]:
    """The file's bytes and its suffix ("" when only the content tells the format)."""
    if isinstance(path_or_buffer, bytes):
        return path_or_buffer, ""
    if isinstance(path_or_buffer, str | os.PathLike):
        try:
            return Path(path_or_buffer).read_bytes(), Path(path_or_buffer).suffix.lower()
        except FileNotFoundError as exc:
            raise InvalidPredictions(
                f"{source}: predictions file not found; check `predictions:` in mlops-ci.yaml "
                "and that the pipeline writes it"
            ) from exc
    data = path_or_buffer.read()
    return (data.encode("utf-8") if isinstance(data, str) else data), ""


def task_of(preds: Predictions) -> Task:
    """`"classification"` when every `y_true` and `y_pred` is a whole number and there are at
    most `MAX_CLASSES` (100) distinct values among them; otherwise `"regression"`.

    Regression models predict fractions almost always, so whole-number predictions mean labels;
    a regression on a small integer target whose model rounds its output would be mistaken for
    classification: pass `task="regression"` to `point_metrics`/`bootstrap_family` then.
    """
    if not whole_numbers(preds.y_true, preds.y_pred):
        return "regression"
    n_labels = len(distinct(np.concatenate([preds.y_true, preds.y_pred])))
    return "classification" if n_labels <= MAX_CLASSES else "regression"


def distinct(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)`, sorted. Asking for the counts keeps numpy on its sorting path: the
    plain call takes the hashing one, which imports `numpy.ma` (10 ms) to rule out masks."""
    return np.unique(values, return_counts=True)[0]


def whole_numbers(*columns: np.ndarray) -> bool:
    """Every value of every column is a whole number (a class label)."""
    return all(bool(np.all(c == np.round(c))) for c in columns)


def _validated(
    columns: dict[str, np.ndarray], source: str, *, text_ids: bool = True
) -> Predictions:
    """`text_ids`: the ids are Python strings or None already, as every reader here gives them;
    arrays from elsewhere are converted."""
    lengths = {name: len(col) if col.ndim == 1 else -1 for name, col in columns.items()}
    if any(length < 0 for length in lengths.values()) or len(set(lengths.values())) > 1:
        raise InvalidPredictions(
            f"{source}: columns must be one-dimensional and of equal length, got {lengths}"
        )
    if lengths["y_true"] == 0:
        raise InvalidPredictions(
            f"{source}: no rows; the evaluation wrote an empty predictions file"
        )
    ids = _validated_ids(columns["id"], source, text=text_ids)
    y_true = _numeric(columns["y_true"], "y_true", source, ids)
    y_pred = _numeric(columns["y_pred"], "y_pred", source, ids)
    y_score = None
    if SCORE_COLUMN in columns:
        y_score = _numeric(columns[SCORE_COLUMN], SCORE_COLUMN, source, ids)
    return Predictions(ids=ids, y_true=y_true, y_pred=y_pred, y_score=y_score, source=source)


def _validated_ids(raw: np.ndarray, source: str, *, text: bool) -> np.ndarray:
    if raw.dtype.kind in "OfU":
        # None or NaN (a NaN is the one value unequal to itself); elementwise, no Python loop.
        missing = np.equal(raw, None) | (raw != raw) if raw.dtype.kind != "U" else raw == ""
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise InvalidPredictions(
                f"{source}: row {row + 1} has no id; every row needs a unique id"
            )
    # Text ids: "7" in a CSV and 7 in JSON name the same sample. Readers hand over Python
    # strings already; converting a million of them to a fixed-width array costs 0.4 s.
    text = text or (raw.dtype == object and all(type(v) is str for v in raw.tolist()))
    ids = raw if text else raw.astype(str)
    if len(set(ids.tolist())) == len(ids):  # hashing: faster than sorting a million ids
        return ids
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) < len(ids):
        dup = uniq[counts > 1]
        shown = ", ".join(repr(str(d)) for d in dup[:5]) + (" ..." if len(dup) > 5 else "")
        raise InvalidPredictions(
            f"{source}: {len(dup)} id(s) appear more than once ({shown}); ids must be unique "
            "so rows can be matched between baseline and candidate"
        )
    return ids


def _numeric(raw: np.ndarray, name: str, source: str, ids: np.ndarray) -> np.ndarray:
    if raw.dtype == bool:
        return raw.astype(np.float64)
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None:
        # Find the first offending cell to name it.
        for i, v in enumerate(raw):
            try:
                float(v)
            except (TypeError, ValueError):
                raise InvalidPredictions(
                    f"{source}: column {name} has the non-numeric value {v!r} (id {ids[i]}); "
                    "labels must be numbers: encode classes as 0..K-1 (binary: 1 = positive)"
                ) from None
        values = np.array([float(v) for v in raw])
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "an empty cell" if np.isnan(values[i]) else f"the value {values[i]}"
        raise InvalidPredictions(
            f"{source}: column {name} has {what} (id {ids[i]}, {int(bad.sum())} such row(s)); "
            "every row needs a finite number"
        )
    return values


__all__ = [
    "MAX_CLASSES",
    "InvalidPredictions",
    "Predictions",
    "Task",
    "load_pair",
    "load_predictions",
    "task_of",
    "whole_numbers",
]
