"""The report's Data section, from the `data` section of comparison.json: the DVC-tracked files
that changed, then each declared table (rows, schema, missing values, shift, label balance).

Every path, column, dtype and category comes from the repository and goes through `md_text`,
so a column named `| @team <img>` stays one inert table cell.
"""

from __future__ import annotations

from typing import Any

from mlops_ci.compare.wording import p_text
from mlops_ci.report.markdown import fmt_number, md_text, table, table_row
from mlops_ci.report.sections import Section
from mlops_ci.report.templating import render

MAX_FILE_ROWS = 50  # in the comment; comparison.json keeps up to 500
MAX_COLUMN_ROWS = 40
# Characters the whole section may take (a GitHub comment holds 65,536).
MAX_SECTION_CHARS = 20_000
SHOWN_OUTPUTS = 10  # the model's outputs named on their one line
COLUMN_HEADER = ["Column", "Change", "Type", "Missing", "Effect", "p (adjusted)", "Shift",
                 "Categories"]  # fmt: skip
CHANGE_MARKS = {"added": "➕ added", "deleted": "➖ deleted", "modified": "🔁 modified",
                "renamed": "↪️ renamed", "not in cache": "⚠️ not in cache"}  # fmt: skip
TABLE_MARKS = {"changed": "🔁 changed", "unchanged": "unchanged", "added": "🆕 added",
               "removed": "⚠️ removed", "unknown": "⚠️ unknown (unreadable)",
               "absent": "absent at both revisions"}  # fmt: skip


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def size_text(value: object) -> str:
    size = _int(value)
    if size is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return "—"


def _pair(old: str, new: str) -> str:
    return old if old == new else f"{old} → {new}"


def _files(files: object) -> tuple[str | None, list[str], str | None]:
    if not isinstance(files, dict):
        return None, [], None
    if files.get("error"):
        return f"DVC-tracked files: ⚠️ {md_text(files['error'], 400)}", [], None
    rows = [r for r in files.get("rows") or [] if isinstance(r, dict)]
    counts = files.get("counts") if isinstance(files.get("counts"), dict) else {}
    total = sum(_int(v) or 0 for v in counts.values())
    if not total:
        return "No DVC-tracked file or directory changed.", [], None
    parts = ", ".join(f"{_int(n)} {md_text(k, 20)}" for k, n in counts.items() if _int(n))
    line = (
        f"DVC-tracked files and directories that changed ({parts}; what `dvc diff` reports, "
        f"sizes as DVC records them): {size_text(files.get('baseline_bytes'))} → "
        f"{size_text(files.get('candidate_bytes'))}"
    )
    out = []
    for r in rows[:MAX_FILE_ROWS]:
        path = md_text(r.get("path"), 160)
        if r.get("old_path"):
            path = f"{md_text(r.get('old_path'), 80)} → {path}"
        nfiles = [_int(r.get(k)) for k in ("baseline_nfiles", "candidate_nfiles")]
        shown = [f"{n:,}" if n is not None else "—" for n in nfiles]
        change = CHANGE_MARKS.get(str(r.get("change")), md_text(r.get("change"), 20))
        if r.get("not_in_cache") in ("baseline", "candidate") and r.get("change") != "not in cache":
            change += f" · ⚠️ {r['not_in_cache']} not in cache"
        out.append(table_row([
            path, change,
            _pair(size_text(r.get("baseline_size")), size_text(r.get("candidate_size"))),
            _pair(*shown) if any(n is not None for n in nfiles) else "",
        ]))  # fmt: skip
    more = len(rows) - len(out) + (_int(files.get("more_rows")) or 0)
    left_out = f"{more:,} more paths in comparison.json" if more > 0 else None
    return line, out, left_out


def _sample_text(side: dict[str, Any]) -> str:
    rows, sample = _int(side.get("rows")), _int(side.get("sample"))
    if rows is None or sample is None or not side.get("sampled"):
        return "all rows"
    return f"a sample of {sample:,} of {rows:,} rows"


