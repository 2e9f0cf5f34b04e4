"""What the report shows of each DVC plot: a Mermaid chart, a table of counts, or a line saying
why it is not drawn.

A chart draws DVC's own series: one line per revision and source file (the `rev` and file of
`dvc plots diff --json`), named in the legend. Mermaid's `xychart-beta` spaces a line's values
evenly, so real points are drawn (on an axis labelled with their x values) when every line of
the chart has the same x values and at most `CHART_POINTS` of them; otherwise the lines are
interpolated on `CHART_POINTS` evenly spaced x values and the chart says so. A categorical y
(text, or a few whole numbers over many rows) is never interpolated: it is counted instead.
A confusion plot is drawn as per-class recall from its counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mlops_ci.report.markdown import fmt_number, md_text, table, table_row
from mlops_ci.report.mermaid import (
    BASELINE_COLOUR,
    CANDIDATE_COLOUR,
    MAX_CATEGORIES,
    chart_number,
    xychart,
)

# The chart is 640 px wide: more values than this per line are no longer told apart.
CHART_POINTS = 50
MAX_LINES = 8
SIDES = ("baseline", "candidate")
# (name, colour) for the baseline and the candidate line of each source file; one file keeps
# the report's grey / blue.
_PAIRS = [
    (("light blue", "#93c5fd"), ("blue", "#1d4ed8")),
    (("light red", "#fca5a5"), ("red", "#b91c1c")),
    (("light green", "#86efac"), ("green", "#15803d")),
    (("light purple", "#d8b4fe"), ("purple", "#7e22ce")),
]


@dataclass(frozen=True)
class PlotView:
    """How one plot is shown: `markdown` (chart or table, may be empty) and `shown`, the words
    of the plots list ("chart", "table of counts", "not drawn: ...")."""

    title: str
    markdown: str
    shown: str


@dataclass(frozen=True)
class Series:
    side: str
    source: str
    field: str  # "" unless the file gives the plot several y fields
    points: list[tuple[float, float]]
    texts: list[str]  # y values that are not numbers


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def plot_series(plot: dict) -> list[Series]:
    """The plot's lines, per revision and source file, in the order the rows come."""
    x, y = str(plot.get("x") or ""), str(plot.get("y") or "")
    # A file with several y fields gives each row every field (`y_fields` names them, `y`
    # first); DVC draws each field as its own line.
    fields = [f.strip() for f in str(plot.get("y_fields") or "").split(",") if f.strip()] or [y]
    out: list[Series] = []
    for side in SIDES:
        rows = plot.get(side)
        by_source: dict[str, Series] = {}
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or x not in row:
                continue
            source = str(row.get("source") or plot.get("id") or "")
            px = as_float(row.get(x))
            for name in fields:
                if name not in row:
                    continue
                field = name if len(fields) > 1 else ""
                key = f"{source}\n{field}"
                series = by_source.setdefault(key, Series(side, source, field, [], []))
                if px is None:
                    continue
                py = as_float(row.get(name))
                if py is None:
                    series.texts.append(str(row.get(name)))
                else:
                    series.points.append((px, py))
        out += by_source.values()
    # Baseline and candidate of one file side by side, files in their order of appearance.
    order = list(dict.fromkeys((s.source, s.field) for s in out))
    return sorted(out, key=lambda s: (order.index((s.source, s.field)), SIDES.index(s.side)))


def interpolate(points: list[tuple[float, float]], grid: Sequence[float]) -> list[float]:
    """Linear interpolation of `points` (sorted by x) on `grid`, clamped at both ends."""
    out, i = [], 0
    for gx in grid:
        while i + 1 < len(points) and points[i + 1][0] < gx:
            i += 1
        if gx <= points[0][0]:
            out.append(points[0][1])
        elif i + 1 >= len(points):
            out.append(points[-1][1])
        else:
            (x0, y0), (x1, y1) = points[i], points[i + 1]
            out.append(y0 if x1 == x0 else y0 + (y1 - y0) * (gx - x0) / (x1 - x0))
    return out


def is_categorical(series: Sequence[Series]) -> bool:
    """Text values, or few whole numbers over more rows than a chart draws (class labels):
    interpolating those would draw values no row has."""
    if any(s.texts for s in series):
        return True
    ys = {p[1] for s in series for p in s.points}
    many = max((len(s.points) for s in series), default=0) > CHART_POINTS
    return many and len(ys) <= MAX_CATEGORIES and all(v == int(v) for v in ys)


def _what(s: Series) -> str:
    return md_text(s.source, 120) + (f" ({md_text(s.field, 40)})" if s.field else "")


