"""The rendered report.md read back: Mermaid charts with their legends, tables, list items.

Tests compare what is read here with DVC, scikit-learn, scipy and git, never with the report's
own code, so a chart or a sentence that says something else than its oracle fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BLOCK = re.compile(
    r"\*\*(?P<title>[^\n]*)\*\*\n\n```mermaid\n(?P<src>.*?)\n```\n(?P<after>.*?)(?=\n\*\*|\n#### |\Z)",
    re.S,
)
_NUMBERS = re.compile(r"\[([^\]]*)\]")


@dataclass
class ParsedChart:
    title: str
    categories: list[str] | None
    x_range: tuple[float, float] | None
    series: list[tuple[str, list[float]]]
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour words, what)
    note: str = ""


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def charts(markdown: str) -> list[ParsedChart]:
    out = []
    for found in _BLOCK.finditer(markdown):
        src, after = found.group("src"), found.group("after")
        categories = x_range = None
        series = []
        for line in src.splitlines():
            line = line.strip()
            if line.startswith("x-axis"):
                cats = _NUMBERS.search(line)
                if cats:
                    categories = [c.strip().strip('"') for c in cats.group(1).split(",")]
                else:
                    lo, hi = line.rsplit('"', 1)[1].split("-->")
                    x_range = (float(lo), float(hi))
            elif line.startswith(("line ", "bar ")):
                kind, values = line.split(" ", 1)
                series.append((kind, _floats(_NUMBERS.search(values).group(1))))
        legend: list[tuple[str, str]] = []
        lines = [ln.strip("*") for ln in after.strip().splitlines() if ln.startswith("*")]
        note = ""
        for ln in lines:
            body = ln.removeprefix("Lines: ")
            if ln.startswith("Lines: ") or ": baseline" in ln or ": candidate" in ln:
                for part in body.split(" · "):
                    words, _, what = part.partition(": ")
                    legend.append((words, what))
            elif not note:
                note = ln
        out.append(ParsedChart(found.group("title"), categories, x_range, series, legend, note))
    return out


def tables(markdown: str) -> list[list[list[str]]]:
    """Every GFM table: rows of cells (header first, the separator left out)."""
    out, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]
            if not all(re.fullmatch(r"-{3,}", c) for c in cells):
                current.append(cells)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def table_with(markdown: str, first_header: str) -> list[list[str]]:
    for t in tables(markdown):
        if t and t[0][0] == first_header:
            return t
    raise AssertionError(f"no table headed {first_header!r}")


def unescape(cell: str) -> str:
    return re.sub(r"\\(.)", r"\1", cell).replace("\u200b", "")
