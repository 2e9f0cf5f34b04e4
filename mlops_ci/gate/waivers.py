"""Waivers from the review: `/mlops-ci accept <metric or rule> <reason>` on a pull request.

A waiver turns failing rules that match its target (a metric name or a rule name) into
`waived`; the verdict passes when every failing rule is waived. Fail-closed reasons are not
rules anyone may accept: an unreadable or non-finite value, a missing metric, a bad or missing
policy stay failures whatever a reviewer writes. A waiver holds for one head SHA only.

This module is pure: the forge calls (who may waive, which comments exist) are the command's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlops_ci.ci.untrusted.inventory import entry_point
from mlops_ci.ci.untrusted.records import ack_record, read_ack_record
from mlops_ci.gate.rules import _summary
from mlops_ci.gate.verdict import RuleResult, Verdict

PREFIX = "/mlops-ci"
ACCEPT = "accept"
# Failures that say the gate had no trustworthy input: never waivable.
FAIL_CLOSED_RULES = frozenset({"policy", "readable", "value", "on_missing_metric"})
# GitHub's permission levels that may waive (write access or more).
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
GITLAB_DEVELOPER = 30  # GitLab access level of a Developer; Maintainer 40, Owner 50
MAX_TARGET = 200
MAX_REASON = 1000


class BadCommand(ValueError):
    """A comment that starts with `/mlops-ci` but is not a command we can act on."""


@dataclass(frozen=True)
class AcceptCommand:
    target: str
    reason: str


@dataclass(frozen=True)
class Waiver:
    """One accepted command, bound to the head SHA it was given for."""

    target: str
    who: str
    when: str | None
    why: str
    head_sha: str
    comment_url: str | None = None
    comment_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_command(body: str) -> bool:
    return body.lstrip().startswith(PREFIX)


@entry_point("a pull request comment or merge request note")
def parse_command(body: str) -> AcceptCommand | None:
    """`/mlops-ci accept <target> <reason>` → AcceptCommand; None when the body is not a command
    at all; BadCommand (with what to write instead) when it is one we cannot act on.

    >>> parse_command("/mlops-ci accept accuracy smaller model, 3x faster")
    AcceptCommand(target='accuracy', reason='smaller model, 3x faster')
    """
    text = body.strip()
    if not text.startswith(PREFIX):
        return None
    words = text[len(PREFIX) :].split(maxsplit=2)
    if text[len(PREFIX) : len(PREFIX) + 1] not in ("", " ", "\t", "\n", "\r"):
        return None  # "/mlops-cifoo" is someone else's command
    if not words or words[0] != ACCEPT:
        raise BadCommand(
            "the only command is `/mlops-ci accept <metric or rule> <reason>`"
            + (f"; got `{words[0][:40]}`" if words else "")
        )
    if len(words) < 3 or not words[2].strip():
        raise BadCommand("write `/mlops-ci accept <metric or rule> <reason>`: a reason is required")
    target = words[1].strip("`'\"")
    if not target or len(target) > MAX_TARGET:
        raise BadCommand(f"the metric or rule name must be 1 to {MAX_TARGET} characters")
    reason = " ".join(words[2].split())  # one line: it is shown inline in the report
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    return AcceptCommand(target, reason)


def may_waive_github(permission: str | None) -> bool:
    """Write access or more (GET /repos/{o}/{r}/collaborators/{user}/permission)."""
    return permission in WRITE_PERMISSIONS


def may_waive_gitlab(access_level: int | None) -> bool:
    """Developer (30) or more (GET /projects/:id/members/all/:user_id)."""
    return isinstance(access_level, int) and access_level >= GITLAB_DEVELOPER


def waivable(rule: RuleResult) -> bool:
    return rule.outcome == "fail" and rule.rule not in FAIL_CLOSED_RULES


def matches(rule: RuleResult, target: str) -> bool:
    return target in (rule.metric, rule.rule)


def acceptable_targets(verdict: Verdict) -> list[str]:
    """What a reviewer can accept on this verdict: the metrics and rules of waivable failures."""
    names: list[str] = []
    for r in verdict.rules:
        if waivable(r):
            for name in (r.metric, r.rule):
                if name not in names:
                    names.append(name)
    return names


def apply_waivers(verdict: Verdict, waivers: Sequence[Waiver], head_sha: str | None) -> list[str]:
    """Mark the failing rules the waivers for `head_sha` match as `waived` (in place) and
    re-decide the verdict: pass once no rule fails and none is neutral-with-fail left.

    Returns one note per waiver given for another head ("no longer applies"). Waivers that
    match nothing are kept out of the verdict (the reply names what can be accepted)."""
    notes: list[str] = []
    applied: list[Waiver] = []
    for w in waivers:
        if head_sha is None or w.head_sha != head_sha:
            notes.append(f"waiver for {w.head_sha[:12]} no longer applies ({w.target})")
            continue
        hit = False
        for r in verdict.rules:
            if waivable(r) and matches(r, w.target):
                r.outcome = "waived"
                r.waived_by = f"{w.who}: {w.why}"[:512]
                hit = True
        if hit:
            applied.append(w)
    verdict.waivers = [w.to_dict() for w in applied]
    verdict.stale_waivers = notes
    if applied and verdict.verdict == "fail" and not verdict.failed:
        verdict.verdict = "neutral" if verdict.neutral else "pass"
        waived = sum(r.outcome == "waived" for r in verdict.rules)
        verdict.summary = (
            f"{waived} failing rule{'s' if waived != 1 else ''} waived in review; "
            + _summary(verdict.verdict, verdict.rules)
        )
    return notes


def verdict_from_dict(doc: Mapping[str, Any]) -> Verdict:
    """A Verdict back from its document (verdict.json, or the report's hidden record)."""
    from mlops_ci.gate.verdict import PolicySource

    fields = set(RuleResult.__dataclass_fields__)
    rules = [
        RuleResult(**{k: v for k, v in r.items() if k in fields})
        for r in doc.get("rules") or []
        if isinstance(r, Mapping)
    ]
    policy = doc.get("policy") if isinstance(doc.get("policy"), Mapping) else {}
    return Verdict(
        verdict=str(doc.get("verdict")),
        summary=str(doc.get("summary") or ""),
        rules=rules,
        artifact=doc.get("artifact"),
        baseline_sha=doc.get("baseline_sha"),
        candidate_sha=doc.get("candidate_sha"),
        policy=PolicySource(
            policy.get("revision"),  # type: ignore[union-attr]
            str(policy.get("source") or "defaults"),  # type: ignore[union-attr]
            str(policy.get("path") or "mlops-ci.yaml"),  # type: ignore[union-attr]
            bool(policy.get("changed")),  # type: ignore[union-attr]
        ),
        inputs=dict(doc.get("inputs") or {}),
        advisory=bool(doc.get("advisory")),
        head_sha=doc.get("head_sha"),
    )


# --- hidden records in the bot's own comments ---------------------------------------------------


# The format and the position (the reply's last line) are the boundary's: ci/untrusted.
ack_marker = ack_record


def read_acks(bodies: Iterable[str]) -> dict[str, str]:
    """Command comment id → head SHA it was accepted for, from the bot's own replies (each
    reply's last line only: `records.read_ack_record`)."""
    acks: dict[str, str] = {}
    for body in bodies:
        found = read_ack_record(body)
        if found is not None:
            acks.setdefault(*found)
    return acks


def reset_waivers(verdict: Verdict) -> None:
    """The verdict as the gate judged it, before any waiver (in place): what the review command
    re-judges, so a waiver never outlives the comment or the head it was given for."""
    for r in verdict.rules:
        if r.outcome == "waived":
            r.outcome, r.waived_by = "fail", None
    verdict.waivers, verdict.stale_waivers = [], []
    if verdict.failed:
        verdict.verdict, verdict.summary = "fail", _summary("fail", verdict.rules)