def _colours(series: Sequence[Series]) -> list[tuple[str, str]]:
    sources = list(dict.fromkeys((s.source, s.field) for s in series))
    if len(sources) == 1:
        return [
            ("grey", BASELINE_COLOUR) if s.side == "baseline" else ("blue", CANDIDATE_COLOUR)
            for s in series
        ]
    pairs = [_PAIRS[sources.index((s.source, s.field)) % len(_PAIRS)] for s in series]
    return [pair[SIDES.index(s.side)] for s, pair in zip(series, pairs, strict=True)]


def _side_label(side: str, labels: tuple[str, str]) -> str:
    return f"{side} {labels[SIDES.index(side)]}"


def curve_view(plot: dict, labels: tuple[str, str]) -> PlotView:
    """Lines of an x/y plot (ROC, precision-recall, a training curve). `labels` are the two
    revisions' names, already markdown-safe."""
    title = str(plot.get("title") or plot.get("id") or "plot")
    series = [s for s in plot_series(plot) if s.points or s.texts]
    if not series:
        return PlotView(title, "", "not drawn: no rows with both fields")
    if is_categorical(series):
        return counts_view(title, series, labels, str(plot.get("y") or ""))
    left_out = series[MAX_LINES:]
    series = series[:MAX_LINES]
    for s in series:
        s.points.sort()
    xs_of = [[p[0] for p in s.points] for s in series]
    longest = max(len(xs) for xs in xs_of)
    if longest < 2 and all(xs == xs_of[0] for xs in xs_of):
        values = "; ".join(
            f"{_side_label(s.side, labels)} {_what(s)}: {fmt_number(s.points[0][1])}"
            for s in series
        )
        return PlotView(title, "", f"not drawn: one point each ({values})")
    # A line shorter than the axis's categories is drawn over the first ones, so lines whose
    # x values all begin the longest one (epochs of a longer run) keep their real points.
    # Mermaid's category axis merges equal labels, so repeated x values are resampled.
    axis = max(xs_of, key=len)
    same_x = all(xs == axis[: len(xs)] for xs in xs_of) and len(set(axis)) == len(axis)
    x_name, y_name = str(plot.get("x") or "x"), str(plot.get("y") or "y")
    ys = [p[1] for s in series for p in s.points]
    y_range = (0.0, 1.0) if all(0 <= v <= 1 for v in ys) else None
    colours = _colours(series)
    palette = [c[1] for c in colours]
    if same_x and longest <= CHART_POINTS:
        counts = sorted({len(xs) for xs in xs_of})
        each = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        note = f"real points: {each} per line"
        source = xychart(
            title, x_label=x_name, y_label=y_name, y_range=y_range, palette=palette,
            categories=[chart_number(x) for x in axis],
            series=[("line", [p[1] for p in s.points]) for s in series],
        )  # fmt: skip
    else:
        lo = min(xs[0] for xs in xs_of)
        hi = max(xs[-1] for xs in xs_of)
        if hi <= lo:
            return PlotView(title, "", "not drawn: every point has the same x")
        grid = [lo + (hi - lo) * i / (CHART_POINTS - 1) for i in range(CHART_POINTS)]
        counts = sorted({len(xs) for xs in xs_of})
        measured = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        why = "" if same_x else " (the lines have different x values)"
        note = f"resampled to {CHART_POINTS} of {measured} points{why}"
        source = xychart(
            title, x_label=x_name, y_label=y_name, x_range=(lo, hi), y_range=y_range,
            palette=palette, series=[("line", interpolate(s.points, grid)) for s in series],
        )  # fmt: skip
    legend = " · ".join(
        f"{name}: {_side_label(s.side, labels)} {_what(s)}"
        for (name, _), s in zip(colours, series, strict=True)
    )
    extra = f"; {len(left_out)} more lines not drawn" if left_out else ""
    markdown = f"```mermaid\n{source}\n```\n*Lines: {legend}*\n\n*{note}{extra}*\n"
    return PlotView(title, markdown, "chart" + (", resampled" if "resampled" in note else ""))