def _table_line(t: dict[str, Any]) -> str:
    status = TABLE_MARKS.get(str(t.get("status")), md_text(t.get("status"), 20))
    base = t.get("baseline") if isinstance(t.get("baseline"), dict) else {}
    cand = t.get("candidate") if isinstance(t.get("candidate"), dict) else {}
    parts = [status]
    if _int(base.get("rows")) is not None or _int(cand.get("rows")) is not None:
        old, new = _int(base.get("rows")), _int(cand.get("rows"))
        rows = _pair(f"{old:,}" if old is not None else "—", f"{new:,}" if new is not None else "—")
        pct = t.get("row_change_pct")
        if isinstance(pct, int | float) and not isinstance(pct, bool) and pct:
            rows += f" ({pct:+.2f}%)"
        parts.append(f"rows {rows}")
        parts.append(
            "columns "
            + _pair(str(_int(base.get("columns")) or "—"), str(_int(cand.get("columns")) or "—"))
        )
        if base.get("sampled") or cand.get("sampled"):
            parts.append(f"shift tested on {_sample_text(base)} / {_sample_text(cand)}")
    for e in t.get("errors") or []:
        if isinstance(e, dict):
            parts.append(
                f"⚠️ at {md_text(str(e.get('revision'))[:12], 12)}: {md_text(e.get('message'), 300)}"
            )
    if t.get("note"):
        parts.append(md_text(t["note"], 120))
    if t.get("auto") is True:
        parts.append("not declared: profiled because its DVC hash changed")
    drifted = [str(c) for c in t.get("drifted_columns") or []]
    if drifted:
        parts.append(f"{len(drifted)} column{'s' if len(drifted) != 1 else ''} shifted")
    return " · ".join(parts)


def _rate_pair(c: dict[str, Any]) -> str:
    def pct(v: object) -> str:
        return f"{v * 100:.1f}%" if isinstance(v, int | float) and not isinstance(v, bool) else "—"

    return _pair(pct(c.get("baseline_missing")), pct(c.get("candidate_missing")))


def _interesting(c: dict[str, Any]) -> bool:
    return (
        c.get("change") != "same"
        or c.get("drifted") is True
        or c.get("untestable") is True
        or bool(c.get("new_categories") or c.get("vanished_categories"))
        or c.get("baseline_missing") != c.get("candidate_missing")
    )


def _column_row(c: dict[str, Any]) -> str:
    dtype = _pair(
        md_text(c.get("baseline_dtype") or "—", 30), md_text(c.get("candidate_dtype") or "—", 30)
    )
    change = {"added": "🆕 added", "removed": "⚠️ removed", "dtype": "🔁 type changed"}.get(
        str(c.get("change")), ""
    )
    test = {"ks": "KS D", "chi2": "Cramér's V"}.get(str(c.get("test")))
    effect = (
        f"{test} {fmt_number(c.get('effect'), 3)}" if test else md_text(c.get("note") or "", 80)
    )
    p_adj = p_text(c.get("p_adjusted"))
    shift = "🔴 shifted" if c.get("drifted") is True else ("no" if test else "")
    cats = []
    if c.get("new_categories"):
        cats.append("new: " + ", ".join(md_text(v, 30) for v in c["new_categories"][:5]))
    if c.get("vanished_categories"):
        cats.append("gone: " + ", ".join(md_text(v, 30) for v in c["vanished_categories"][:5]))
    return table_row([md_text(c.get("name"), 80), change, dtype, _rate_pair(c), effect, p_adj,
                      shift, "; ".join(cats)])  # fmt: skip


def _table(t: dict[str, Any]) -> dict[str, Any]:
    columns = [c for c in t.get("columns") or [] if isinstance(c, dict)]
    shown = [c for c in columns if _interesting(c)]
    shown.sort(key=lambda c: (c.get("change") == "same", not c.get("drifted"),
                              -(c.get("effect") or 0)))  # fmt: skip
    rows = [_column_row(c) for c in shown[:MAX_COLUMN_ROWS]]
    quiet = len(columns) - len(shown)
    left = []
    if len(shown) > MAX_COLUMN_ROWS:
        left.append(f"{len(shown) - MAX_COLUMN_ROWS} more changed columns in comparison.json")
    if quiet and rows:
        left.append(f"{quiet} column{'s' if quiet != 1 else ''} without a change not shown")
    label = t.get("label") if isinstance(t.get("label"), dict) else None
    label_rows = []
    if label:
        for c in label.get("classes") or []:
            if isinstance(c, dict):
                label_rows.append(table_row([
                    md_text(c.get("class"), 60), f"{(c.get('baseline') or 0) * 100:.1f}%",
                    f"{(c.get('candidate') or 0) * 100:.1f}%",
                ]))  # fmt: skip
    return {
        "path": md_text(t.get("path"), 160),
        "line": _table_line(t),
        "header": table(COLUMN_HEADER, []),
        "rows": rows,
        "left_out": "; ".join(left) or None,
        "label_column": md_text(label.get("column"), 60) if label else "",
        "label_header": table(["Class", "Baseline", "Candidate"], []),
        "label_rows": label_rows,
    }


# How the sentence names each kind of model output (compare/data_auto.py's MODEL_OUTPUT keys,
# the only values comparison.schema.json allows for a left-out entry's `output`).
OUTPUT_KINDS = {"predictions": "its predictions file", "plot": "its plots"}


