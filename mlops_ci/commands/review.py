"""`mlops-ci review`: act on a review command (`/mlops-ci accept <metric or rule> <reason>`).

It runs in a trusted, comment-triggered job that checks out no code of the pull request: the
comment comes from the event the forge wrote, the commenter's permission and the pull request's
head come from the forge's API, and the verdict to re-judge comes from the report comment the
gate run posted for that head (a hidden record only our own login's comment is trusted for;
docs/review.md says why). A waiver holds for the head it was given for; the bot's reply records
that head, so later gate runs (`collect_waivers`) find it again and a new push drops it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.ci.untrusted.inventory import entry_point
from mlops_ci.commands.waivers import collect_waivers, find_report
from mlops_ci.gate.waivers import (
    BadCommand,
    Waiver,
    acceptable_targets,
    ack_marker,
    apply_waivers,
    matches,
    parse_command,
    reset_waivers,
    verdict_from_dict,
    waivable,
)
from mlops_ci.project.errors import EXIT_OK, EXIT_SERVICE, ConfigError, ServiceError

VERDICT_FILE = "verdict.json"


class ReviewEventInvalid(ConfigError):
    """The job was not started by a comment event this command understands."""


@dataclass(frozen=True)
class CommandComment:
    """The comment that triggered the job, as the forge's event names it."""

    pr_number: int
    comment_id: str
    author: str
    body: str
    created_at: str | None
    url: str | None


@dataclass
class ReviewRun:
    outcome: str  # ignored | replied | waived | refused
    pr_number: int | None = None
    head_sha: str | None = None
    verdict: dict[str, Any] | None = None
    reply_url: str | None = None
    status_state: str | None = None
    notes: list[str] = field(default_factory=list)
    exit_code: int = EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "pr_number": self.pr_number,
            "head_sha": self.head_sha,
            "verdict": (self.verdict or {}).get("verdict"),
            "reply_url": self.reply_url,
            "status_state": self.status_state,
            "notes": self.notes,
        }

    def summary(self) -> str:
        lines = [f"review: {self.outcome}" + (f" on #{self.pr_number}" if self.pr_number else "")]
        if self.status_state:
            lines.append(f"status {self.status_state} on {self.head_sha}")
        return "\n".join(lines + self.notes)


@entry_point("the issue_comment event of the review job")
def read_comment_event(env: Mapping[str, str]) -> CommandComment | None:
    """The pull request comment of a GitHub `issue_comment` event; None for a comment on an
    issue (not a pull request) or another action than `created`."""
    if env.get("GITHUB_EVENT_NAME") != "issue_comment":
        raise ReviewEventInvalid(
            "`mlops-ci review` runs on a GitHub issue_comment event (GITHUB_EVENT_NAME is "
            f"{env.get('GITHUB_EVENT_NAME') or 'unset'}); on GitLab the gate reads the notes"
        )
    path = env.get("GITHUB_EVENT_PATH") or ""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReviewEventInvalid(
            f"cannot read the event payload {path or '(unset)'}: {exc}"
        ) from exc
    issue = payload.get("issue") if isinstance(payload, dict) else None
    comment = payload.get("comment") if isinstance(payload, dict) else None
    if not (isinstance(issue, dict) and isinstance(comment, dict)):
        raise ReviewEventInvalid(f"the event payload {path} has no issue and comment")
    if payload.get("action", "created") != "created" or not issue.get("pull_request"):
        return None
    user = comment.get("user") if isinstance(comment.get("user"), dict) else {}
    number, cid, login = issue.get("number"), comment.get("id"), user.get("login")
    if not (isinstance(number, int) and isinstance(cid, int) and isinstance(login, str)):
        raise ReviewEventInvalid(f"the event payload {path} lacks the number, comment id or login")
    return CommandComment(
        number,
        str(cid),
        login,
        str(comment.get("body") or ""),
        comment.get("created_at") if isinstance(comment.get("created_at"), str) else None,
        comment.get("html_url") if isinstance(comment.get("html_url"), str) else None,
    )


def _reply(
    forge: Any, number: int, command: CommandComment, text: str, ack: str = ""
) -> str | None:
    from mlops_ci.report.markdown import md_text

    # The login is escaped like everything from the comment: no mention, no markdown.
    body = f"{md_text(command.author, 60)}: {text}" + (f"\n\n{ack}" if ack else "")
    return getattr(forge.post_reply(number, body), "url", None)


