"""The review's waivers in the report: a "Waived" line per waived rule, a line per waiver that
no longer applies, and the report updated in place after a review command.

Everything a reviewer wrote (the reason, the target) and their login is escaped as inert text:
no markdown, no links, no @-mentions, no HTML that could end the hidden records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlops_ci.ci.untrusted.records import read_verdict_record, verdict_record, without_record
from mlops_ci.report.markdown import code_span, md_link, md_text
from mlops_ci.report.sections import VERDICT_MARKS

START = "<!-- mlops-ci-waivers -->"
END = "<!-- /mlops-ci-waivers -->"
_BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END) + r"\n?", re.S)
_GATE_LINE = re.compile(r"^Gate: .*$", re.M)

# The record's format and its position belong to the boundary (ci/untrusted/records.py).
encode_payload = verdict_record
decode_payload = read_verdict_record


def waivers_block(verdict: Mapping[str, Any]) -> str:
    """The block under the headline ("" when the verdict has no waivers of any kind)."""
    lines: list[str] = []
    waivers = [w for w in verdict.get("waivers") or [] if isinstance(w, Mapping)]
    for r in verdict.get("rules") or []:
        if not isinstance(r, Mapping) or r.get("outcome") != "waived":
            continue
        given = [w for w in waivers if w.get("target") in (r.get("metric"), r.get("rule"))]
        w = given[0] if given else {}
        link = md_link("comment", w.get("comment_url")) if w.get("comment_url") else ""
        lines.append(
            f"- **Waived** {code_span(r.get('rule'), 40)} of {code_span(r.get('metric'))}"
            f" by {md_text(w.get('who'), 60)}"
            f" for {md_text(str(w.get('head_sha') or '')[:12], 12)}"
            f" ({md_text(w.get('when'), 30)}): {md_text(w.get('why'), 500)}"
            + (f" ({link})" if link else "")
        )
    for note in verdict.get("stale_waivers") or []:
        lines.append(f"- {md_text(note, 300)}")
    if not lines:
        return ""
    return f"{START}\n" + "\n".join(lines) + f"\n{END}\n"


def gate_line(verdict: Mapping[str, Any]) -> str:
    value = str(verdict.get("verdict"))
    mark = VERDICT_MARKS.get(value, md_text(value, 20))
    summary = verdict.get("summary")
    return f"Gate: {mark}" + (f": {md_text(summary, 300)}" if summary else "")


def splice_waivers(body: str, verdict: Mapping[str, Any], payload: str) -> str:
    """The report comment `body` re-judged: its Gate line, its waivers block and its hidden
    verdict record replaced; the rest (tables, charts) stays as the gate run rendered it."""
    body = _BLOCK.sub("", body)
    block = waivers_block(verdict)
    found = _GATE_LINE.search(body)
    if found is not None:
        line = gate_line(verdict)
        body = body[: found.start()] + line + "\n\n" + block + body[found.end() :].lstrip("\n")
    else:
        body = block + body
    # The record is the last line, where the tool alone writes it (records.read_verdict_record).
    return without_record(body) + payload + "\n"
