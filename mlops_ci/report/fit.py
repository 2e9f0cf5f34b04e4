"""Shrink a report to a forge's size limit by dropping detail in a fixed order.

GitHub rejects comment bodies over 65,536 characters (GitLab notes: 1,000,000). A report is never
rejected: plots go first, then the trend, the unchanged rows, the params table, and at last the
tail of the metrics table (worst rows are on top); the footer says what was left out and where
the full report is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlops_ci.report.sections import Section

DROP_ORDER = ("plots", "trend", "unchanged", "params")


def size(text: str) -> int:
    """Length in UTF-16 code units: never less than the character count a forge may use."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def fit_sections(
    sections: Sequence[Section],
    limit: int | None,
    footer: Callable[[list[str]], str],
) -> tuple[str, list[str]]:
    """The sections joined (with `footer(dropped)`) to at most `limit`, and what was dropped."""
    kept = list(sections)
    dropped: list[str] = []

    def total() -> int:
        return sum(size(s.text) for s in kept) + size(footer(dropped))

    if limit is None or total() <= limit:
        return "".join(s.text for s in kept) + footer(dropped), dropped
    for key in DROP_ORDER:
        for section in [s for s in kept if s.key == key]:
            kept.remove(section)
            dropped.append(section.label or key)
        if total() <= limit:
            return "".join(s.text for s in kept) + footer(dropped), dropped
    kept = [
        _cut_metrics(s, kept, dropped, limit, footer) if s.key == "metrics" else s for s in kept
    ]
    text = "".join(s.text for s in kept) + footer(dropped)
    if size(text) > limit:
        # Only reachable with a limit smaller than the fixed parts: keep the head (marker first).
        end = footer(dropped)
        text = text[: max(limit - size(end) - 2, 0) // 2] + "\n\n" + end
    return text, dropped


def _cut_metrics(
    metrics: Section,
    kept: list[Section],
    dropped: list[str],
    limit: int,
    footer: Callable[[list[str]], str],
) -> Section:
    rows = metrics.rows
    label = f"{len(rows)} of {len(rows)} changed metric rows"
    dropped.append(label)
    note = f"\n*{len(rows)} more changed metric rows are left out here; see the full report.*\n\n"
    others = sum(size(s.text) for s in kept if s is not metrics)
    budget = limit - others - size(footer(dropped)) - size("#### Metrics\n\n")
    budget -= size(metrics.head) + size(note) + 16
    keep = 0
    for row in rows:
        budget -= size(row)
        if budget < 0:
            break
        keep += 1
    left = len(rows) - keep
    dropped[-1] = f"{left} of {len(rows)} changed metric rows"
    note = f"\n*{left} more changed metric rows are left out here; see the full report.*\n\n"
    text = "#### Metrics\n\n" + metrics.head + "".join(rows[:keep]) + note
    return Section("metrics", text, rows=rows[:keep], head=metrics.head)
