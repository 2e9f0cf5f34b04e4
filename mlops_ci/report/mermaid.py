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

from mlops_ci.ci.untrusted.text import inert_line

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