def counts_view(
    title: str, series: Sequence[Series], labels: tuple[str, str], y_name: str
) -> PlotView:
    """A categorical y as counts per value: one column per revision and file."""
    counted = []
    for s in series:
        values = [fmt_number(p[1]) for p in s.points] + [md_text(t, 40) for t in s.texts]
        tally: dict[str, int] = {}
        for v in values:
            tally[v] = tally.get(v, 0) + 1
        counted.append(tally)
    keys = sorted({k for tally in counted for k in tally})
    shown = keys[:MAX_CATEGORIES]
    head = [md_text(y_name, 40) or "value"] + [
        f"{_side_label(s.side, labels)} {_what(s)}" for s in series
    ]
    rows = [table_row([k] + [str(t.get(k, 0)) for t in counted]) for k in shown]
    more = f"\n{len(keys) - len(shown)} more values not listed.\n" if len(keys) > len(shown) else ""
    text = (
        f"*{md_text(y_name, 40)} takes few distinct values: counted, not drawn as a line.*\n\n"
        + table(head, rows)
        + more
    )
    return PlotView(title, text, "table of counts (categorical y)")


def recall_per_class(rows: object) -> dict[str, float]:
    """Recall of each actual class from confusion rows (`actual`, `predicted`, `count`; a row
    without `count` is one sample)."""
    total: dict[str, int] = {}
    hit: dict[str, int] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or "actual" not in row or "predicted" not in row:
            continue
        n = row.get("count", 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            continue
        actual = str(row["actual"])
        total[actual] = total.get(actual, 0) + n
        hit[actual] = hit.get(actual, 0) + (n if str(row["predicted"]) == actual else 0)
    return {k: hit[k] / n for k, n in total.items() if n > 0}


def confusion_view(plot: dict, labels: tuple[str, str]) -> PlotView:
    """Per-class recall from the counts of both revisions: baseline bars, candidate line; a
    revision without confusion rows is named in the legend, never drawn as the other. A plot of
    several files (train and test) gets a chart per file: their counts are never pooled."""
    name = str(plot.get("title") or plot.get("id") or "confusion")
    sources = list(
        dict.fromkeys(
            str(row.get("source") or "")
            for side in SIDES
            for row in (plot.get(side) if isinstance(plot.get(side), list) else [])
            if isinstance(row, dict)
        )
    )
    if len(sources) <= 1:
        return _confusion_chart(name, plot.get("baseline"), plot.get("candidate"), labels)
    views = [
        _confusion_chart(
            f"{name} ({source})",
            *(
                [
                    r
                    for r in plot.get(side) or []
                    if isinstance(r, dict) and r.get("source") == source
                ]
                for side in SIDES
            ),
            labels,
        )
        for source in sources
    ]
    drawn = [v for v in views if v.markdown]
    if not drawn:
        return PlotView(name, "", "not drawn: no confusion rows")
    rest = "".join(f"\n**{md_text(v.title, 80)}**\n\n{v.markdown}" for v in drawn[1:])
    return PlotView(
        drawn[0].title,
        drawn[0].markdown + rest,
        f"{len(drawn)} charts of recall per class, one per file",
    )


def _confusion_chart(
    name: str, baseline: object, candidate: object, labels: tuple[str, str]
) -> PlotView:
    recalls = {"baseline": recall_per_class(baseline), "candidate": recall_per_class(candidate)}
    classes = sorted(set(recalls["baseline"]) | set(recalls["candidate"]))
    if not classes:
        return PlotView(name, "", "not drawn: no confusion rows")
    shown = classes[:MAX_CATEGORIES]
    title = f"{name} - recall per class"
    series, legend, palette = [], [], []
    for side, kind, colour, word in (
        ("baseline", "bar", BASELINE_COLOUR, "grey bars"),
        ("candidate", "line", CANDIDATE_COLOUR, "blue line"),
    ):
        recall = recalls[side]
        if not recall:
            legend.append(f"{_side_label(side, labels)}: no confusion rows, not drawn")
            continue
        series.append((kind, [recall.get(c, 0.0) for c in shown]))
        palette.append(colour)
        absent = [c for c in shown if c not in recall]
        gap = f" (no rows of class {md_text(', '.join(absent), 80)}: drawn as 0)" if absent else ""
        legend.append(f"{word}: {_side_label(side, labels)}{gap}")
    source = xychart(
        title, x_label="class", y_label="recall", categories=shown, y_range=(0, 1),
        series=series, palette=palette,
    )  # fmt: skip
    more = (
        f"; {len(classes) - len(shown)} more classes not drawn" if len(classes) > len(shown) else ""
    )
    markdown = f"```mermaid\n{source}\n```\n*{' · '.join(legend)}{more}*\n"
    return PlotView(title, markdown, "chart of recall per class")


def plot_view(plot: dict, labels: tuple[str, str]) -> PlotView:
    """The view that fits one comparison plot entry."""
    if str(plot.get("template") or "").startswith("confusion"):
        return confusion_view(plot, labels)
    return curve_view(plot, labels)
