"""`mlops-ci gate`: judge comparison.json by the policy, write verdict.json, post the status.

It reads the environment, builds the forge and passes it down to the pure part
(`mlops_ci.gate.rules.evaluate_gate`); `mlops-ci pr` (`commands/pr.py`) reuses its steps. The
verdict is written before anything is posted, so a forge that fails (exit 3) never loses it.

The policy is read from `mlops-ci.yaml` **at the baseline revision**: a pull request that loosens
a threshold is judged by the threshold it wants to loosen, and the change takes effect on merge.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci import documents
from mlops_ci.gate.policy import Policy, load_policy
from mlops_ci.gate.rules import evaluate_gate
from mlops_ci.gate.verdict import CHECK_CONCLUSION, STATUS_STATE, Verdict, format_verdict
from mlops_ci.project.errors import EXIT_GATE_FAILED, EXIT_OK, MlopsCiError, ServiceError

VERDICT_FILE = "verdict.json"
COMPARISON_FILE = "comparison.json"


class GateNotPosted(ServiceError):
    """The forge refused or failed to take the status; the verdict is saved all the same."""


# --- posting -----------------------------------------------------------------------------------


def annotations(verdict: Verdict) -> list[str]:
    """`::error::` per failing rule, `::warning::` per neutral one (GitHub Actions), escaped so
    a reason that quotes a metric name stays one command on one line."""
    from mlops_ci.ci.output import workflow_command

    title = f"mlops-ci gate ({verdict.artifact})"
    lines = [workflow_command("error", r.reason, title=title) for r in verdict.failed]
    lines += [workflow_command("warning", r.reason, title=title) for r in verdict.neutral]
    return lines


def status_description(verdict: Verdict) -> str:
    """The verdict in a line; the forge cuts it to what its status API takes. A fork's verdict
    says it is advisory first, so the cut never loses that."""
    prefix = "advisory (fork): " if verdict.advisory else ""
    return f"{prefix}{verdict.verdict}: {verdict.summary}"


def check_summary(verdict: Verdict) -> str:
    """The check run's markdown: reasons quote metric names, so they are escaped as the comment
    escapes them (a name `![x](https://tracker...)` must not become an image)."""
    from mlops_ci.report.markdown import md_text

    def text(value: object) -> str:
        return md_text(value, 1000)

    lines = [f"**{text(verdict.verdict)}**: {text(verdict.summary)}", ""]
    lines += [f"- {text(r.outcome)}: {text(r.reason)}" for r in verdict.rules]
    where = verdict.policy.revision or verdict.policy.source
    lines += ["", f"Policy: {text(verdict.policy.path)} at {text(where)}."]
    return "\n".join(lines)


def post_verdict(forge: Any, verdict: Verdict, sha: str) -> tuple[dict[str, Any], str | None]:
    """Commit status `mlops-ci/<artifact>` on `sha`, and a check run where the forge allows."""
    from mlops_ci.forge import status_context

    context = status_context(verdict.artifact or "model")
    status = forge.set_status(
        sha, STATUS_STATE[verdict.verdict], status_description(verdict), context
    )
    check_url = forge.create_check_run(
        sha,
        context,
        CHECK_CONCLUSION[verdict.verdict],
        status_description(verdict),
        check_summary(verdict),
    )
    return status, check_url


def _head_sha(env: Mapping[str, str], run_dir: Path, verdict: Verdict) -> str | None:
    """The PR head (not the merge commit GitHub checks out), else the candidate's commit."""
    from mlops_ci.ci.event import read_ci_event

    return read_ci_event(env, run_dir).head_sha or verdict.candidate_sha


@dataclass
class GateRun:
    verdict: Verdict
    path: Path
    status: dict[str, Any] | None = None
    check_url: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_GATE_FAILED if self.verdict.verdict == "fail" else EXIT_OK

    def summary(self) -> str:
        lines = [format_verdict(self.verdict), f"verdict written to {self.path}"]
        if self.status:
            lines.append(f"status {self.status.get('context')}: {self.status.get('state')}")
        if self.check_url:
            lines.append(f"check run: {self.check_url}")
        return "\n".join(lines + self.notes)


def signal_ci(verdict: Verdict, env: Mapping[str, str], out: TextIO) -> None:
    from mlops_ci.ci.output import verdict_outputs, write_command, write_outputs

    if env.get("GITHUB_ACTIONS") == "true":
        for line in annotations(verdict):
            write_command(out, line)  # ours: past the guard that defuses repo text
    write_outputs(verdict_outputs(verdict.to_dict()), env)


