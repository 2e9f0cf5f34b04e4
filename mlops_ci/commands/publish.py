"""`mlops-ci publish`: the trusted half of the fork-safe flow.

The trusted `workflow_run` job reads the run directory an untrusted (fork) job uploaded, only
through `mlops_ci.ci.untrusted` (named documents, size limits, strict parsing, JSON Schemas),
renders the report anew from the validated JSON and posts it; it executes nothing from the PR.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.ci.untrusted import (
    UntrustedInputRejected,
    load_untrusted_run_dir,
)
from mlops_ci.project.errors import ConfigError, ServiceError
from mlops_ci.project.settings import SETTINGS_FILE

if TYPE_CHECKING:
    from mlops_ci.gate.verdict import Verdict


class TrustedPolicyMissing(ConfigError):
    """The trusted checkout has no `mlops-ci.yaml`: there is no policy to judge a fork by."""


@dataclass
class PublishResult:
    """What `mlops-ci publish` did with a validated run directory."""

    markdown: str
    run_dir: Path | None = None
    verdict: str | None = None
    sha: str | None = None
    pr_number: int | None = None
    comment_url: str | None = None
    status_state: str | None = None
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "sha": self.sha,
            "pr_number": self.pr_number,
            "comment_url": self.comment_url,
            "status_state": self.status_state,
            "characters": len(self.markdown),
            "ignored": self.ignored,
            "notes": self.notes,
        }

    def summary(self) -> str:
        """What a person reads: validated, rendered, where it was posted, and any notes."""
        lines = [f"validated {self.run_dir}; report rendered anew ({len(self.markdown):,} chars)"]
        if self.comment_url or self.pr_number:
            lines.append(f"comment on #{self.pr_number}: {self.comment_url or 'posted'}")
        if self.status_state:
            lines.append(f"status {self.status_state} on {self.sha}")
        return "\n".join(lines + self.notes)


def _confirm_pr(forge: Any, claimed: int | None, sha: str, trusted: bool) -> int | None:
    """A fork's PR number comes from its own ci.json: believe it only when the forge agrees
    that this PR's head is `sha`, so a tampered number cannot aim the comment at another PR."""
    if claimed is None or trusted:
        return claimed
    found = forge.find_pr(sha)
    if found != claimed:
        raise UntrustedInputRejected(
            f"ci.json names pull request #{claimed}, but the forge "
            + (f"reports #{found}" if found else "knows no open pull request")
            + f" with head {sha[:12]}; not posting. Re-run the pull request workflow."
        )
    return claimed


def judge_with_trusted_policy(repo_dir: Path, comparison: dict[str, Any]) -> Verdict:
    """The verdict under the policy of the trusted checkout (the default branch), not the one
    the untrusted job wrote: editing verdict.json or mlops-ci.yaml in the fork changes nothing.

    The fork's numbers are its own, so the verdict is advisory (`Verdict.advisory`). Without a
    policy in the trusted checkout there is nothing to judge by: the verdict fails (never a
    pass on an empty policy), with the reason naming the missing file.
    """
    from mlops_ci.gate.policy import load_policy
    from mlops_ci.gate.rules import evaluate_gate, unknown_policy_metrics
    from mlops_ci.gate.verdict import PolicySource, RuleResult, Verdict
    from mlops_ci.project.settings import Settings

    policy = load_policy(repo_dir, None)
    if policy.source.source != "working tree":
        reason = (
            f"no {SETTINGS_FILE} in the trusted checkout {repo_dir}, so the fork's run cannot "
            "be judged by this repository's policy; check out the base repository (its default "
            "branch) before `mlops-ci publish`"
        )
        rule = RuleResult(SETTINGS_FILE, "policy", None, None, "fail", reason)
        return Verdict(
            verdict="fail",
            summary=reason,
            rules=[rule],
            artifact=Settings().artifact,
            policy=PolicySource(None, "missing", SETTINGS_FILE),
            advisory=True,
        )
    # A policy metric the fork's comparison lacks is the fork's omission, not a typo on the
    # default branch: it fails (whatever on_missing_metric says), so dropping a row never passes.
    verdict = evaluate_gate(comparison, policy.settings, policy=policy.source, check_names=False)
    rows = [r for r in comparison.get("metrics") or [] if isinstance(r, dict)]
    for name in unknown_policy_metrics(policy.settings, rows):
        if policy.settings.metrics[name].has_thresholds():
            reason = f"{name} is missing from the fork's comparison.json, and the policy gates it"
            verdict.rules.append(RuleResult(name, "on_missing_metric", None, None, "fail", reason))
    if verdict.failed and verdict.verdict != "fail":
        verdict.verdict, verdict.summary = "fail", verdict.failed[0].reason
    verdict.advisory = True
    return verdict


