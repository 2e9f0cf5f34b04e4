"""The review's waivers read through the forge: what both `gate` (every run on a pull request)
and `review` (a new command) need, apart from either command so neither imports the other.

An accept command counts once the review accepted it: our own reply records the head SHA it
was accepted for (`gate/waivers.ack_marker`); on GitLab, which has no comment trigger, a note
counts for the head the merge request had when it was written (the forge's own timestamps).
The commenter's permission is asked again every time.
"""

from __future__ import annotations

from typing import Any

from mlops_ci.gate.verdict import Verdict
from mlops_ci.gate.waivers import BadCommand, Waiver, apply_waivers, parse_command, read_acks
from mlops_ci.project.errors import ServiceError

REPORT_MARKER = "<!-- mlops-ci-report:"


def collect_waivers(forge: Any, number: int, *, extra: Waiver | None = None) -> list[Waiver]:
    """Every accept command on the pull request that the review accepted (our own reply names
    the head it was accepted for), from someone who may waive *now*. Forge errors propagate:
    the caller applies no waiver then (fail closed).

    GitLab has no comment trigger: a note counts for the head the merge request had when it was
    written (the forge's own timestamps, `note_head`)."""
    comments = forge.pr_comments(number)
    me = forge.own_login()
    acks = read_acks(c.body for c in comments if me and c.author == me)
    allowed: dict[str, bool] = {}
    found: list[Waiver] = []
    for c in comments:
        if not c.author or c.author == me:
            continue
        try:
            command = parse_command(c.body)
        except BadCommand:
            continue
        if command is None:
            continue
        head = acks.get(str(c.id)) or forge.note_head(number, c.created_at)
        if head is None:
            continue
        if c.author not in allowed:
            allowed[c.author] = forge.may_waive(c.author)
        if allowed[c.author]:
            found.append(
                Waiver(
                    command.target, c.author, c.created_at, command.reason, head, c.url, str(c.id)
                )
            )
    if extra is not None and not any(w.comment_id == extra.comment_id for w in found):
        found.append(extra)
    return found


def apply_review(verdict: Verdict, forge: Any, number: int, head_sha: str | None) -> Verdict:
    """The gate's hook: apply the waivers the review gave for `head_sha` (in place). When they
    cannot be read (the forge failed), none applies and the verdict says so."""
    verdict.head_sha = head_sha
    try:
        waivers = collect_waivers(forge, number)
    except ServiceError as exc:
        verdict.stale_waivers = [f"waivers from the review were not read ({exc}); none applied"]
        return verdict
    notes = apply_waivers(verdict, waivers, head_sha)
    verdict.stale_waivers = notes
    return verdict


def find_report(forge: Any, number: int, head_sha: str) -> tuple[Any, dict[str, Any]] | None:
    """Our report comment whose hidden verdict record is for `head_sha` (newest first)."""
    from mlops_ci.report.waivers import decode_payload

    me = forge.own_login()
    for c in reversed(forge.pr_comments(number)):
        if not me or c.author != me or REPORT_MARKER not in c.body:
            continue
        record = decode_payload(c.body)
        if record is not None and record.get("head_sha") == head_sha:
            return c, record
    return None


def merged_waivers(forge: Any, sha: str) -> list[dict[str, Any]]:
    """The waivers of the pull request that `sha` merged, for its final head, with its number:
    what the model card of the version built from `sha` records. Nothing when the forge cannot
    tell (the card then says nothing was waived rather than guess)."""
    try:
        merged = forge.merged_pr(sha)
        if merged is None:
            return []
        number, head = merged
        waivers = collect_waivers(forge, number)
    except ServiceError:
        return []
    return [w.to_dict() | {"pr": number} for w in waivers if w.head_sha == head]