def _outputs_line(paths: list[str], kinds: set[str]) -> str | None:
    """The one line naming the model's outputs left out (at most `SHOWN_OUTPUTS` of them), and
    of which kinds they are."""
    if not paths:
        return None
    named = ", ".join(paths[:SHOWN_OUTPUTS])
    if len(paths) > SHOWN_OUTPUTS:
        named += f" and {len(paths) - SHOWN_OUTPUTS} more in comparison.json"
    what = ", ".join(text for kind, text in OUTPUT_KINDS.items() if kind in kinds)
    return (
        "Not profiled, being the model's outputs that the report compares elsewhere"
        f"{f' ({what})' if what else ''}: {named}. Declare one under data.tables to profile it."
    )


def data_section_text(comparison: dict) -> tuple[str, int] | None:
    """The Data section's markdown and how many tables it shows; None when there is no data."""
    data = comparison.get("data")
    if not isinstance(data, dict):
        return None
    files_line, file_rows, files_left_out = _files(data.get("files"))
    tables = [_table(t) for t in data.get("tables") or [] if isinstance(t, dict)]
    auto = data.get("auto") if isinstance(data.get("auto"), dict) else {}
    outputs = []  # the model's outputs: one line for all, they are no news
    kinds: set[str] = set()
    for entry in auto.get("left_out") or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("output"):  # a model's output (compare/data_auto.py's MODEL_OUTPUT)
            outputs.append(md_text(entry.get("path"), 160))
            kinds.add(str(entry["output"]))  # the schema allows only MODEL_OUTPUT's kinds
            continue
        tables.append({"path": md_text(entry.get("path"), 160), "rows": [], "label_rows": [],
                       "line": "not profiled: " + md_text(entry.get("reason"), 200),
                       "left_out": None})  # fmt: skip
    outputs_line = _outputs_line(outputs, kinds)
    error = (
        md_text(f"the data section could not be computed: {data['error']}", 400)
        if data.get("error")
        else None
    )
    if not files_line and not tables and not error and not outputs_line:
        return None
    fdr = data.get("fdr")
    how = None
    if any(t["rows"] for t in tables) and isinstance(fdr, float):
        how = (
            "Shift: two-sample Kolmogorov-Smirnov for numbers (effect: KS D), chi-square on "
            f"category counts for the rest (effect: Cramér's V); p-values of all columns "
            f"corrected together (Benjamini-Hochberg, false discovery rate {fdr:g}). Rows, "
            "missing rates, types and categories are counted over every row; numbers are "
            "tested on the sample stated, drawn from a seed both revisions' content sets."
        )

    def text() -> str:
        return render(
            "data.md.j2", error=error, files_line=files_line, files_header=table(
                ["Path", "Change", "Size", "Files"], []), file_rows=file_rows,
            files_left_out=files_left_out, tables=tables, how=how, outputs_line=outputs_line,
        )  # fmt: skip

    # The section is never dropped when a report is fitted to a forge's limit, so it keeps
    # to a budget of its own: column tables go first (from the last table), then file rows.
    out = text()
    for t in reversed(tables):
        if len(out) <= MAX_SECTION_CHARS:
            break
        if t["rows"] or t["label_rows"]:
            t["rows"], t["label_rows"] = [], []
            t["left_out"] = "column details in comparison.json (the report keeps to its size)"
            out = text()
    if len(out) > MAX_SECTION_CHARS and file_rows:
        hidden = len(file_rows)
        file_rows = []
        files_left_out = (
            f"{hidden:,} changed paths in comparison.json (the report keeps to its size)"
        )
        out = text()
    if len(out) > MAX_SECTION_CHARS:
        keep = [t for t in tables if len(t["line"]) < 2000][:20]
        tables = [*keep, {"path": "…", "line": f"{len(tables) - len(keep)} more tables in "
                          "comparison.json", "rows": [], "label_rows": [], "left_out": None}]  # fmt: skip
        out = text()
    return out, len(tables)


def data_section(comparison: dict) -> Section | None:
    """The Data section of the report (between params and the policy change)."""
    found = data_section_text(comparison)
    if found is None:
        return None
    text, tables = found
    return Section("data", text, label=f"data section ({tables} tables)")


def data_changed(comparison: dict) -> bool:
    """Whether the data section shows a change (a tracked path or a table), for the headline."""
    data = comparison.get("data")
    if not isinstance(data, dict):
        return False
    files = data.get("files") if isinstance(data.get("files"), dict) else {}
    counts = files.get("counts") if isinstance(files.get("counts"), dict) else {}
    tables = [t for t in data.get("tables") or [] if isinstance(t, dict)]
    return any(_int(n) for n in counts.values()) or any(
        t.get("status") not in ("unchanged", "absent") for t in tables
    )