def publish_run(
    run_dir: Path,
    *,
    repo_dir: Path,
    sha: str | None = None,
    post: bool = True,
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> PublishResult:
    """Validate an untrusted run directory, judge it with the trusted policy, render the report
    anew, and post comment and status.

    `repo_dir` is the trusted checkout (its `mlops-ci.yaml` is the policy); `sha` is the commit
    the trusted event says was built (workflow_run.head_sha): the run directory must agree.
    """
    from mlops_ci.ci.event import read_ci_event
    from mlops_ci.commands.gate import post_verdict
    from mlops_ci.commands.report import summary_markdown
    from mlops_ci.forge import detect_forge
    from mlops_ci.report import build_report
    from mlops_ci.report.render import report_marker_id

    env = os.environ if env is None else env
    run = load_untrusted_run_dir(run_dir)
    claimed_sha = (run.ci or {}).get("head_sha")
    if sha and claimed_sha and claimed_sha != sha:
        raise UntrustedInputRejected(
            f"ci.json names head {claimed_sha} but the trusted event built {sha}; the run "
            "directory does not belong to this run"
        )
    verdict = judge_with_trusted_policy(repo_dir, run.comparison)
    forge = detect_forge(env, run_dir) if post else None
    # The trusted event (workflow_run, with ci.json checked against it); local: no event.
    event = getattr(forge, "event", None) or read_ci_event(env, run_dir)
    # workflow_run.name: GitHub wrote it, and the trusted workflow's `workflows:` filter names it.
    workflow = event.triggering_workflow or env.get("GITHUB_WORKFLOW") or "mlops-ci"
    artifact = verdict.artifact or "model"  # from the trusted settings, never the fork's files
    report = build_report(
        # Shown under the trusted artifact's name too, so the title matches status and marker.
        {**run.comparison, "artifact": artifact},
        verdict.to_dict(),
        limit=getattr(forge, "comment_limit", None),
        full_report_hint="report.md in the pull request run's artifact",
        # The same marker the `pr` workflow would use, so there is one comment per PR.
        marker_id=report_marker_id(artifact, workflow),
    )
    result = PublishResult(
        markdown=report.markdown, run_dir=run_dir, verdict=verdict.verdict, ignored=run.ignored
    )
    if output is not None:
        from mlops_ci.ci import documents

        documents.write_file(output, report.full_markdown)
    if forge is None:
        result.notes.append("not posted (--no-post)")
        return _refuse_without_policy(result, verdict)
    forge.write_summary(summary_markdown(report))
    # Only a trusted SHA: one from ci.json would let a fork put a status on any commit.
    result.sha = sha or event.head_sha
    if not result.sha:
        raise UntrustedInputRejected(
            "no commit to post for: pass --sha with the head SHA of the triggering run"
        )
    # A PR number is trusted only from the workflow_run event GitHub wrote, not from ci.json.
    trusted = (
        event.event_name == "workflow_run" and event.pr_number is not None and not event.pr_claimed
    )
    claimed = event.pr_number or (run.ci or {}).get("pr_number")
    result.pr_number = _confirm_pr(forge, claimed, result.sha, trusted)
    comment_error: ServiceError | None = None
    if result.pr_number is not None:
        try:
            posted = forge.upsert_comment(report.markdown, report.marker_id)
            result.comment_url = getattr(posted, "url", None)
        except ServiceError as exc:
            # The status is what branch protection reads: a failed comment must not withhold it.
            comment_error = exc
    else:
        result.notes.append("no pull request for this commit: the comment was not posted")
    status, _check = post_verdict(forge, verdict, result.sha)
    result.status_state = str(status.get("state") or "")
    if comment_error is not None:
        raise comment_error
    return _refuse_without_policy(result, verdict)


def _refuse_without_policy(result: PublishResult, verdict: Verdict) -> PublishResult:
    """Exit 2 once the failure is posted when there was no policy: the job is misconfigured."""
    if verdict.policy.source == "missing":
        posted = f" (posted: status {result.status_state})" if result.status_state else ""
        raise TrustedPolicyMissing(verdict.summary + posted)
    return result
