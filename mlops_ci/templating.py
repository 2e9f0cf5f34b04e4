"""Markdown from the jinja2 templates in `mlops_ci/templates/`.

Markdown, not HTML: autoescaping would not help, so every string from the repository goes
through the `md` filter (GFM escaping, `mlops_ci.report.markdown`) instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _environment() -> Any:
    import jinja2

    from mlops_ci.report.markdown import fmt_number, fmt_percent, fmt_signed, md_text

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlops_ci", "templates"),
        autoescape=False,  # noqa: S701 - markdown; repository strings go through `md`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=md_text, num=fmt_number, signed=fmt_signed, pct=fmt_percent)
    return env


def render(template: str, **context: Any) -> str:
    """Render `templates/<template>` with the markdown filters md, num, signed and pct."""
    return _environment().get_template(template).render(**context)
