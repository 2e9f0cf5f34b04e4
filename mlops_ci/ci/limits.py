"""The forges' size limits and the hidden comment marker, shared by rendering and posting.

They sit below both `report` (which fits a report to a limit) and `forge` (which posts it).
"""

from __future__ import annotations

import re

STATUS_DESCRIPTION_LIMIT = 140  # GitHub rejects longer commit status descriptions
GITHUB_COMMENT_LIMIT = 65536  # GitHub rejects longer issue comment bodies (422)
GITLAB_NOTE_LIMIT = 1_000_000  # GitLab's maximum note length
CHECK_SUMMARY_LIMIT = 65535  # GitHub's check-run output.summary
SUMMARY_LIMIT_BYTES = 1024 * 1024  # GitHub's job summary: 1 MiB per step
_MARKER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@#+=-]{0,199}$")


def hidden_marker(marker: str) -> str:
    """`<!-- marker -->`: invisible in the rendered comment, found again by the next run."""
    if not _MARKER_RE.match(marker) or "--" in marker:
        raise ValueError(
            f"comment marker {marker!r} must be letters, digits and _.:/@#+=- (no '--')"
        )
    return f"<!-- {marker} -->"


def with_marker(body: str, marker: str) -> str:
    tag = hidden_marker(marker)
    return body if tag in body else f"{tag}\n{body}"


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def fit(text: str, limit: int, note: str, *, measure_bytes: bool = False) -> str:
    """Shrink `text` to `limit` (characters, or UTF-8 bytes) at a line break, ending with `note`.

    Reports must fit by shrinking, never by being rejected; the note says where the full one is.
    """

    def size(s: str) -> int:
        return len(s.encode()) if measure_bytes else len(s)

    if size(text) <= limit:
        return text
    tail = f"\n\n{note}\n"
    budget = max(0, limit - size(tail))
    head = text.encode()[:budget].decode("utf-8", "ignore") if measure_bytes else text[:budget]
    if "\n" in head:
        head = head[: head.rindex("\n")]
    # An unclosed code fence would swallow the note.
    if head.count("```") % 2:
        head = head[: head.rindex("```")]
    return head.rstrip() + tail
