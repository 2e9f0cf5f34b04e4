"""Plots of one revision as `dvc plots diff` shows them: which plots, and their data.

The ids follow DVC's grouping (directories expanded, `config::id` where two definitions share
one); the data is parsed as DVC parses it (dvc/repo/plots `parse`), every y field, x values
from another file joined by row. A file DVC could not read is reported (`problems`), never
drawn as an empty plot.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import posixpath
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mlops_ci.project.dvcfile import Declarations, PlotDef, parse_structured


class RevisionFiles(Protocol):
    """What plot ids need of a revision's files (`snapshot.RevisionFiles`)."""

    outs: dict[str, str]
    why: dict[str, str]

    def expand(self, path: str) -> list[str]: ...


MAX_PLOT_POINTS = 200
# The plot data DVC parses (dvc/repo/plots `parse`: its serializers' suffixes and CSV/TSV);
# any other file is an error for DVC, not an empty plot.
PLOT_DATA_SUFFIXES = (".json", ".toml", ".py", ".yaml", ".yml", ".csv", ".tsv")


def short(exc: BaseException) -> str:
    """An exception as a reason of at most 300 characters."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def plot_defs(
    reader: RevisionFiles, decl: Declarations, fail: Callable[[str, str], None]
) -> list[PlotDef]:
    """The plots `dvc plots diff` would show: ids after directory expansion, `config::id`
    where two definitions share an id (dvc.utils.plots.group_definitions_by_id). A directory
    output that cannot be listed is an error of the revision, not a plot of that name."""
    by_config: dict[str, list[str]] = {}
    for config, name, _props, path_id in decl.plots:
        if path_id and config:
            by_config.setdefault(config, []).append(name)
    defs: list[PlotDef] = []
    for config, name, props, path_id in decl.plots:
        if not path_id:
            defs.append(PlotDef(name, config, tuple(props.get("y") or {}), props, False))
            continue
        files = reader.expand(name)
        if files == [name] and reader.outs.get(name, "").endswith(".dir"):
            reason = reader.why.get(reader.outs[name], "unreadable")
            message = f"declared plots directory cannot be listed: its manifest is {reason}"
            fail(name, message)
            continue
        for file in files:
            if config and _closest_parent(file, by_config[config]) != name:
                continue  # a more specific definition in the same file owns it
            defs.append(PlotDef(file, config, (file,), props, True))
    counts: dict[str, set[str]] = {}
    for plot in defs:
        counts.setdefault(plot.id, set()).add(plot.config)
    out: dict[str, PlotDef] = {}
    for plot in defs:
        pid = plot.id
        if len(counts[pid]) > 1 and plot.config:
            pid = f"{plot.config}::{plot.id}"
        if pid not in out:
            out[pid] = PlotDef(pid, plot.config, plot.files, plot.props, plot.path_id)
    return list(out.values())


def _closest_parent(path: str, parents: list[str]) -> str:
    best = ""
    for parent in parents:
        common = posixpath.commonpath([path, parent]) if path and parent else ""
        if len(common) > len(best):
            best = common
    return best


def plot_entry(plot: PlotDef, contents: Mapping[str, bytes | None]) -> dict[str, Any]:
    entry = {"title": plot.title, "template": None if plot.image else plot.template}
    return entry | _plot_data(plot, contents)


def _plot_data(plot: PlotDef, contents: Mapping[str, bytes | None]) -> dict[str, Any]:
    if plot.image:
        data = contents.get(plot.files[0])
        return {
            "kind": "image",
            "digest": hashlib.sha256(data).hexdigest() if data is not None else None,
            "bytes": data,  # copied into the run directory by compare, never into a document
            "problems": {plot.files[0]: None} if data is None else {},
        }
    rows: list[dict[str, Any]] = []
    x = y = None
    problems: dict[str, str | None] = {}  # file -> why it cannot be read (None: not there)
    ys: list[str] = []
    for file in plot.files:
        data = contents.get(file)
        if data is None:
            problems[file] = None
            continue
        if posixpath.splitext(file)[1] not in PLOT_DATA_SUFFIXES:
            problems[file] = f"DVC reads no plot data from a {posixpath.splitext(file)[1]!r} file"
            continue
        fx, fields = plot.x_field(file), plot.y_fields(file)
        if plot.template.startswith("confusion") and file.endswith((".csv", ".tsv")):
            # Only two columns are counted: no row dicts for a million predictions.
            try:
                counted = confusion_counts(file, data, fx, fields[0]) if fx and fields else []
            except (ValueError, UnicodeDecodeError, csv.Error) as exc:
                problems[file] = short(exc)
                continue
            if counted:
                x, y = "actual", "predicted"
                rows.extend({**r, "source": file} for r in counted)
            continue
        try:
            table = plot_table(file, data, plot.props)
        except (ValueError, UnicodeDecodeError, csv.Error) as exc:
            problems[file] = short(exc)
            continue
        except Exception as exc:  # ruamel's own errors: the file is not valid YAML
            problems[file] = short(exc)
            continue
        if not table:
            continue
        if plot.template.startswith("confusion"):
            if fx and fields:
                x, y = "actual", "predicted"  # the rows _confusion makes
                rows.extend({**r, "source": file} for r in _confusion(table, fx, fields[0]))
            continue
        if fx is None and (source := plot.x_source(file)):
            joined = _x_from(source, contents, len(table))
            if joined is None:
                problems[file] = f"its x values in {source[0]} cannot be read or do not match"
                continue
            fx = source[1]
            table = [{**r, fx: value} for r, value in zip(table, joined, strict=True)]
        if fx is None:
            fx = "step"
            table = [{"step": i, **r} for i, r in enumerate(table)]
        if not fields:
            fields = [k for k in table[0] if k not in (fx, "step", "timestamp")][-1:]
        if not fields:
            continue
        x, y = x or fx, y or fields[0]
        # Every y field DVC draws is in the rows (their status compares them all); `y` is the
        # first, the one a single-series chart draws.
        ys += [f for f in fields if f not in ys]
        rows.extend(
            {x: _number(r.get(fx)), y: _number(r.get(fields[0]))}
            | {f: _number(r.get(f)) for f in fields[1:] if f in r}
            | {"source": file}
            for r in table
            if fx in r and fields[0] in r
        )
    entry = {"kind": "vega", "x": x, "y": y, "rows": thin(rows), "problems": problems}
    if len(ys) > 1:
        entry["y_fields"] = ", ".join(ys)
    return entry


def _x_from(
    source: tuple[str, str], contents: Mapping[str, bytes | None], rows: int
) -> list[Any] | None:
    """The x values of another file, one per row of the plotted file; None when that file
    cannot be read or its length differs (DVC refuses to draw it then)."""
    file, field = source
    data = contents.get(file)
    if data is None or posixpath.splitext(file)[1] not in PLOT_DATA_SUFFIXES:
        return None
    try:
        table = plot_table(file, data, {})
    except Exception:  # any parser's error: no x values
        return None
    values = [r[field] for r in table if field in r]
    return values if len(values) == rows else None


def plot_table(path: str, data: bytes, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a plot data file as DVC parses them: CSV/TSV cells as text, a JSON or YAML
    list of objects (or the first list a mapping holds)."""
    if path.endswith((".csv", ".tsv")):
        dialect = "excel-tab" if path.endswith(".tsv") else "excel"
        return list(csv.DictReader(io.StringIO(data.decode("utf-8")), dialect=dialect))
    parsed = parse_structured(path, data)
    if isinstance(parsed, dict):
        parsed = next((v for v in parsed.values() if isinstance(v, list)), [])
    return [r for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []


# From this size pandas counts the two columns (0.2 s for a million rows against 1 s for the
# csv module); the predictions of the same comparison have usually imported it already.
PANDAS_COUNTS_FROM_BYTES = 2 * 1024 * 1024


def confusion_counts(
    path: str,
    data: bytes,
    actual: str,
    predicted: str,
    *,
    pandas_from: int = PANDAS_COUNTS_FROM_BYTES,
) -> list[dict[str, Any]]:
    """The confusion rows (`actual`, `predicted`, `count`) of a CSV or TSV file, as
    `_confusion` counts the rows `csv.DictReader` reads: cells as text, a cell a short row
    lacks as "None", blank lines skipped."""
    sep = "\t" if path.endswith(".tsv") else ","
    if len(data) >= pandas_from:
        from mlops_ci.compare.numeric import pd

        header = pd.read_csv(io.BytesIO(data), sep=sep, nrows=0).columns
        if actual not in header or predicted not in header or actual == predicted:
            return _confusion(plot_table(path, data, {}), actual, predicted)
        frame = pd.read_csv(
            io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
            skip_blank_lines=True, usecols=[actual, predicted],
        )  # fmt: skip
        pairs = frame.groupby([actual, predicted], sort=False).size()
        counts = {(str(a), str(p)): int(n) for (a, p), n in pairs.items()}
    else:
        reader = csv.reader(
            io.StringIO(data.decode("utf-8")), "excel-tab" if sep == "\t" else "excel"
        )
        header = next((row for row in reader if row), None)
        if header is None:
            return []
        at = {name: header.index(name) if name in header else None for name in (actual, predicted)}
        counts = {}
        for row in reader:
            if not row:
                continue
            key = tuple(
                row[i] if i is not None and i < len(row) else "None"
                for i in (at[actual], at[predicted])
            )
            counts[key] = counts.get(key, 0) + 1
    return [{"actual": a, "predicted": p, "count": n} for (a, p), n in sorted(counts.items())]


def _confusion(rows: list[dict[str, Any]], actual: str, predicted: str) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (str(row.get(actual)), str(row.get(predicted)))
        counts[key] = counts.get(key, 0) + 1
    return [{"actual": a, "predicted": p, "count": n} for (a, p), n in sorted(counts.items())]


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def thin(rows: list[dict[str, Any]], limit: int = MAX_PLOT_POINTS) -> list[dict[str, Any]]:
    if len(rows) <= limit:
        return rows
    step = (len(rows) - 1) / (limit - 1)
    return [rows[round(i * step)] for i in range(limit)]
