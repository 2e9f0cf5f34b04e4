"""Inline charts as Mermaid `xychart-beta` blocks, which GitHub and GitLab draw natively.

No image host is needed: the chart is text in the comment. Mermaid's grammar has no escape for
quotes and its directives start with `%%`, so every label from the repo is reduced to a small
safe alphabet (`chart_text`); numbers are written in plain decimal (the grammar has no exponent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mlops_ci.project.untrusted.text import inert_line

# Two series at most per chart; xychart-beta draws no legend, so the colours are fixed here and
# the legend is written under the chart.
BASELINE_COLOUR = "#9ca3af"
CANDIDATE_COLOUR = "#2563eb"
# Smaller than mermaid's 700x500 default so a few charts do not fill a reviewer's screen.
_INIT = (
    '%%{{init: {{"xyChart": {{"width": 640, "height": 320}}, '
    '"themeVariables": {{"xyChart": {{"plotColorPalette": "{}"}}}}}}}}%%'
)
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,/()+=-]+")
GRID_POINTS = 21
MAX_CATEGORIES = 30


@dataclass(frozen=True)
class Chart:
    """One Mermaid chart: its source (without the fence) and a markdown-safe legend line."""

    title: str
    source: str
    legend: str

    def markdown(self) -> str:
        return f"```mermaid\n{self.source}\n```\n{self.legend}\n"


def chart_text(value: object, limit: int = 40) -> str:
    """A label reduced to characters Mermaid's grammar and the markdown fence both leave inert
    (after `inert_line`, the boundary's one function for untrusted text)."""
    text = _UNSAFE.sub(" ", inert_line(value))
    text = " ".join(text.split())
    return text[:limit].strip() or "-"


def chart_number(value: float) -> str:
    """Plain decimal, 6 significant digits at most, never an exponent."""
    if not math.isfinite(value):
        return "0"
    if value == 0:
        return "0"
    decimals = max(0, 5 - math.floor(math.log10(abs(value))))
    text = f"{value:.{min(decimals, 12)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def xychart(
    title: str,
    *,
    x_label: str,
    y_label: str,
    categories: Sequence[str] | None = None,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    series: Sequence[tuple[str, Sequence[float]]],
    palette: Sequence[str] = (BASELINE_COLOUR, CANDIDATE_COLOUR),
) -> str:
    """Mermaid source for one `xychart-beta`; `series` rows are ("line" | "bar", values)."""
    lines = [
        _INIT.format(", ".join(palette)),
        "xychart-beta",
        f'    title "{chart_text(title, 60)}"',
    ]
    if categories is not None:
        cats = ", ".join(f'"{chart_text(c, 16)}"' for c in categories)
        lines.append(f'    x-axis "{chart_text(x_label)}" [{cats}]')
    elif x_range is not None:
        lo, hi = x_range
        lines.append(
            f'    x-axis "{chart_text(x_label)}" {chart_number(lo)} --> {chart_number(hi)}'
        )
    if y_range is not None:
        lo, hi = y_range
        lines.append(
            f'    y-axis "{chart_text(y_label)}" {chart_number(lo)} --> {chart_number(hi)}'
        )
    else:
        lines.append(f'    y-axis "{chart_text(y_label)}"')
    for kind, values in series:
        lines.append(f"    {kind} [{', '.join(chart_number(v) for v in values)}]")
    return "\n".join(lines)


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _points(rows: object, x: str, y: str) -> list[tuple[float, float]]:
    if not isinstance(rows, list):
        return []
    points = []
    for row in rows:
        if isinstance(row, dict):
            px, py = _as_float(row.get(x)), _as_float(row.get(y))
            if px is not None and py is not None:
                points.append((px, py))
    points.sort()
    return points


def _interp(points: list[tuple[float, float]], grid: list[float]) -> list[float]:
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


def _legend(baseline: str | None, candidate: str, kinds: tuple[str, str]) -> str:
    parts = []
    if baseline is not None:
        parts.append(f"grey {kinds[0]}: baseline {baseline}")
    parts.append(f"blue {kinds[1]}: candidate {candidate}")
    return "*" + " · ".join(parts) + "*\n"


def curve_chart(plot: dict, baseline_label: str, candidate_label: str) -> Chart | None:
    """A line chart of one x/y plot (ROC, precision-recall, loss curve), resampled on a grid.

    xychart-beta spaces the points of a line evenly over the x range, so both revisions are
    interpolated onto the same evenly spaced grid. `*_label` must already be markdown-safe.
    """
    x, y = str(plot.get("x") or ""), str(plot.get("y") or "")
    base, cand = _points(plot.get("baseline"), x, y), _points(plot.get("candidate"), x, y)
    if not cand and not base:
        return None
    xs = [p[0] for p in base + cand]
    lo, hi = min(xs), max(xs)
    if hi <= lo:
        return None
    grid = [lo + (hi - lo) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
    series = []
    ys = []
    for pts in (base, cand):
        if pts:
            values = _interp(pts, grid)
            series.append(("line", values))
            ys += values
    y_range = (0.0, 1.0) if all(0 <= v <= 1 for v in ys) else None
    title = str(plot.get("title") or plot.get("id") or "plot")
    # A lone candidate line would take the baseline's grey: repeat it so colours stay stable.
    if not base:
        series.insert(0, ("line", series[0][1]))
    source = xychart(title, x_label=x, y_label=y, x_range=(lo, hi), y_range=y_range, series=series)
    return Chart(
        title, source, _legend(baseline_label if base else None, candidate_label, ("line", "line"))
    )


def confusion_chart(plot: dict, baseline_label: str, candidate_label: str) -> Chart | None:
    """Per-class recall from a confusion plot's `actual`/`predicted` rows: the candidate's line
    drawn over the baseline's bars."""
    x, y = str(plot.get("x") or "actual"), str(plot.get("y") or "predicted")

    def recall(rows: object) -> dict[str, float]:
        total: dict[str, int] = {}
        hit: dict[str, int] = {}
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and x in row and y in row:
                actual = str(row[x])
                total[actual] = total.get(actual, 0) + 1
                hit[actual] = hit.get(actual, 0) + (str(row[y]) == actual)
        return {k: hit[k] / n for k, n in total.items()}

    base, cand = recall(plot.get("baseline")), recall(plot.get("candidate"))
    classes = sorted(set(base) | set(cand))[:MAX_CATEGORIES]
    if not classes:
        return None
    title = f"{plot.get('title') or plot.get('id') or 'confusion'} - recall per class"
    line = [cand.get(c, 0.0) for c in classes]
    series: list[tuple[str, Sequence[float]]] = [
        ("bar", [base.get(c, 0.0) for c in classes] if base else line),
        ("line", line),
    ]
    source = xychart(
        title,
        x_label="class",
        y_label="recall",
        categories=classes,
        y_range=(0, 1),
        series=series,
    )
    return Chart(
        title, source, _legend(baseline_label if base else None, candidate_label, ("bars", "line"))
    )


def plot_chart(plot: dict, baseline_label: str, candidate_label: str) -> Chart | None:
    """The chart that fits a comparison plot entry, or None when it has nothing drawable."""
    if not isinstance(plot, dict):
        return None
    if str(plot.get("template") or "").startswith("confusion"):
        return confusion_chart(plot, baseline_label, candidate_label)
    return curve_chart(plot, baseline_label, candidate_label)
