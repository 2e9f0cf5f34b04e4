"""Read a run directory that came from an untrusted job (a fork's pull_request run).

The trusted `workflow_run` half of the fork-safe flow downloads the run directory the untrusted
job uploaded. Everything in it is attacker-controlled, so this module:

- reads only the documents it knows, by name, as regular files (no symlinks out of the directory);
- refuses a document over its size limit before reading it (a 10 MB body never reaches the parser);
- parses strictly (no NaN/Infinity, no duplicate keys, bounded nesting) and validates against the
  JSON Schemas in `mlops_ci/schemas/`, whose string and array limits keep the report renderable;
- ignores everything else, including `report.md`: the report is rendered anew from the validated
  JSON, so markdown or HTML the untrusted side wrote is never posted as is;
- executes nothing: no file from the directory is imported, run, or handed to DVC or git.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.documents import loads_strict
from mlops_ci.errors import ConfigError, MlopsCiError, ServiceError
from mlops_ci.settings import SETTINGS_FILE

if TYPE_CHECKING:
    from mlops_ci.gate import Verdict

KIB = 1024
MIB = 1024 * KIB

# Per-document byte limits. comparison.json is the big one: 50 plots x 2 revisions x 200 points.
DOCUMENTS: dict[str, tuple[str, int, bool]] = {
    # name: (kind, max bytes, required)
    "comparison.json": ("comparison", 4 * MIB, True),
    "verdict.json": ("verdict", 1 * MIB, False),
    "train.json": ("train", 1 * MIB, False),
    "ci.json": ("ci", 64 * KIB, False),
}
MAX_DEPTH = 32


class UntrustedInputRejected(MlopsCiError):
    """A document from an untrusted run directory is missing, too large or schema-invalid."""


class TrustedPolicyMissing(ConfigError):
    """The trusted checkout has no `mlops-ci.yaml`: there is no policy to judge a fork by."""


@dataclass
class ValidatedRun:
    """Documents that passed validation; `ignored` lists files that were present but not read."""

    comparison: dict[str, Any]
    verdict: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    ci: dict[str, Any] | None = None
    ignored: list[str] = field(default_factory=list)


@cache
def load_schema(kind: str) -> dict[str, Any]:
    # schemas/ is package data (no __init__.py), shipped by pyproject's "**/*.json" glob.
    path = resources.files("mlops_ci").joinpath("schemas", f"{kind}.schema.json")
    text = path.read_text("utf-8")
    return json.loads(text)


def validate_document(kind: str, data: Any, source: str = "document") -> dict[str, Any]:
    """Check `data` against the schema of `kind`; raise with the first few problems."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema(kind))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:5]:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  at {where}: {_short(err.message)}")
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise UntrustedInputRejected(
            f"{source} does not match the {kind} schema (schema_version 1):\n"
            + "\n".join(lines)
            + more
            + f"\nRegenerate it with the same mlops-ci version (`mlops-ci {kind}`) and upload "
            "the run directory unchanged."
        )
    return data


def _short(message: str, limit: int = 200) -> str:
    # jsonschema quotes the offending value; an attacker's 4 MB string must not fill the log.
    return message if len(message) <= limit else message[:limit] + "…"


def read_document(path: Path, kind: str, max_bytes: int) -> dict[str, Any]:
    """Size-check, strictly parse and validate one untrusted document."""
    try:
        info = os.lstat(path)
    except FileNotFoundError as exc:
        raise UntrustedInputRejected(f"{path} is missing from the run directory") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UntrustedInputRejected(
            f"{path} is not a regular file (symlinks and devices are refused in an untrusted "
            "run directory)"
        )
    if info.st_size > max_bytes:
        raise UntrustedInputRejected(
            f"{path} is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for "
            f"{path.name}; it was not read. Keep documents within the limits in docs/documents.md"
        )
    # O_NOFOLLOW closes the race between lstat and open; read one byte past the limit in case
    # the file grew meanwhile.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise UntrustedInputRejected(f"{path} grew past the {max_bytes:,}-byte limit while read")
    try:
        data = loads_strict(raw, MAX_DEPTH)
    except ValueError as exc:  # UnicodeDecodeError is one
        if "nests deeper" in str(exc):
            raise UntrustedInputRejected(f"{path} {exc}") from exc
        raise UntrustedInputRejected(f"{path} is not valid JSON: {_short(str(exc))}") from exc
    return validate_document(kind, data, source=str(path))


def load_untrusted_run_dir(run_dir: Path) -> ValidatedRun:
    """Validate the documents of a downloaded run directory; the only way publish reads it."""
    try:
        info = os.lstat(run_dir)
    except FileNotFoundError as exc:
        raise UntrustedInputRejected(
            f"run directory {run_dir} does not exist; download the artifact of the pull "
            "request run there first"
        ) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedInputRejected(f"{run_dir} is not a directory (symlinks are refused)")
    docs: dict[str, dict[str, Any] | None] = {}
    for name, (kind, max_bytes, required) in DOCUMENTS.items():
        path = run_dir / name
        if not required and not os.path.lexists(path):
            docs[kind] = None
            continue
        docs[kind] = read_document(path, kind, max_bytes)
    ignored = sorted(p.name for p in run_dir.iterdir() if p.name not in DOCUMENTS)
    comparison = docs["comparison"]
    assert comparison is not None  # required above
    return ValidatedRun(
        comparison=comparison,
        verdict=docs["verdict"],
        train=docs["train"],
        ci=docs["ci"],
        ignored=ignored,
    )


# --- publish: the trusted half of the fork-safe flow -----------------------------------------


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
    from mlops_ci.gate import (
        PolicySource,
        RuleResult,
        Verdict,
        evaluate_gate,
        unknown_policy_metrics,
    )
    from mlops_ci.policy import load_policy
    from mlops_ci.settings import Settings

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
    from mlops_ci.flow import post_verdict
    from mlops_ci.forge import detect_forge, read_ci_event
    from mlops_ci.report import build_report
    from mlops_ci.report.render import report_marker_id
    from mlops_ci.report.run import summary_markdown

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
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report.full_markdown, encoding="utf-8")
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
