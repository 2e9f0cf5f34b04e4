"""The hidden records the tool writes into its own comments, and the only way to read them back.

Two records: the verdict of a pull request's head at the end of the report comment (so the review
command can re-judge it without the run directory), and the acknowledgement at the end of the
bot's reply to an accept command (which head it was accepted for).

A record is read only from the position the tool alone writes it: the last line of a comment by
the tool's own login. Everything above that line may hold text a pull request shaped (a policy
diff, a metric name in a table); that text passes through `text.inert_line`, which breaks every
comment opener, but the position rule would hold without it: a record anywhere else is ignored,
however well formed.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Mapping
from typing import Any

from mlops_ci.ci.untrusted.inventory import entry_point

VERDICT_RECORD = "mlops-ci-verdict"
WAIVER_RECORD = "mlops-ci-waiver"
MAX_RECORD = 200_000  # base64 characters: a verdict of a few thousand rules
MAX_INFLATED = 2_000_000  # bytes a verdict record may inflate to (a zip bomb stops here)
_VERDICT = re.compile(rf"<!-- {VERDICT_RECORD} ([A-Za-z0-9+/=]{{1,{MAX_RECORD}}}) -->")
_ACK = re.compile(rf"<!-- {WAIVER_RECORD} (\d{{1,20}}) ([0-9a-f]{{40}}) -->")


def last_line(body: str) -> str:
    """The last non-blank line of a comment body: where the tool writes its record."""
    text = body.rstrip()
    return text[text.rfind("\n") + 1 :].strip()


def without_record(body: str) -> str:
    """`body` less the verdict record on its last line (if that is one), ending in a newline."""
    text = body.rstrip()
    if _VERDICT.fullmatch(last_line(text)):
        text = text[: text.rfind("\n") + 1].rstrip() if "\n" in text else ""
    return text + "\n" if text else ""


def verdict_record(verdict: Mapping[str, Any]) -> str:
    """The verdict as a hidden HTML comment: plain base64 has no `-`, so nothing in it can end
    the comment early. The caller puts it on the last line of the comment."""
    raw = zlib.compress(json.dumps(verdict, separators=(",", ":")).encode(), 9)
    return f"<!-- {VERDICT_RECORD} {base64.b64encode(raw).decode()} -->"


@entry_point("the hidden verdict record in the bot's report comment")
def read_verdict_record(body: str) -> dict[str, Any] | None:
    """The verdict the comment's last line records, or None when that line is no record we can
    read. A record anywhere else in the body is not ours to trust."""
    if not isinstance(body, str):
        return None
    found = _VERDICT.fullmatch(last_line(body))
    if found is None:
        return None
    try:
        raw = zlib.decompressobj().decompress(
            base64.b64decode(found.group(1), validate=True), MAX_INFLATED
        )
        doc = json.loads(raw)
    except (ValueError, zlib.error, RecursionError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == "verdict" else None


def ack_record(comment_id: int | str, head_sha: str) -> str:
    """What the bot's reply records on its last line: this command was accepted for this head."""
    return f"<!-- {WAIVER_RECORD} {comment_id} {head_sha} -->"


@entry_point("the hidden acknowledgement in the bot's reply to an accept command")
def read_ack_record(body: str) -> tuple[str, str] | None:
    """(command comment id, head SHA) from the reply's last line, or None."""
    if not isinstance(body, str):
        return None
    found = _ACK.fullmatch(last_line(body))
    return (found.group(1), found.group(2)) if found else None
