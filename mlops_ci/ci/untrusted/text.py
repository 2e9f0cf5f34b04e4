"""Untrusted text made inert: the one function every renderer passes such text through.

Metric and param names, file paths, a policy diff, a reviewer's reason, a retrain run's list of
changed files: whatever a pull request wrote can reach a comment the tool posts, and the tool
later reads hidden records back from its own comments (`records`). So whatever the renderer
(markdown text, a code span, a code block, a table cell, a heading, a pull request body), the
text first goes through `inert_line`:

- control characters (C0, DEL, C1 with NEL), the line and paragraph separators and the
  bidirectional overrides become spaces: one line stays one line, and no terminal escape or
  reordered text survives;
- an HTML comment opener `<!--` is broken with a zero-width space, so no hidden comment (and
  no record of ours) can begin inside rendered text, even in code, where markdown keeps `<`;
- the names of our records (`mlops-ci-verdict`, `mlops-ci-waiver`, `mlops-ci-report`) are
  broken the same way, so even a reader that ignored the opener would find none.

`inert_lines` does the same for a block of several lines (a code block's body).
"""

from __future__ import annotations

import re

from mlops_ci.ci.untrusted.inventory import entry_point

ZWSP = "\u200b"
# C0 and C1 controls (NEL is \x85), DEL, LS/PS, the bidi embeddings/overrides/isolates, BOM.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]+")
_OPENER = re.compile(r"<!--")
_OUR_NAMES = re.compile(r"(?i)(mlops-ci)(?=-(?:verdict|waiver|report))")


def clip(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    if limit is not None and limit > 0 and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


@entry_point("any untrusted text a renderer shows (one line)")
def inert_line(value: object, limit: int | None = None) -> str:
    """`value` as one line of text that can open no comment and name no record of ours.

    >>> inert_line("a\\u2028<!-- mlops-ci-verdict x -->")
    'a <!\\u200b-- mlops-ci\\u200b-verdict x -->'
    """
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub(" ", text).strip()
    text = clip(text, limit)
    # After the cut: an ellipsis cannot form an opener, and breaking never shortens.
    if "<" in text or "mlops" in text.lower():
        text = _OPENER.sub("<!" + ZWSP + "--", text)
        text = _OUR_NAMES.sub(lambda m: m.group(1) + ZWSP, text)
    return text


@entry_point("any untrusted text a renderer shows (several lines)")
def inert_lines(text: object, limit: int | None = None) -> str:
    """A block of lines, each made inert by `inert_line` (leading spaces kept: a diff's
    indentation is its meaning); line breaks are `\\n` only."""
    body = clip(str(text).replace("\r\n", "\n").replace("\r", "\n"), limit)
    return "\n".join(_indent(line) + inert_line(line) for line in body.split("\n"))


def _indent(line: str) -> str:
    stripped = line.lstrip(" \t")
    return line[: len(line) - len(stripped)] if stripped else ""