def run_review(
    repo_dir: Path,
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    forge: Any = None,
) -> ReviewRun:
    """`mlops-ci review`: re-judge the head's verdict with a reviewer's waiver, or reply why not."""
    from mlops_ci.commands.gate import post_verdict
    from mlops_ci.forge import detect_forge
    from mlops_ci.report.markdown import code_span, md_text
    from mlops_ci.report.waivers import encode_payload, splice_waivers

    env = os.environ if env is None else env
    command = read_comment_event(env)
    if command is None or not command.body.lstrip().startswith("/mlops-ci"):
        return ReviewRun("ignored", notes=["not a review command on a pull request"])
    result = ReviewRun("replied", pr_number=command.pr_number)
    forge = forge or detect_forge(env, run_dir)
    forge.use_pull_request(command.pr_number)
    try:
        accept = parse_command(command.body)
    except BadCommand as exc:
        result.reply_url = _reply(forge, command.pr_number, command, md_text(str(exc), 300))
        return result
    if accept is None:
        return ReviewRun("ignored", notes=["not a review command"])
    try:
        allowed = forge.may_waive(command.author)
    except ServiceError as exc:
        # Fail closed: no answer about the permission is no permission.
        result.outcome, result.exit_code = "refused", EXIT_SERVICE
        result.notes.append(f"permission of {command.author} not checked: {exc}")
        result.reply_url = _reply(
            forge,
            command.pr_number,
            command,
            "your permission could not be checked, so nothing changed; comment again later.",
        )
        return result
    if not allowed:
        result.outcome = "refused"
        result.reply_url = _reply(
            forge,
            command.pr_number,
            command,
            "only people with write access to this repository can accept a failing rule; "
            "nothing changed.",
        )
        return result
    try:
        fork = forge.pr_from_fork(command.pr_number)
    except ServiceError as exc:
        result.outcome, result.exit_code = "refused", EXIT_SERVICE
        result.notes.append(f"the pull request's source was not checked: {exc}")
        result.reply_url = _reply(
            forge,
            command.pr_number,
            command,
            "the pull request could not be read, so nothing changed; comment again later.",
        )
        return result
    if fork:
        # A fork's verdict is computed from the fork's own numbers (advisory) and carries no
        # record for its head; docs/review.md: waivers are read for same-repository PRs only.
        result.outcome = "refused"
        result.notes.append("pull request from a fork: no waivers")
        result.reply_url = _reply(
            forge,
            command.pr_number,
            command,
            "waivers are not read on a pull request from a "
            "fork (its numbers come from the fork's own job); nothing changed.",
        )
        return result
    result.head_sha = head = forge.pr_head(command.pr_number)
    found = find_report(forge, command.pr_number, head) if head else None
    if head is None or found is None:
        result.reply_url = _reply(
            forge,
            command.pr_number,
            command,
            f"there is no gate verdict for the head {md_text((head or '?')[:12], 12)} yet, so "
            "nothing changed; comment again once the gate has reported on it.",
        )
        return result
    report, record = found
    verdict = verdict_from_dict(record)
    reset_waivers(verdict)
    hits = [r for r in verdict.rules if matches(r, accept.target)]
    if not any(waivable(r) for r in hits):
        targets = acceptable_targets(verdict)
        why = (
            f"{md_text(accept.target, 80)} fails for a reason no review can accept (the gate "
            "had no trustworthy input)"
            if hits and any(r.outcome == "fail" for r in hits)
            else f"{md_text(accept.target, 80)} is no failing metric or rule of this verdict"
        )
        can = ", ".join(code_span(t) for t in targets) or "nothing (no waivable failure)"
        result.reply_url = _reply(
            forge, command.pr_number, command, f"{why}; nothing changed. You can accept: {can}."
        )
        return result
    new = Waiver(
        accept.target,
        command.author,
        command.created_at,
        accept.reason,
        head,
        command.url,
        command.comment_id,
    )
    waivers = collect_waivers(forge, command.pr_number, extra=new)
    apply_waivers(verdict, waivers, head)
    # Recorded before anything is posted, as every command does.
    doc = verdict.to_dict()
    documents.write(run_dir, VERDICT_FILE, doc)
    result.verdict, result.outcome = doc, "waived"
    result.reply_url = _reply(
        forge,
        command.pr_number,
        command,
        f"accepted {md_text(accept.target, 80)} for {md_text(head[:12], 12)}: "
        f"{md_text(accept.reason, 500)}. The gate is now {md_text(verdict.verdict, 10)}; a new "
        "push needs a new review.",
        ack_marker(command.comment_id, head),
    )
    forge.edit_comment(
        command.pr_number, report.id, splice_waivers(report.body, doc, encode_payload(doc))
    )
    status, _check = post_verdict(forge, verdict, head)
    result.status_state = str(status.get("state") or "")
    return result