def judge(
    repo_dir: Path,
    run_dir: Path,
    comparison: Mapping[str, Any],
    policy: Policy | None = None,
    comparison_digest: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Verdict, Policy]:
    """Evaluate the baseline's policy (`policy`, else read now) and write `verdict.json`.

    The verdict records what it judged (`inputs`: the digest of comparison.json, the
    revisions), so `report` can refuse it once comparison.json changes. When the gate cannot
    decide (a bad policy: exit 2), an earlier run's verdict.json is removed, never left behind.
    """
    if comparison_digest is None:
        comparison_digest = documents.file_digest(run_dir / COMPARISON_FILE)
    try:
        if policy is None:
            baseline = comparison.get("baseline") or {}
            sha = baseline.get("sha") if isinstance(baseline, Mapping) else None
            policy = load_policy(repo_dir, sha if isinstance(sha, str) else None)
        verdict = evaluate_gate(
            comparison,
            policy.settings,
            policy=policy.source,
            proposed=policy.proposed,
            proposed_error=policy.proposed_error,
        )
    except MlopsCiError:
        (run_dir / VERDICT_FILE).unlink(missing_ok=True)
        raise
    review_waivers(verdict, run_dir, os.environ if env is None else env)
    verdict.inputs = {
        COMPARISON_FILE: comparison_digest,
        "baseline_sha": verdict.baseline_sha,
        "candidate_sha": verdict.candidate_sha,
        "policy_revision": policy.source.revision,
    }
    documents.write(run_dir, VERDICT_FILE, verdict.to_dict())
    return verdict, policy


_TOKENS = ("MLOPS_CI_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN")


def review_waivers(verdict: Verdict, run_dir: Path, env: Mapping[str, str]) -> None:
    """A pull request's head and the review's waivers for it (`/mlops-ci accept`, checked
    through the forge; commands/review.py). Only where a token can ask: the job that trains has
    none, and the step that posts judges again with it. A fork's verdict is the trusted
    `publish` job's to post, so its run reads none."""
    from mlops_ci.ci.event import forge_kind, read_ci_event

    if forge_kind(env) == "local":
        return
    event = read_ci_event(env, run_dir)
    if not event.head_sha or event.is_fork:
        return
    merged = event.pr_number is None and event.event_name == "push"
    if event.pr_number is None and not merged:
        return
    if not merged:
        verdict.head_sha = event.head_sha
    if not any(env.get(name, "").strip() for name in _TOKENS):
        return
    from mlops_ci.commands.waivers import apply_review, merged_waivers
    from mlops_ci.forge import detect_forge

    try:
        forge = detect_forge(env, run_dir)
    except MlopsCiError as exc:
        verdict.stale_waivers = [f"waivers from the review were not read ({exc}); none applied"]
        return
    if merged:
        # The merged pull request's waivers go into the model card; this verdict stays as judged.
        verdict.pr_waivers = merged_waivers(forge, event.head_sha)
        return
    apply_review(verdict, forge, event.pr_number, event.head_sha)


def run_gate(
    repo_dir: Path,
    run_dir: Path,
    *,
    post: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> GateRun:
    """`mlops-ci gate`: apply the policy to `comparison.json`, write `verdict.json`, maybe post."""
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    comparison, digest = documents.read_digested(run_dir, COMPARISON_FILE, kind="comparison")
    verdict, _ = judge(repo_dir, run_dir, comparison, comparison_digest=digest, env=env)
    result = GateRun(verdict, run_dir / VERDICT_FILE)
    signal_ci(verdict, env, out)
    if post:
        post_status(result, env, run_dir, out)
    return result


def post_status(
    result: GateRun, env: Mapping[str, str], run_dir: Path, out: TextIO, forge: Any = None
) -> None:
    from mlops_ci.forge import detect_forge

    sha = _head_sha(env, run_dir, result.verdict)
    if not sha:
        result.notes.append("no commit to set the status on (no CI event, no candidate commit)")
        return
    try:
        forge = forge or detect_forge(env, run_dir, out=out)
        result.status, result.check_url = post_verdict(forge, result.verdict, sha)
    except ServiceError as exc:
        raise GateNotPosted(
            f"{exc}. The verdict ({result.verdict.verdict}) is saved in {result.path}; rerun "
            "`mlops-ci gate --post` once the forge answers"
        ) from exc
