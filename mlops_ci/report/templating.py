"""Markdown from the jinja2 templates in `mlops_ci/report/templates/` (the report's sections, the
model card, the sweep leaderboard), through one environment.

Markdown, not HTML: autoescaping would not help, so every string from the repository goes
through the `md` filter (GFM escaping, `mlops_ci.report.markdown`) or is escaped before it
reaches the template. jinja2 loads on the first render, not on import.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _environment() -> Any:
    import jinja2

    from mlops_ci.report.markdown import fmt_number, fmt_percent, fmt_signed, md_text

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlops_ci.report", "templates"),
        autoescape=False,  # noqa: S701 - markdown; repository strings go through `md`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=md_text, num=fmt_number, signed=fmt_signed, pct=fmt_percent)
    return env


def render(template: str, **context: Any) -> str:
    """Render the template named `template` (e.g. `model-card.md.j2`, `metrics.md.j2`) with the
    markdown filters md, num, signed and pct."""
    return _environment().get_template(template).render(**context)
